"""``POST /cds-services/{id}/feedback`` (CDS Hooks 2.0 "Feedback")."""

from __future__ import annotations

import logging
import sqlite3

from flask import Blueprint, Response, jsonify

from ..errors import CdsError
from ..logs import note
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


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    service = service_or_404(service_id)
    items = parse_feedback(json_body())
    try:
        stored, duplicates = runtime().feedback.add(service.id, items)
    except (sqlite3.Error, OSError) as error:
        log.warning("feedback not stored", extra={"fields": {"error": type(error).__name__}})
        raise FeedbackNotStored("The feedback could not be stored; send it again later") from None
    accepted = sum(item.outcome == "accepted" for item in items)
    note(accepted=accepted, overridden=len(items) - accepted, stored=stored, duplicates=duplicates)  # logs.py logs
    return jsonify({"stored": stored, "duplicates": duplicates})
