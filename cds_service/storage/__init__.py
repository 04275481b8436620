"""Where the service keeps what outlives a request, and what several replicas must share.

- ``database``: feedback and the record of issued cards, in the embedded SQLite file
  (``CDS_FEEDBACK_DB``, the default) or PostgreSQL (``CDS_DATABASE_URL``), with a versioned schema
  (``migrations``).
- ``short_lived``: what expires within the hour: the JWT ``jti`` replay store and the per-client call
  counts of the feedback rate limit. In the database, or in Redis when ``CDS_REDIS_URL`` is set
  (``redis_store``, which also shares fetched JWKS and their fetch budget).
- ``stores``: ``open_stores(config)`` builds them as the app uses them.

Every store raises ``StoreDown`` when it cannot answer; nothing else of a driver leaks out.
"""

from __future__ import annotations

from typing import Protocol


class StoreDown(Exception):
    """A store did not answer or refused the write; ``store`` is ``database`` or ``redis``."""

    def __init__(self, store: str, cause: BaseException) -> None:
        self.store = store
        self.kind = type(cause).__name__
        first_line = (str(cause).strip().splitlines() or [""])[0][:200]
        self.reason = f"{self.kind}: {first_line}" if first_line else self.kind
        super().__init__(f"{store} unavailable ({self.kind})")


class ShortLived(Protocol):
    """Keys that expire by themselves, shared by every worker and replica using the same store."""

    def first_use(self, iss: str, jti: str, expires_at: float, *, now: float | None = None) -> bool:
        """Record (iss, jti) until ``expires_at`` (epoch seconds); False if already recorded and unexpired.

        Atomic: of any number of simultaneous calls with the same (iss, jti), exactly one gets True.
        """

    def hit(self, name: str, window_s: int, *, now: float | None = None) -> int:
        """Count one call under ``name`` in the current fixed window of ``window_s`` seconds; the count so far."""

    def check(self) -> None:
        """Raise ``StoreDown`` unless the store takes a write now (readiness)."""
