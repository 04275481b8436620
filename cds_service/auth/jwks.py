"""Fetches and caches clients' public keys (JWKS) from ``jwks_uri`` or an allow-listed ``jku``.

A rotating cache (cds-hooks.md item 28.5): keys are kept per URL for ``max_age_s``; a token with an
unknown ``kid`` triggers a refresh, but at most one fetch per URL every ``min_refresh_s``, so a flood
of made-up ``kid`` values cannot turn the service into a request amplifier; made-up URLs (distinct
``jku`` paths under an allowed prefix) are bounded too: at most ``max_fetches_per_minute`` fetches in
all, and at most ``max_entries`` URLs cached (least recently used dropped). Each fetch is bounded:
``timeout_s`` overall, ``max_bytes`` of body, no redirects. Tokens whose keys are cached need no
fetch, so a flood of bad tokens does not lock out good ones.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from .issuers import TrustedIssuersError, parse_jwks

log = logging.getLogger("cds_service.auth")


class JwksUnavailable(Exception):
    """No key set could be obtained from a URL (network, status, size or format)."""


@dataclass
class _Entry:
    keys: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    fetched_at: float | None = None
    attempted_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class JwksCache:
    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        timeout_s: float = 2.0,
        max_bytes: int = 65_536,
        min_refresh_s: float = 60.0,
        max_age_s: float = 3600.0,
        max_entries: int = 64,
        max_fetches_per_minute: int = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session or requests.Session()
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.min_refresh_s = min_refresh_s
        self.max_age_s = max_age_s
        self.clock = clock
        self.max_entries = max_entries
        self.max_fetches_per_minute = max_fetches_per_minute
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._fetches: deque[float] = deque()
        self._guard = threading.Lock()

    def key(self, url: str, kid: str) -> Mapping[str, Any] | None:
        """The JWK with ``kid`` at ``url``, or None if unknown even after an allowed refresh.

        Raises ``JwksUnavailable`` when the URL has never given a usable key set.
        """
        with self._guard:
            entry = self._entries.setdefault(url, _Entry())
            self._entries.move_to_end(url)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        with entry.lock:
            now = self.clock()
            fresh = entry.fetched_at is not None and now - entry.fetched_at < self.max_age_s
            if kid in entry.keys and fresh:
                return entry.keys[kid]
            due = entry.attempted_at is None or now - entry.attempted_at >= self.min_refresh_s
            if due and self._may_fetch(now):
                entry.attempted_at = now
                try:
                    entry.keys = self._fetch(url)
                    entry.fetched_at = now
                except JwksUnavailable as error:
                    log.warning("jwks fetch failed: %s", error)
            if entry.fetched_at is None:
                raise JwksUnavailable("no key set fetched yet")
            return entry.keys.get(kid)

    def _may_fetch(self, now: float) -> bool:
        """At most ``max_fetches_per_minute`` fetches over all URLs."""
        with self._guard:
            while self._fetches and now - self._fetches[0] >= 60.0:
                self._fetches.popleft()
            if len(self._fetches) >= self.max_fetches_per_minute:
                log.warning("jwks fetch skipped: fetch budget used up")
                return False
            self._fetches.append(now)
            return True

    def _fetch(self, url: str) -> dict[str, Mapping[str, Any]]:
        deadline = time.monotonic() + self.timeout_s
        try:
            with self.session.get(
                url, timeout=self.timeout_s, stream=True, allow_redirects=False, headers={"Accept": "application/json"}
            ) as response:
                if response.status_code != 200:
                    raise JwksUnavailable(f"HTTP {response.status_code}")
                chunks, size = [], 0
                for chunk in response.iter_content(chunk_size=8192):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise JwksUnavailable("key set larger than the size cap")
                    if time.monotonic() > deadline:
                        raise JwksUnavailable("timed out")
                    chunks.append(chunk)
        except requests.RequestException as error:
            raise JwksUnavailable(type(error).__name__) from None
        try:
            return parse_jwks(json.loads(b"".join(chunks)), "key set", strict=False)
        except (ValueError, TrustedIssuersError) as error:
            raise JwksUnavailable(f"unusable key set ({error})") from None
