"""The service's own log lines: configured here, written to stderr, one line per event.

``configure`` gives the ``cds_service`` logger one handler (replaced, never added twice, however often
``create_app`` runs) in the format ``CDS_LOG_FORMAT`` names:

- ``text``: ``2026-03-01T10:00:00.123Z INFO cds_service.hooks: hook call hookInstance=... status=200 ms=8.1``
- ``json``: ``{"time": "...", "level": "INFO", "logger": "cds_service.hooks", "message": "hook call",
  "hookInstance": "...", "status": 200, "ms": 8.1, ...}``, one object per line for log shippers.

``init_app`` writes one line per request when its response is ready, whatever the outcome (a 400,
412 or 500 included): for a hook call ``hookInstance``, service, status, the counts the view noted
with ``note`` and milliseconds; for feedback the same with the stored counts; for other routes the
route pattern (never the path as sent, which a caller controls), status and milliseconds. Fields are
ids, counts and timings only: never patient data, request values or tokens (STYLE "never echo
request values").
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from flask import Flask, Response, g, has_request_context, request

from .protocol.services import SERVICES

LOGGER = "cds_service"
HANDLER_NAME = "cds_service.stderr"
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes called every few seconds: logged at DEBUG only."""

_EVENTS = {
    "hooks.call_service": ("cds_service.hooks", "hook call"),
    "feedback.feedback": ("cds_service.feedback", "feedback call"),
}


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the current ``sys.stderr``, looked up on every line (test capture swaps it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value ...``: one line, readable in a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        pairs = " ".join(f"{key}={_text_value(value)}" for key, value in _fields(record).items())
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        line = f"{line} {pairs}" if pairs else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text_value(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, ``pid``, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        line.update(_fields(record))
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure(log_format: str = "text", level: str = "INFO") -> None:
    """Give the ``cds_service`` logger its one stderr handler in this format and level.

    Records still propagate, so an embedding application's handlers and pytest's capture see them.
    """
    logger = logging.getLogger(LOGGER)
    logger.setLevel(level)
    handler = next((h for h in logger.handlers if h.get_name() == HANDLER_NAME), None)
    if handler is None:
        handler = _Stderr()
        handler.set_name(HANDLER_NAME)
        logger.addHandler(handler)
    handler.setFormatter(formatter(log_format))


_ONCE: set[str] = set()


def once(logger: str, level: int, line: str) -> None:
    """Log ``line`` once per process tree: ``serve`` logs it before gunicorn forks its workers, which
    inherit the record and stay quiet; without ``serve`` the first ``create_app`` logs it."""
    if line not in _ONCE:
        _ONCE.add(line)
        logging.getLogger(logger).log(level, "%s", line)


def note(**fields: Any) -> None:
    """Add ids and counts to this request's log line (a no-op outside a request)."""
    if has_request_context():
        g.setdefault("log_fields", {}).update(fields)


def hook_instance_of(body: Any) -> str | None:
    """The request's ``hookInstance`` when it is a UUID: never any other value the caller sent."""
    value = body.get("hookInstance") if isinstance(body, dict) else None
    return value if isinstance(value, str) and UUID.match(value) else None


def init_app(app: Flask) -> None:
    """Time every request and log it once its response is ready (error responses included).

    Call before other ``before_request`` functions are registered: one that answers early (the
    JWT guard's 401) skips those registered after it.
    """
    app.before_request(_started)
    app.after_request(_finished)


def _started() -> None:
    g.log_started = time.perf_counter()


def _finished(response: Response) -> Response:
    started = g.get("log_started")
    ms = round((time.perf_counter() - started) * 1000, 1) if started is not None else None
    endpoint = request.endpoint or ""
    route = request.url_rule.rule if request.url_rule is not None else None
    name, message = _EVENTS.get(endpoint, ("cds_service.http", "request"))
    fields: dict[str, Any] = {}
    if endpoint in _EVENTS:
        fields["hookInstance"] = None
        service = (request.view_args or {}).get("service_id")
        fields["service"] = service if service in SERVICES else None  # never a made-up id echoed
    else:
        fields["method"] = request.method
        fields["route"] = route
    fields["status"] = response.status_code
    fields.update(g.get("log_fields") or {})
    fields["ms"] = ms
    level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
    logging.getLogger(name).log(level, message, extra={"fields": fields})
    return response
