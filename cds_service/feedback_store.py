"""Feedback storage in SQLite (CDS Hooks 2.0 "Feedback"), and the record of the cards it is about.

Feedback is idempotent on (service, card, outcome, outcomeTimestamp): clients may resend the same
feedback. It is committed with full synchronisation before the call is answered, so a 200 means
stored. WAL mode and a busy timeout let several gunicorn workers and threads write at once.

Each issued card is recorded by uuid with its service, ``hookInstance``, the statement ids it cites,
the knowledge-base version and the time: never a patient identifier. Feedback joins to it by card
uuid, which answers "which statements are overridden, and why". Rows older than the retention
period are purged at start-up and then once a day.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .knowledge.render import EXT_STATEMENTS, EXT_VERSION
from .protocol.cards import Card

log = logging.getLogger("cds_service.feedback")

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    service_id TEXT NOT NULL,
    card TEXT NOT NULL,
    outcome TEXT NOT NULL,
    outcome_timestamp TEXT NOT NULL,
    accepted_suggestions TEXT,
    override_reason TEXT,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (service_id, card, outcome, outcome_timestamp)
);
CREATE INDEX IF NOT EXISTS feedback_received_at ON feedback (received_at);
CREATE TABLE IF NOT EXISTS issued_card (
    card TEXT PRIMARY KEY,
    service_id TEXT NOT NULL,
    hook_instance TEXT NOT NULL,
    statements TEXT NOT NULL,
    knowledge_version TEXT NOT NULL,
    issued_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS issued_card_issued_at ON issued_card (issued_at);
"""

DEFAULT_RETENTION_DAYS = 365
PURGE_EVERY_S = 24 * 3600.0
PURGE_RETRY_S = 3600.0
RECORD_BUSY_S = 0.25
"""How long recording issued cards waits for another writer: the hook does not wait longer."""


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
    """The one spelling of a time in the store, as SQLite's ``strftime('%Y-%m-%dT%H:%M:%fZ')``: sorts as it reads."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def connect(path: Path, *, busy_s: float = 10.0) -> sqlite3.Connection:
    """A connection with the settings every writer needs (WAL, busy timeout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=busy_s, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA busy_timeout={int(busy_s * 1000)}")
    return conn


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class _ThreadConnection(threading.local):
    conn: sqlite3.Connection | None = None
    pid: int = 0


class FeedbackStore:
    def __init__(
        self,
        path: Path,
        *,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` paces the daily purge (seconds, monotonic); tests pass a fake one."""
        if retention_days < 1:
            raise ValueError("the retention period must be at least one day")
        self.path = path
        self.retention_days = retention_days
        self.clock = clock
        self._local = _ThreadConnection()
        self._next_purge = float("-inf")  # monotonic time of the next purge during a hook call
        with closing(connect(path)) as conn:
            conn.executescript(SCHEMA)

    @classmethod
    def open(
        cls, path: Path, *, retention_days: int = DEFAULT_RETENTION_DAYS, clock: Callable[[], float] = time.monotonic
    ) -> FeedbackStore:
        """The store as the service starts it: schema in place and rows past the retention period purged."""
        store = cls(path, retention_days=retention_days, clock=clock)
        cards, feedback = store.purge()
        log.info("retention purge", extra={"fields": {"cards": cards, "feedback": feedback, "days": retention_days}})
        return store

    def add(self, service_id: str, items: Iterable[FeedbackItem]) -> tuple[int, int]:
        """Store items in one transaction; return (stored, duplicates)."""
        rows = [
            (
                service_id,
                item.card,
                item.outcome,
                item.outcome_timestamp,
                json.dumps(list(item.accepted_suggestions)) if item.accepted_suggestions else None,
                json.dumps(item.override_reason) if item.override_reason else None,
            )
            for item in items
        ]
        with closing(connect(self.path)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO feedback (service_id, card, outcome, outcome_timestamp, "
                "accepted_suggestions, override_reason) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            stored = conn.total_changes - before
            conn.execute("COMMIT")
        return stored, len(rows) - stored

    def list(self, service_id: str | None = None, card: str | None = None) -> list[dict[str, Any]]:
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
        with closing(connect(self.path)) as conn:
            rows = conn.execute(query + " ORDER BY id", args).fetchall()
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

        Runs inside the hook call, so it uses this thread's open connection and commits without
        waiting for the disk (WAL ``synchronous=NORMAL``: safe against a crashed process; a power
        cut may lose the last records, which no answer depended on).
        """
        if not cards:
            return 0
        issued_at = utc_text(at or datetime.now(UTC))
        rows = [
            (c.card, service_id, hook_instance, json.dumps(list(c.statements)), c.knowledge_version, issued_at)
            for c in cards
        ]
        conn = self._thread_connection()
        try:
            with _transaction(conn):
                before = conn.total_changes
                conn.executemany(
                    "INSERT OR IGNORE INTO issued_card (card, service_id, hook_instance, statements, "
                    "knowledge_version, issued_at) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
                return conn.total_changes - before
        except sqlite3.Error:
            self._drop_thread_connection()
            raise

    def issued(self, card: str | None = None) -> builtins.list[dict[str, Any]]:
        """Recorded issued cards, oldest first (all columns, for reports and tests)."""
        query = "SELECT card, service_id, hook_instance, statements, knowledge_version, issued_at FROM issued_card"
        args = [card] if card is not None else []
        with closing(connect(self.path)) as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                query + (" WHERE card = ?" if card is not None else "") + " ORDER BY issued_at, card", args
            )
            return [dict(row) | {"statements": json.loads(row["statements"])} for row in rows]

    def _thread_connection(self) -> sqlite3.Connection:
        """This thread's connection (a forked worker opens its own)."""
        local = self._local
        if local.conn is None or local.pid != os.getpid():
            local.conn = connect(self.path, busy_s=RECORD_BUSY_S)
            local.conn.execute("PRAGMA synchronous=NORMAL")
            local.pid = os.getpid()
        return local.conn

    def _drop_thread_connection(self) -> None:
        conn, self._local.conn = self._local.conn, None
        if conn is not None:
            conn.close()

    # --- retention ----------------------------------------------------------------------------

    def purge(self, *, now: datetime | None = None, busy_s: float = 10.0) -> tuple[int, int]:
        """Delete issued cards and feedback older than the retention period; return (cards, feedback).

        A row exactly ``retention_days`` old is kept; one a millisecond older goes.
        """
        cutoff = utc_text((now or datetime.now(UTC)) - timedelta(days=self.retention_days))
        with closing(connect(self.path, busy_s=busy_s)) as conn, _transaction(conn):
            cards = conn.execute("DELETE FROM issued_card WHERE issued_at < ?", (cutoff,)).rowcount
            feedback = conn.execute("DELETE FROM feedback WHERE received_at < ?", (cutoff,)).rowcount
        self._next_purge = self.clock() + PURGE_EVERY_S
        return cards, feedback

    def purge_if_due(self) -> None:
        """Purge once a day, so a long-running worker keeps the retention; a failed purge is retried in an hour.

        Called during hook calls, so it waits for another writer no longer than recording does.
        """
        if self.clock() < self._next_purge:
            return
        self._next_purge = self.clock() + PURGE_RETRY_S
        cards, feedback = self.purge(busy_s=RECORD_BUSY_S)
        log.info(
            "retention purge", extra={"fields": {"cards": cards, "feedback": feedback, "days": self.retention_days}}
        )

    # --- readiness and reports ----------------------------------------------------------------

    def check_writable(self, *, busy_s: float = 1.0) -> None:
        """Take the write lock, insert a row, roll back: raises ``sqlite3.Error``/``OSError`` if not writable."""
        with closing(connect(self.path, busy_s=busy_s)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO issued_card VALUES ('', '', '', '[]', '', '')")
            conn.execute("ROLLBACK")

    def statement_tallies(self) -> builtins.list[tuple[str, int, int, int]]:
        """Per cited statement id: cards shown, cards accepted, cards overridden (a card counts once each)."""
        query = """
            SELECT s.value, COUNT(DISTINCT i.card),
                   COUNT(DISTINCT CASE WHEN f.outcome = 'accepted' THEN i.card END),
                   COUNT(DISTINCT CASE WHEN f.outcome = 'overridden' THEN i.card END)
            FROM issued_card i
            JOIN json_each(i.statements) s
            LEFT JOIN feedback f ON f.card = i.card AND f.service_id = i.service_id
            GROUP BY s.value
        """
        with closing(connect(self.path)) as conn:
            return [(str(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in conn.execute(query)]

    def overrides(self) -> builtins.list[tuple[str, tuple[str, ...], dict[str, Any] | None]]:
        """Every override of a recorded card: (card, the statements it cited, the override reason)."""
        query = """
            SELECT i.card, i.statements, f.override_reason
            FROM feedback f JOIN issued_card i ON i.card = f.card AND i.service_id = f.service_id
            WHERE f.outcome = 'overridden' ORDER BY f.id
        """
        with closing(connect(self.path)) as conn:
            rows = conn.execute(query).fetchall()
        return [(r[0], tuple(json.loads(r[1])), json.loads(r[2]) if r[2] else None) for r in rows]

    def issued_totals(self) -> builtins.list[tuple[str, int, int]]:
        """Per knowledge-base version: cards issued and hook calls that issued them."""
        query = (
            "SELECT knowledge_version, COUNT(*), COUNT(DISTINCT hook_instance) FROM issued_card "
            "GROUP BY knowledge_version ORDER BY MIN(issued_at)"
        )
        with closing(connect(self.path)) as conn:
            return [(str(r[0]), int(r[1]), int(r[2])) for r in conn.execute(query)]

    def unmatched_feedback(self) -> int:
        """Cards with feedback but no issued record (issued before recording began, purged, or unknown)."""
        query = """
            SELECT COUNT(DISTINCT f.card) FROM feedback f
            WHERE NOT EXISTS (SELECT 1 FROM issued_card i WHERE i.card = f.card AND i.service_id = f.service_id)
        """
        with closing(connect(self.path)) as conn:
            return int(conn.execute(query).fetchone()[0])


def record_issued_cards(store: FeedbackStore, service_id: str, hook_instance: str, cards: Sequence[Card]) -> None:
    """Record a hook call's cards; a failing store is logged, never fails the hook (no card depends on it)."""
    try:
        store.record_issued(service_id, hook_instance, [IssuedCard.of(card) for card in cards])
    except (sqlite3.Error, OSError) as error:
        fields = {"hookInstance": hook_instance, "error": type(error).__name__}
        log.warning("issued cards not recorded", extra={"fields": fields})
        return
    try:
        store.purge_if_due()
    except (sqlite3.Error, OSError) as error:
        log.warning("retention purge failed; retried in an hour", extra={"fields": {"error": type(error).__name__}})
