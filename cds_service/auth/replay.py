"""The short-term ``jti`` store that refuses a replayed client JWT (cds-hooks.md item 28.6).

Kept in the feedback SQLite file (``CDS_FEEDBACK_DB``), table ``jwt_replay``. The UNIQUE (iss, jti)
constraint makes the check atomic across threads and gunicorn workers on one host: of two workers
that receive the same token at once, exactly one insert succeeds. Rows are kept until the token
could no longer be accepted (``exp`` + leeway), then purged.

Replicas on several hosts do not share a SQLite file; they would need a shared store with the same
"insert if absent, with expiry" operation, e.g. Redis ``SET jti:<iss>:<jti> 1 NX EXAT <expires_at>``.
"""

from __future__ import annotations

import time
from contextlib import closing
from pathlib import Path

from ..feedback_store import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS jwt_replay (
    jti TEXT NOT NULL,
    iss TEXT NOT NULL,
    expires_at REAL NOT NULL,
    UNIQUE (iss, jti)
);
CREATE INDEX IF NOT EXISTS jwt_replay_expires_at ON jwt_replay (expires_at);
"""


class ReplayStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        with closing(connect(path)) as conn:
            conn.executescript(SCHEMA)

    def first_use(self, iss: str, jti: str, expires_at: float, *, now: float | None = None) -> bool:
        """Record (iss, jti) until ``expires_at``; False if it was already recorded and unexpired."""
        now = time.time() if now is None else now
        with closing(connect(self.path)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM jwt_replay WHERE expires_at < ?", (now,))
            inserted = conn.execute(
                "INSERT OR IGNORE INTO jwt_replay (jti, iss, expires_at) VALUES (?, ?, ?)", (jti, iss, expires_at)
            ).rowcount
            conn.execute("COMMIT")
        return inserted == 1

    def count(self) -> int:
        with closing(connect(self.path)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM jwt_replay").fetchone()[0])
