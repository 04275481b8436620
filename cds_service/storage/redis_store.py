"""Redis (``CDS_REDIS_URL``) for what is short-lived and shared by every replica.

- The ``jti`` replay store: ``SET <key> 1 NX EXAT <expiry>``, atomic, expiring by itself.
- Call counts per fixed window: ``INCR`` and ``EXPIREAT`` in one MULTI.
- Fetched JWKS (``JwksShare``): a key set one replica fetched is read by the others until it is
  ``max_age_s`` old, and the per-issuer budget of fetches of unproven ``jku`` URLs is counted here,
  so replicas do not multiply it.

Keys are ``cds:<what>:<sha256 of the parts>``: fixed length whatever a token carries. Every command
waits ``TIMEOUT_S`` at most; a Redis that does not answer raises ``StoreDown("redis")``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping
from typing import Any

from . import StoreDown

TIMEOUT_S = 1.0


def key(what: str, *parts: str) -> str:
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()
    return f"cds:{what}:{digest}"


class RedisStore:
    """One client (and connection pool) per process, opened on first use."""

    def __init__(self, url: str) -> None:
        import redis  # the redis extra; ImportError tells the caller it is missing
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url = url
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S,
            health_check_interval=30,
            retry=Retry(NoBackoff(), 0),  # a failed command is not repeated: the caller answers within its bound
            decode_responses=True,
        )

    def run(self, command: str, *args: Any, **options: Any) -> Any:
        try:
            return getattr(self.client, command)(*args, **options)
        except self._errors as error:
            raise StoreDown("redis", error) from None

    def pipeline(self, *commands: tuple[str, tuple[Any, ...]]) -> list[Any]:
        """Several commands in one MULTI/EXEC: all or none."""
        try:
            with self.client.pipeline(transaction=True) as pipe:
                for command, args in commands:
                    getattr(pipe, command)(*args)
                return list(pipe.execute())
        except self._errors as error:
            raise StoreDown("redis", error) from None

    def close(self) -> None:
        self.client.close()


class RedisShortLived:
    def __init__(self, store: RedisStore) -> None:
        self.store = store

    def first_use(self, iss: str, jti: str, expires_at: float, *, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        expiry = max(math.ceil(expires_at), math.floor(now) + 1)
        return bool(self.store.run("set", key("jti", iss, jti), "1", nx=True, exat=expiry))

    def hit(self, name: str, window_s: int, *, now: float | None = None) -> int:
        start = int(time.time() if now is None else now) // window_s * window_s
        name_key = key("calls", name, str(start))
        hits, _ = self.store.pipeline(("incr", (name_key,)), ("expireat", (name_key, start + 2 * window_s)))
        return int(hits)

    def check(self) -> None:
        """A write that expires at once: Redis answers and takes writes (not read-only, not out of memory)."""
        self.store.run("set", "cds:ready", "1", px=1)


class JwksShare:
    """Key sets and fetch budgets shared through Redis (see ``auth.jwks.JwksCache``)."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    def keys(self, url: str) -> tuple[dict[str, Mapping[str, Any]], float] | None:
        """The key set a replica fetched from ``url`` and when (epoch seconds), or None."""
        text = self.store.run("get", key("jwks", url))
        shared = json.loads(text) if text else None
        if not isinstance(shared, dict) or not isinstance(shared.get("keys"), dict):
            return None
        return shared["keys"], float(shared.get("fetchedAt") or 0)

    def publish(self, url: str, keys: Mapping[str, Mapping[str, Any]], max_age_s: float) -> None:
        shared = json.dumps({"keys": keys, "fetchedAt": time.time()})
        self.store.run("set", key("jwks", url), shared, px=max(1, int(max_age_s * 1000)))

    def fetches(self, owner: str) -> int:
        """Count one fetch of an unproven URL for ``owner`` in this minute; the count so far."""
        return RedisShortLived(self.store).hit(f"jwks-fetch\n{owner}", 60)
