"""Short-lived keys in the database, when no Redis is configured (``ShortLived``).

The JWT ``jti`` replay store (cds-hooks.md item 28.6), table ``jwt_replay``: the UNIQUE (iss, jti)
constraint makes the check atomic across threads, workers and (on PostgreSQL) replicas: of two
that receive the same token at once, exactly one insert succeeds. Rows are kept until the token
could no longer be accepted (``exp`` + leeway), then purged.

Call counts per name and fixed window, table ``call_window`` (the feedback rate limit): one upsert
returns the count; windows before the current one are purged as calls come in.
"""

from __future__ import annotations

import time

from .database import Database

WAIT_S = 2.0
"""How long a JWT check or a count waits for the database: the caller answers 503 after that."""


class SqlShortLived:
    def __init__(self, db: Database) -> None:
        self.db = db

    def first_use(self, iss: str, jti: str, expires_at: float, *, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        with self.db.transaction(wait_s=WAIT_S) as tx:
            tx.execute("DELETE FROM jwt_replay WHERE expires_at < ?", (now,))
            inserted = tx.execute(
                "INSERT INTO jwt_replay (jti, iss, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING 1",
                (jti, iss, expires_at),
            )
        return len(inserted) == 1

    def hit(self, name: str, window_s: int, *, now: float | None = None) -> int:
        start = int(time.time() if now is None else now) // window_s * window_s
        with self.db.transaction(wait_s=WAIT_S) as tx:
            tx.execute("DELETE FROM call_window WHERE window_start < ?", (start - window_s,))
            [(hits,)] = tx.execute(
                "INSERT INTO call_window (name, window_start, hits) VALUES (?, ?, 1) "
                "ON CONFLICT (name, window_start) DO UPDATE SET hits = call_window.hits + 1 RETURNING hits",
                (name, start),
            )
        return int(hits)

    def check(self) -> None:
        """The database's own readiness check covers this store."""
