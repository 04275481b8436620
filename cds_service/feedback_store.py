"""Feedback storage in SQLite (CDS Hooks 2.0 "Feedback").

Idempotent on (service, card, outcome, outcomeTimestamp): clients may resend the same feedback.
WAL mode and a busy timeout let several gunicorn workers and threads write at once without loss.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
"""


@dataclass(frozen=True)
class FeedbackItem:
    card: str
    outcome: str
    outcome_timestamp: str
    accepted_suggestions: tuple[str, ...] = ()
    override_reason: dict[str, Any] | None = None


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the settings every writer needs (WAL, busy timeout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


class FeedbackStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        with closing(connect(path)) as conn:
            conn.executescript(SCHEMA)

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
