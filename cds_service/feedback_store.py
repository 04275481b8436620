"""Feedback (CDS Hooks 2.0 "Feedback") and the record of the cards it is about, in the database.

Feedback is idempotent on (service, card, outcome, outcomeTimestamp): clients may resend the same
feedback. It is committed durably before the call is answered, so a 200 means stored, on SQLite and
PostgreSQL alike (``storage.database``; every query here is written once for both).

Each issued card is recorded by uuid with its service, ``hookInstance``, the statement ids it cites,
the knowledge-base version and the time: never a patient identifier. Feedback joins to it by card
uuid, which answers "which statements are overridden, and why". Rows older than the retention
period are purged at start-up and then once a day.
"""

from __future__ import annotations

import builtins
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .knowledge.render import EXT_STATEMENTS, EXT_VERSION
from .protocol.cards import Card
from .storage import StoreDown
from .storage.database import Database

log = logging.getLogger("cds_service.feedback")

DEFAULT_RETENTION_DAYS = 365
PURGE_EVERY_S = 24 * 3600.0
PURGE_RETRY_S = 3600.0
RECORD_BUSY_S = 0.25
"""How long recording issued cards waits for another writer or a connection: the hook does not wait longer."""


@dataclass(frozen=True)
class FeedbackItem:
    card: str
    outcome: str
    outcome_timestamp: str
    accepted_suggestions: tuple[str, ...] = ()
    override_reason: dict[str, Any] | None = None


@dataclass(frozen=True)
class IssuedCard:
    """What is kept of an issued card: what it cited and from which knowledge base, nothing of the patient."""

    card: str
    statements: tuple[str, ...]
    knowledge_version: str

    @classmethod
    def of(cls, card: Card) -> IssuedCard:
        extension = card.extension or {}
        return cls(card.uuid, tuple(extension.get(EXT_STATEMENTS) or ()), str(extension.get(EXT_VERSION) or ""))


def utc_text(moment: datetime) -> str:
    """The one spelling of a time in the store, ``2026-03-01T12:00:00.000Z``: sorts as it reads."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FeedbackStore:
    def __init__(
        self,
        db: Database,
        *,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` paces the daily purge (seconds, monotonic); tests pass a fake one."""
        if retention_days < 1:
            raise ValueError("the retention period must be at least one day")
        self.db = db
        self.retention_days = retention_days
        self.clock = clock
        self._next_purge = float("-inf")  # monotonic time of the next purge during a hook call

    def purge_at_start(self) -> None:
        """Rows past the retention period go as the service starts (a database down then is retried later)."""
        try:
            cards, feedback = self.purge()
        except StoreDown as down:
            log.warning("retention purge failed; retried in an hour", extra={"fields": {"error": down.kind}})
            self._next_purge = self.clock() + PURGE_RETRY_S
            return
        log.info(
            "retention purge", extra={"fields": {"cards": cards, "feedback": feedback, "days": self.retention_days}}
        )

    def add(self, service_id: str, items: Iterable[FeedbackItem]) -> tuple[int, int]:
        """Store items in one durable transaction; return (stored, duplicates). Raises ``StoreDown``."""
        received_at = utc_text(datetime.now(UTC))
        rows = [
            (
                service_id,
                item.card,
                item.outcome,
                item.outcome_timestamp,
                json.dumps(list(item.accepted_suggestions)) if item.accepted_suggestions else None,
                json.dumps(item.override_reason) if item.override_reason else None,
                received_at,
            )
            for item in items
        ]
        with self.db.transaction() as tx:
            stored = tx.executemany(
                "INSERT INTO feedback (service_id, card, outcome, outcome_timestamp, accepted_suggestions, "
                "override_reason, received_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )
        return stored, len(rows) - stored

    def list(self, service_id: str | None = None, card: str | None = None) -> builtins.list[dict[str, Any]]:
        query = (
            "SELECT service_id, card, outcome, outcome_timestamp, accepted_suggestions, override_reason FROM feedback"
        )
        clauses, args = [], []
        for column, value in (("service_id", service_id), ("card", card)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        with self.db.transaction() as tx:
            rows = tx.execute(query + " ORDER BY id", args)
        return [
            {
                "serviceId": row[0],
                "card": row[1],
                "outcome": row[2],
                "outcomeTimestamp": row[3],
                "acceptedSuggestions": json.loads(row[4]) if row[4] else [],
                "overrideReason": json.loads(row[5]) if row[5] else None,
            }
            for row in rows
        ]

    # --- issued cards -------------------------------------------------------------------------

    def record_issued(
        self, service_id: str, hook_instance: str, cards: Sequence[IssuedCard], *, at: datetime | None = None
    ) -> int:
        """Record issued cards in one short transaction; return how many were new.

        Runs inside the hook call, so it waits ``RECORD_BUSY_S`` at most and commits without waiting
        for the disk (safe against a crashed process; a power cut may lose the last records, which
        no answer depended on).
        """
        if not cards:
            return 0
        issued_at = utc_text(at or datetime.now(UTC))
        rows = [
            (c.card, service_id, hook_instance, json.dumps(list(c.statements)), c.knowledge_version, issued_at)
            for c in cards
        ]
        with self.db.transaction(wait_s=RECORD_BUSY_S, durable=False) as tx:
            return tx.executemany(
                "INSERT INTO issued_card (card, service_id, hook_instance, statements, knowledge_version, issued_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )

    def issued(self, card: str | None = None) -> builtins.list[dict[str, Any]]:
        """Recorded issued cards, oldest first (all columns, for reports and tests)."""
        columns = ("card", "service_id", "hook_instance", "statements", "knowledge_version", "issued_at")
        query = f"SELECT {', '.join(columns)} FROM issued_card"
        args = [card] if card is not None else []
        with self.db.transaction() as tx:
            rows = tx.execute(
                query + (" WHERE card = ?" if card is not None else "") + " ORDER BY issued_at, card", args
            )
        return [dict(zip(columns, row, strict=True)) | {"statements": json.loads(row[3])} for row in rows]

    # --- retention ----------------------------------------------------------------------------

    def purge(self, *, now: datetime | None = None, wait_s: float = 10.0) -> tuple[int, int]:
        """Delete issued cards and feedback older than the retention period; return (cards, feedback).

        A row exactly ``retention_days`` old is kept; one a millisecond older goes.
        """
        cutoff = utc_text((now or datetime.now(UTC)) - timedelta(days=self.retention_days))
        with self.db.transaction(wait_s=wait_s) as tx:
            cards = tx.execute("DELETE FROM issued_card WHERE issued_at < ? RETURNING card", (cutoff,))
            feedback = tx.execute("DELETE FROM feedback WHERE received_at < ? RETURNING id", (cutoff,))
        self._next_purge = self.clock() + PURGE_EVERY_S
        return len(cards), len(feedback)

    def purge_if_due(self) -> None:
        """Purge once a day, so a long-running worker keeps the retention; a failed purge is retried in an hour.

        Called during hook calls, so it waits for another writer no longer than recording does.
        """
        if self.clock() < self._next_purge:
            return
        self._next_purge = self.clock() + PURGE_RETRY_S
        cards, feedback = self.purge(wait_s=RECORD_BUSY_S)
        log.info(
            "retention purge", extra={"fields": {"cards": cards, "feedback": feedback, "days": self.retention_days}}
        )

    # --- readiness and reports ----------------------------------------------------------------

    def check_writable(self, *, wait_s: float = 1.0) -> None:
        """Take the write lock, insert a row, roll back: raises ``StoreDown`` if not writable."""
        with self.db.transaction(wait_s=wait_s) as tx:
            tx.execute(
                "INSERT INTO issued_card (card, service_id, hook_instance, statements, knowledge_version, issued_at) "
                "VALUES ('', '', '', '[]', '', '') ON CONFLICT DO NOTHING"
            )
            tx.rollback_at_end()

    def statement_tallies(self) -> builtins.list[tuple[str, int, int, int]]:
        """Per cited statement id: cards shown, cards accepted, cards overridden (a card counts once each)."""
        query = f"""
            SELECT s.value, COUNT(DISTINCT i.card),
                   COUNT(DISTINCT CASE WHEN f.outcome = 'accepted' THEN i.card END),
                   COUNT(DISTINCT CASE WHEN f.outcome = 'overridden' THEN i.card END)
            FROM issued_card i
            CROSS JOIN {self.db.dialect.json_elements.format(column="i.statements")}
            LEFT JOIN feedback f ON f.card = i.card AND f.service_id = i.service_id
            GROUP BY s.value
        """
        with self.db.transaction() as tx:
            return [(str(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in tx.execute(query)]

    def overrides(self) -> builtins.list[tuple[str, tuple[str, ...], dict[str, Any] | None]]:
        """Every override of a recorded card: (card, the statements it cited, the override reason)."""
        query = """
            SELECT i.card, i.statements, f.override_reason
            FROM feedback f JOIN issued_card i ON i.card = f.card AND i.service_id = f.service_id
            WHERE f.outcome = 'overridden' ORDER BY f.id
        """
        with self.db.transaction() as tx:
            rows = tx.execute(query)
        return [(r[0], tuple(json.loads(r[1])), json.loads(r[2]) if r[2] else None) for r in rows]

    def issued_totals(self) -> builtins.list[tuple[str, int, int]]:
        """Per knowledge-base version: cards issued and hook calls that issued them."""
        query = (
            "SELECT knowledge_version, COUNT(*), COUNT(DISTINCT hook_instance) FROM issued_card "
            "GROUP BY knowledge_version ORDER BY MIN(issued_at)"
        )
        with self.db.transaction() as tx:
            return [(str(r[0]), int(r[1]), int(r[2])) for r in tx.execute(query)]

    def unmatched_feedback(self) -> int:
        """Cards with feedback but no issued record (issued before recording began, purged, or unknown)."""
        query = """
            SELECT COUNT(DISTINCT f.card) FROM feedback f
            WHERE NOT EXISTS (SELECT 1 FROM issued_card i WHERE i.card = f.card AND i.service_id = f.service_id)
        """
        with self.db.transaction() as tx:
            [(count,)] = tx.execute(query)
        return int(count)


def record_issued_cards(store: FeedbackStore, service_id: str, hook_instance: str, cards: Sequence[Card]) -> None:
    """Record a hook call's cards; a failing store is logged, never fails the hook (no card depends on it)."""
    try:
        store.record_issued(service_id, hook_instance, [IssuedCard.of(card) for card in cards])
    except StoreDown as down:
        fields = {"hookInstance": hook_instance, "error": down.kind}
        log.warning("issued cards not recorded", extra={"fields": fields})
        return
    try:
        store.purge_if_due()
    except StoreDown as down:
        log.warning("retention purge failed; retried in an hour", extra={"fields": {"error": down.kind}})
