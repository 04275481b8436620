"""Repeat-open cache (``CDS_CARD_CACHE_TTL_S``, off by default): one worker's recent answers, by record.

A chart opened again with the same record gets the same cards without summarising it again. The key
is a digest of the resources the service read (canonical JSON, in any order), the reading date, the
knowledge base version and everything else the cards depend on; the value is the card list. Nothing of
the record itself is kept, only the cards already sent (which name resource ids and dates). Size and
age are bounded (``CDS_CARD_CACHE_ENTRIES``, ``CDS_CARD_CACHE_TTL_S``); every hit gets fresh card and
suggestion uuids, since feedback is keyed by them.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson
from cachetools import TTLCache

from .protocol.cards import Card, new_uuid


def record_key(resources: Iterable[Mapping[str, Any]], *context: Any) -> str:
    """Digest of the resources (order-free: each canonicalised, then sorted) and of ``context``."""
    canonical = sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in resources)
    digest = hashlib.sha256(orjson.dumps([str(c) for c in context]))
    digest.update(b"".join(len(resource).to_bytes(8, "big") + resource for resource in canonical))
    return digest.hexdigest()


def fresh(cards: Sequence[Card]) -> list[Card]:
    """The cards with new uuids (cards and suggestions), as a new answer needs."""
    return [
        replace(card, uuid=new_uuid(), suggestions=tuple(replace(s, uuid=new_uuid()) for s in card.suggestions))
        for card in cards
    ]


class CardCache:
    """Bounded, expiring map from ``record_key`` to the cards of that record; thread-safe."""

    def __init__(self, ttl_s: float, entries: int, timer: Callable[[], float] = time.monotonic) -> None:
        self._cards: TTLCache[str, tuple[Card, ...]] = TTLCache(maxsize=entries, ttl=ttl_s, timer=timer)
        self._lock = threading.Lock()

    def get(self, key: str) -> list[Card] | None:
        with self._lock:
            cards = self._cards.get(key)
        return None if cards is None else fresh(cards)

    def put(self, key: str, cards: Sequence[Card]) -> None:
        with self._lock:
            self._cards[key] = tuple(cards)
