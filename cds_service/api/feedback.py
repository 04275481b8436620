"""``POST /cds-services/{id}/feedback`` (CDS Hooks 2.0 "Feedback")."""

from __future__ import annotations

import logging
import sqlite3

from flask import Blueprint, Response, jsonify, request

from ..errors import BodyTooLarge, CdsError
from ..logs import note
from ..metrics import record_feedback
from ..protocol.feedback import parse_feedback
from ..runtime import runtime
from .hooks import service_or_404
from .http import json_body

bp = Blueprint("feedback", __name__)
log = logging.getLogger("cds_service.feedback")


class FeedbackNotStored(CdsError):
    """503: the store did not commit (locked past its timeout, read-only, disk full); nothing was acknowledged."""

    status = 503
    code = "transient"


def _limit_body(limit: int) -> None:
    """413 for a feedback body over ``CDS_MAX_FEEDBACK_BYTES``, far below the hook's limit: one caller
    must not fill the disk quickly. A chunked body is cut off by werkzeug at the same limit."""
    if (request.content_length or 0) > limit:
        raise BodyTooLarge(f"A feedback call may carry at most {limit} bytes (CDS_MAX_FEEDBACK_BYTES)")
    request.max_content_length = limit


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    service = service_or_404(service_id)
    _limit_body(runtime().config.max_feedback_bytes)
    items = parse_feedback(json_body())
    try:
        stored, duplicates = runtime().feedback.add(service.id, items)
    except (sqlite3.Error, OSError) as error:
        log.warning("feedback not stored", extra={"fields": {"error": type(error).__name__}})
        raise FeedbackNotStored("The feedback could not be stored; send it again later") from None
    record_feedback(items)  # metrics by outcome (CDS_METRICS)
    accepted = sum(item.outcome == "accepted" for item in items)
    note(accepted=accepted, overridden=len(items) - accepted, stored=stored, duplicates=duplicates)  # logs.py logs
    return jsonify({"stored": stored, "duplicates": duplicates})
