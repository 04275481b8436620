"""Request-body reading shared by the POST endpoints."""

from __future__ import annotations

from typing import Any

import orjson
from flask import request

from ..errors import InvalidRequest, UnsupportedMediaType


def json_body() -> Any:
    """The request body as JSON; 415 unless declared JSON, 400 unless valid UTF-8 JSON.

    Flask's MAX_CONTENT_LENGTH turns an oversized body into 413 before this reads it.
    """
    if not request.is_json:
        raise UnsupportedMediaType("The request body must be sent as Content-Type: application/json")
    raw = request.get_data(cache=False)
    if not raw:
        raise InvalidRequest("The request body is empty; expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"The request body is not valid JSON ({error.msg})") from None
