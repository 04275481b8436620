"""Request-body reading shared by the POST endpoints."""

from __future__ import annotations

from typing import Any

import orjson
from flask import request

from ..errors import BodyTooLarge, InvalidRequest, UnsupportedMediaType


def json_body() -> Any:
    """The request body as JSON; 415 unless declared JSON, 400 unless valid UTF-8 JSON.

    Flask's MAX_CONTENT_LENGTH (or the view's ``request.max_content_length``) turns a body declared
    oversized into 413 before this reads it. A chunked body has no length to declare: werkzeug stops
    reading it at the limit and hands over what it read, so a body that fills the limit is a 413 too,
    not a 400 for JSON cut short.
    """
    if not request.is_json:
        raise UnsupportedMediaType("The request body must be sent as Content-Type: application/json")
    raw = request.get_data(cache=False)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        raise BodyTooLarge("Request body too large.")
    if not raw:
        raise InvalidRequest("The request body is empty; expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"The request body is not valid JSON ({error.msg})") from None
