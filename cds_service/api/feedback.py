"""``POST /cds-services/{id}/feedback`` (CDS Hooks 2.0 "Feedback").

Bounded per caller, so one client cannot fill the database: the body by ``CDS_MAX_FEEDBACK_BYTES``
(413), the items by ``protocol.feedback.MAX_ITEMS`` (400), and the calls by ``CDS_FEEDBACK_PER_MINUTE``
per client (429 with ``Retry-After``). The client is the JWT's ``iss`` when authentication is on,
else the caller's address. Calls are counted in the short-lived store (Redis or the database), so
the limit holds across replicas. A 200 means committed; a store that cannot take the feedback is a
503 and nothing is acknowledged.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, g, jsonify, request

from ..errors import BodyTooLarge, StoreUnavailable, TooManyRequests
from ..logs import note
from ..metrics import record_feedback
from ..protocol.feedback import parse_feedback
from ..runtime import runtime
from ..storage import StoreDown
from .hooks import service_or_404
from .http import json_body

bp = Blueprint("feedback", __name__)
log = logging.getLogger("cds_service.feedback")
WINDOW_S = 60


class FeedbackNotStored(StoreUnavailable):
    """503: the store did not commit (unreachable, locked past its timeout, read-only, disk full)."""


def _limit_body(limit: int) -> None:
    """413 for a feedback body over ``CDS_MAX_FEEDBACK_BYTES``, far below the hook's limit: one caller
    must not fill the disk quickly. A chunked body is cut off by werkzeug at the same limit."""
    if (request.content_length or 0) > limit:
        raise BodyTooLarge(f"A feedback call may carry at most {limit} bytes (CDS_MAX_FEEDBACK_BYTES)")
    request.max_content_length = limit


def _count_call(limit: int) -> None:
    """429 beyond ``limit`` calls by this client in the current minute, counted across replicas."""
    client = g.get("client_iss") or request.remote_addr or "unknown"
    now = time.time()
    try:
        calls = runtime().stores.short_lived.hit(f"feedback\n{client}", WINDOW_S, now=now)
    except StoreDown as down:
        log.warning("feedback not counted", extra={"fields": {"store": down.store, "error": down.kind}})
        raise FeedbackNotStored("The feedback could not be stored; send it again later") from None
    if calls > limit:
        raise TooManyRequests(
            f"At most {limit} feedback calls per minute from one client (CDS_FEEDBACK_PER_MINUTE)",
            retry_after_s=WINDOW_S - int(now) % WINDOW_S,
        )


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    service = service_or_404(service_id)
    config = runtime().config
    _limit_body(config.max_feedback_bytes)
    items = parse_feedback(json_body())
    _count_call(config.feedback_per_minute)
    try:
        stored, duplicates = runtime().feedback.add(service.id, items)
    except StoreDown as down:
        log.warning("feedback not stored", extra={"fields": {"error": down.kind}})
        raise FeedbackNotStored("The feedback could not be stored; send it again later") from None
    record_feedback(items)  # metrics by outcome (CDS_METRICS)
    accepted = sum(item.outcome == "accepted" for item in items)
    note(accepted=accepted, overridden=len(items) - accepted, stored=stored, duplicates=duplicates)  # logs.py logs
    return jsonify({"stored": stored, "duplicates": duplicates})
