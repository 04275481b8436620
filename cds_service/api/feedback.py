"""``POST /cds-services/{id}/feedback`` (CDS Hooks 2.0 "Feedback")."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

from ..protocol.feedback import parse_feedback
from ..runtime import runtime
from .hooks import service_or_404
from .http import json_body

bp = Blueprint("feedback", __name__)
log = logging.getLogger("cds_service.feedback")


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    service = service_or_404(service_id)
    items = parse_feedback(json_body())
    stored, duplicates = runtime().feedback.add(service.id, items)
    log.info("feedback service=%s stored=%d duplicates=%d", service.id, stored, duplicates)
    return jsonify({"stored": stored, "duplicates": duplicates})
