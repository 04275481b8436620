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

from .protocol.cards import Card, new_uuid, to_json


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


def _with_uuids(form: Mapping[str, Any], card: Card) -> dict[str, Any]:
    """A card's JSON form given the uuids of ``card`` (the same card with fresh uuids)."""
    renamed = {**form, "uuid": card.uuid}
    if card.suggestions:
        suggestions = zip(form["suggestions"], card.suggestions, strict=True)
        renamed["suggestions"] = [{**shown, "uuid": suggestion.uuid} for shown, suggestion in suggestions]
    return renamed


class CardCache:
    """Bounded, expiring map from ``record_key`` to the cards of that record (and their JSON form,
    so a hit is not serialised again); thread-safe."""

    def __init__(self, ttl_s: float, entries: int, timer: Callable[[], float] = time.monotonic) -> None:
        self._cards: TTLCache[str, tuple[tuple[Card, ...], tuple[dict[str, Any], ...]]] = TTLCache(
            maxsize=entries, ttl=ttl_s, timer=timer
        )
        self._lock = threading.Lock()

    def get(self, key: str) -> list[Card] | None:
        answer = self.answer(key)
        return None if answer is None else answer[0]

    def answer(self, key: str) -> tuple[list[Card], list[dict[str, Any]]] | None:
        """The cards with fresh uuids and each card's JSON form (``to_json``) with those uuids."""
        with self._lock:
            entry = self._cards.get(key)
        if entry is None:
            return None
        cards = fresh(entry[0])
        return cards, [_with_uuids(form, card) for form, card in zip(entry[1], cards, strict=True)]

    def put(self, key: str, cards: Sequence[Card], forms: Sequence[dict[str, Any]] | None = None) -> None:
        """``forms``: the cards' JSON forms when already made (never changed afterwards)."""
        shown = tuple(forms) if forms is not None else tuple(to_json(card) for card in cards)
        with self._lock:
            self._cards[key] = (tuple(cards), shown)
