"""Fetches and caches clients' public keys (JWKS) from a configured ``jwks_uri`` or an allow-listed ``jku``.

A rotating cache (cds-hooks.md item 28.5) with two tiers, so that junk tokens cannot lock a trusted
client out:

- *trusted* key sets: an issuer's configured ``jwks_uri`` (``pin``) and ``jku`` URLs whose keys have
  verified a token (``promote``; at most ``max_proven``). They are never evicted by other URLs and
  their refreshes do not use any fetch budget: only one fetch per URL every ``min_refresh_s``.
- *unproven* key sets: any other allow-listed URL a token names. At most ``max_entries`` are kept
  (least recently used dropped) and each issuer (``owner``) may cause at most
  ``max_fetches_per_minute`` such fetches, so made-up ``jku`` paths under an allowed prefix cost
  that issuer's budget only, never a trusted key set.

Keys are kept per URL for ``max_age_s`` (a failed refresh keeps the old keys); a token with an
unknown ``kid`` triggers a refresh, at most once per URL every ``min_refresh_s``. A cached key is
read without waiting for a refresh in progress, and a caller waits at most ``wait_s`` for another's
fetch of the same URL before answering from what is held: a key server trickling its answer holds
one request thread for at most ``timeout_s``, never every caller naming it. Each fetch goes through
the service's one outbound client (``outbound.fetch``): ``timeout_s`` overall (connect, headers and
body), ``max_bytes`` of body, no redirects, no cookies, netrc or proxy variables.

With Redis (``shared``, a ``storage.redis_store.JwksShare``), a key set fetched by one replica is
used by the others before they fetch it themselves, and the fetch budget is counted across all
replicas. The tiers and locks stay per process: they only decide what this process keeps.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests

from ..outbound import Deadline, OutboundError, fetch, new_session
from .issuers import TrustedIssuersError, parse_jwks

if TYPE_CHECKING:
    from ..storage.redis_store import JwksShare

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
        max_proven: int = 16,
        max_fetches_per_minute: int = 30,
        wait_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        shared: JwksShare | None = None,
    ) -> None:
        self.shared = shared
        self.session = session or new_session(pool_size=4)
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.min_refresh_s = min_refresh_s
        self.max_age_s = max_age_s
        self.clock = clock
        self.max_entries = max_entries
        self.max_proven = max_proven
        self.max_fetches_per_minute = max_fetches_per_minute
        self.wait_s = wait_s
        self._pinned: dict[str, _Entry] = {}
        self._proven: OrderedDict[str, _Entry] = OrderedDict()
        self._unproven: OrderedDict[str, _Entry] = OrderedDict()
        self._fetches: defaultdict[str, deque[float]] = defaultdict(deque)
        self._guard = threading.Lock()

    def size(self) -> int:
        """How many URLs' key sets are held, in both tiers (bounded: pinned + ``max_proven`` + ``max_entries``)."""
        with self._guard:
            return len(self._pinned) + len(self._proven) + len(self._unproven)

    def pin(self, url: str) -> None:
        """Keep ``url`` (a configured ``jwks_uri``) trusted for good."""
        with self._guard:
            if url not in self._pinned:
                known = self._proven.pop(url, None) or self._unproven.pop(url, None)
                self._pinned[url] = known or _Entry()

    def promote(self, url: str) -> None:
        """Trust ``url`` from now on: a key it served has just verified a token's signature."""
        with self._guard:
            if url in self._pinned:
                return
            if url in self._proven:
                self._proven.move_to_end(url)
                return
            entry = self._unproven.pop(url, None)
            if entry is None:  # dropped meanwhile; the next token fetches it again
                return
            self._proven[url] = entry
            while len(self._proven) > self.max_proven:
                self._proven.popitem(last=False)

    def key(self, url: str, kid: str, *, owner: str = "") -> Mapping[str, Any] | None:
        """The JWK with ``kid`` at ``url``, or None if unknown even after an allowed refresh.

        ``owner`` (a configured issuer, never a value from the token) is charged for fetches of an
        unproven URL. Raises ``JwksUnavailable`` when the URL has never given a usable key set.
        """
        entry, budgeted = self._entry(url)
        cached = self._cached(entry, kid)
        if cached is not None:
            return cached
        if not entry.lock.acquire(timeout=self.wait_s):
            # Another thread is fetching this URL, slowly: answer with what is held rather than wait,
            # so a slow key server holds one thread, not every caller naming it.
            if entry.fetched_at is None:
                raise JwksUnavailable("a fetch of this key set is in progress")
            return entry.keys.get(kid)
        try:
            return self._refreshed(url, entry, kid, owner, budgeted)
        finally:
            entry.lock.release()

    def _refreshed(self, url: str, entry: _Entry, kid: str, owner: str, budgeted: bool) -> Mapping[str, Any] | None:
        """``key`` with the entry's lock held: fetch if due and within budget, then look again."""
        cached = self._cached(entry, kid)
        if cached is not None:
            return cached
        now = self.clock()
        if self._adopt_shared(url, entry, kid, now):
            return entry.keys[kid]
        due = entry.attempted_at is None or now - entry.attempted_at >= self.min_refresh_s
        if due and (not budgeted or self._may_fetch(owner, now)):
            entry.attempted_at = now
            try:
                entry.keys = self._fetch(url)
                entry.fetched_at = now
                if self.shared is not None:
                    self.shared.publish(url, entry.keys, self.max_age_s)
            except JwksUnavailable as error:
                log.warning("jwks fetch failed: %s", error)
        if entry.fetched_at is None:
            raise JwksUnavailable("no key set fetched yet")
        return entry.keys.get(kid)

    def _entry(self, url: str) -> tuple[_Entry, bool]:
        """The entry for ``url`` and whether its fetches are charged to a budget (unproven)."""
        with self._guard:
            if url in self._pinned:
                return self._pinned[url], False
            if url in self._proven:
                self._proven.move_to_end(url)
                return self._proven[url], False
            entry = self._unproven.setdefault(url, _Entry())
            self._unproven.move_to_end(url)
            while len(self._unproven) > self.max_entries:
                self._unproven.popitem(last=False)
            return entry, True

    def _cached(self, entry: _Entry, kid: str) -> Mapping[str, Any] | None:
        keys, fetched_at = entry.keys, entry.fetched_at
        if fetched_at is None or self.clock() - fetched_at >= self.max_age_s:
            return None
        return keys.get(kid)

    def _adopt_shared(self, url: str, entry: _Entry, kid: str, now: float) -> bool:
        """Take the key set another replica fetched, if it holds ``kid``; it keeps its age."""
        shared = self.shared.keys(url) if self.shared is not None else None
        if shared is None or kid not in shared[0]:
            return False
        entry.keys, entry.fetched_at = shared[0], now - max(0.0, time.time() - shared[1])
        return True

    def _may_fetch(self, owner: str, now: float) -> bool:
        """At most ``max_fetches_per_minute`` fetches of unproven URLs per owner (across replicas with Redis)."""
        if self.shared is not None:
            if self.shared.fetches(owner) <= self.max_fetches_per_minute:
                return True
            log.warning("jwks fetch skipped: the issuer's fetch budget for unknown key URLs is used up")
            return False
        with self._guard:
            fetches = self._fetches[owner]
            while fetches and now - fetches[0] >= 60.0:
                fetches.popleft()
            if len(fetches) >= self.max_fetches_per_minute:
                log.warning("jwks fetch skipped: the issuer's fetch budget for unknown key URLs is used up")
                return False
            fetches.append(now)
            return True

    def _fetch(self, url: str) -> dict[str, Mapping[str, Any]]:
        """One bounded GET through the service's outbound client: ``timeout_s`` covers connect,
        headers and body together (a server trickling its headers cannot hold the lock longer)."""
        try:
            answer = fetch(
                self.session,
                url,
                deadline=Deadline.after(self.timeout_s),
                timeout_s=self.timeout_s,
                max_bytes=self.max_bytes,
                headers={"Accept": "application/json"},
            )
        except OutboundError as error:
            raise JwksUnavailable(error.reason) from None
        if answer.status != 200:
            raise JwksUnavailable(f"HTTP {answer.status}")
        try:
            return parse_jwks(json.loads(answer.body), "key set", strict=False)
        except (ValueError, RecursionError, TrustedIssuersError) as error:
            raise JwksUnavailable(f"unusable key set ({error})") from None
