"""The service's error family and the one place that turns errors into responses.

Every non-2xx body is a FHIR OperationOutcome (the CDS Hooks 3.0 direction; 2.0 allows any 4xx).
Messages say what is wrong without echoing request values (they may be PHI or tokens).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from .storage import StoreDown

log = logging.getLogger("cds_service")


class CdsError(Exception):
    """Base class: an error with an HTTP status and an OperationOutcome issue code."""

    status = 500
    code = "exception"

    def __init__(self, message: str, *, expression: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression or []


class InvalidRequest(CdsError):
    """400: the request body is not a valid CDS Hooks request."""

    status = 400
    code = "invalid"


class Unauthorized(CdsError):
    """401: the client JWT is missing or invalid (no details in the body, by best practice)."""

    status = 401
    code = "security"


class ForbiddenFhirServer(CdsError):
    """403: the request names a FHIR server this service may not call."""

    status = 403
    code = "forbidden"


class UnknownService(CdsError):
    status = 404
    code = "not-found"


class UnsupportedMediaType(CdsError):
    """415: the body is not declared as JSON (also keeps browsers from posting without a preflight)."""

    status = 415
    code = "not-supported"


class PrefetchUnavailable(CdsError):
    """412: data the service needs was neither prefetched nor fetchable (CDS Hooks 2.0 §412)."""

    status = 412
    code = "not-found"


class BodyTooLarge(CdsError):
    status = 413
    code = "too-long"


class TooManyRequests(CdsError):
    """429: the caller went over a rate limit; ``Retry-After`` says when to try again."""

    status = 429
    code = "throttled"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}


class StoreUnavailable(CdsError):
    """503: a store the call depends on did not answer; nothing was acknowledged, the call may be repeated."""

    status = 503
    code = "transient"


def operation_outcome(
    message: str, *, code: str = "exception", severity: str = "error", expression: list[str] | None = None
) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": message}
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def _respond(status: int, outcome: dict[str, Any]) -> Response:
    response = jsonify(outcome)
    response.status_code = status
    return response


_HTTP_CODES = {400: "invalid", 404: "not-found", 405: "not-supported", 413: "too-long", 415: "invalid"}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CdsError)
    def _cds_error(error: CdsError) -> Response:
        log.info("request refused: status=%s code=%s", error.status, error.code)
        response = _respond(
            error.status, operation_outcome(error.message, code=error.code, expression=error.expression)
        )
        if error.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        response.headers.update(getattr(error, "headers", {}))
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        valid_methods: Iterable[str] | None = getattr(error, "valid_methods", None)  # set by MethodNotAllowed
        message = {
            404: "No such endpoint. Discovery is at GET /cds-services.",
            405: f"Method not allowed here. Allowed: {', '.join(sorted(valid_methods or []))}."
            if valid_methods
            else "Method not allowed here.",
            413: "Request body too large.",
        }.get(status, error.description or error.name)
        response = _respond(status, operation_outcome(message, code=_HTTP_CODES.get(status, "exception")))
        if status == 405 and valid_methods:
            response.headers["Allow"] = ", ".join(valid_methods)
        return response

    @app.errorhandler(StoreDown)
    def _store_down(error: StoreDown) -> Response:
        """A read the endpoint cannot do without (the sandbox's feedback lists): 503, never a 500."""
        log.warning("request refused: %s unavailable (%s)", error.store, error.kind)
        message = "A store the service needs is unavailable; try again later"
        return _respond(503, operation_outcome(message, code="transient"))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.error("unhandled error: %s at %s", type(error).__name__, _where(error))
        return _respond(500, operation_outcome("Internal error; the service log has the details.", code="exception"))


def _where(error: BaseException) -> str:
    """Where an error was raised, as file:line of each frame, without the message or locals.

    The message of an unexpected error may quote the data it failed on (patient data), so the
    log carries only the error type and its location.
    """
    frames = traceback.extract_tb(error.__traceback__)
    return " <- ".join(f"{Path(frame.filename).name}:{frame.lineno}" for frame in reversed(frames[-5:])) or "?"
