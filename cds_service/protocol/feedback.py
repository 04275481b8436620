"""Validation of feedback calls (CDS Hooks 2.0 "Feedback"; 3.0 invariants cds-fb-1..3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..errors import InvalidRequest
from ..feedback_store import FeedbackItem

MAX_ITEMS = 100
MAX_TEXT = 1024  # ids, codes, systems, displays
MAX_COMMENT = 2000  # a clinician's userComment: stored as sent, so bounded (with CDS_MAX_FEEDBACK_BYTES per call)


def _string(value: Any, where: str, most: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"'{where}' must be a non-empty string", expression=[where])
    if len(value) > most:
        raise InvalidRequest(f"'{where}' must be at most {most} characters long", expression=[where])
    return value


def _timestamp(value: Any, where: str) -> str:
    text = _string(value, where)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"'{where}' must be an RFC 3339 date-time", expression=[where]) from None
    if parsed.tzinfo is None:
        raise InvalidRequest(f"'{where}' must carry a time zone (UTC)", expression=[where])
    try:
        in_utc = parsed.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-14:00, which is in the year 10000 in UTC
        raise InvalidRequest(
            f"'{where}' is out of range: in UTC it falls after the year 9999", expression=[where]
        ) from None
    # One spelling per instant, so the same feedback resent as "...00Z" or "...00.000Z" is one item.
    return in_utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _accepted(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidRequest(
            f"'{where}' is required with outcome 'accepted' and lists suggestion ids", expression=[where]
        )
    ids = []
    for n, suggestion in enumerate(value):
        if not isinstance(suggestion, dict):
            raise InvalidRequest(f"'{where}[{n}]' must be an object with an 'id'", expression=[f"{where}[{n}]"])
        ids.append(_string(suggestion.get("id"), f"{where}[{n}].id"))
    return tuple(ids)


def _override_reason(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{where}' must be an object", expression=[where])
    reason, comment = value.get("reason"), value.get("userComment")
    if reason is None and comment is None:
        raise InvalidRequest(f"'{where}' needs a 'reason' or a 'userComment'", expression=[where])
    out: dict[str, Any] = {}
    if reason is not None:
        if not isinstance(reason, dict):
            raise InvalidRequest(f"'{where}.reason' must be a Coding", expression=[f"{where}.reason"])
        # The CDS Hooks sandbox sends the coding without display: accept that.
        out["reason"] = {
            "code": _string(reason.get("code"), f"{where}.reason.code"),
            "system": _string(reason.get("system"), f"{where}.reason.system"),
        }
        if reason.get("display") is not None:
            out["reason"]["display"] = _string(reason.get("display"), f"{where}.reason.display")
    if comment is not None:
        out["userComment"] = _string(comment, f"{where}.userComment", MAX_COMMENT)
    return out


def parse_feedback(body: Any) -> list[FeedbackItem]:
    if not isinstance(body, dict) or not isinstance(body.get("feedback"), list) or not body["feedback"]:
        raise InvalidRequest("The body must be an object with a non-empty 'feedback' array", expression=["feedback"])
    if len(body["feedback"]) > MAX_ITEMS:
        raise InvalidRequest(f"At most {MAX_ITEMS} feedback items per call", expression=["feedback"])
    items = []
    for n, raw in enumerate(body["feedback"]):
        where = f"feedback[{n}]"
        if not isinstance(raw, dict):
            raise InvalidRequest(f"'{where}' must be an object", expression=[where])
        outcome = raw.get("outcome")
        if outcome not in ("accepted", "overridden"):
            raise InvalidRequest(
                f"'{where}.outcome' must be 'accepted' or 'overridden'", expression=[f"{where}.outcome"]
            )
        accepted = (
            _accepted(raw.get("acceptedSuggestions"), f"{where}.acceptedSuggestions") if outcome == "accepted" else ()
        )
        items.append(
            FeedbackItem(
                card=_string(raw.get("card"), f"{where}.card"),
                outcome=outcome,
                outcome_timestamp=_timestamp(raw.get("outcomeTimestamp"), f"{where}.outcomeTimestamp"),
                accepted_suggestions=accepted,
                override_reason=_override_reason(raw.get("overrideReason"), f"{where}.overrideReason"),
            )
        )
    return items
