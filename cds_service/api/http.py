"""JSON in and out: the request body of the POST endpoints, and every JSON response (orjson)."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response, request
from flask.json.provider import JSONProvider

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


class OrjsonProvider(JSONProvider):
    """Flask's ``jsonify`` through orjson: several times faster than the standard library on a card
    list. Keys keep their order (the spec's field order); ``default`` turns dates into ISO text."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj, default=str).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        body = self._prepare_response_obj(args, kwargs)
        return Response(orjson.dumps(body, default=str), mimetype="application/json")
