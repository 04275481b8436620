"""The repeat-open cache: off by default; same record -> same cards with fresh uuids; bounded in size and age."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from cds_service import Config, create_app
from cds_service.card_cache import CardCache, record_key
from cds_service.protocol.cards import Card, Indicator, SelectionBehavior, Source, Suggestion

HOOK_URL = "/cds-services/sarcoma-patient-view"
REQUEST = Path(__file__).resolve().parents[2] / "fhir_fixtures" / "requests" / "lms-metastatic-first-line.json"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def card(summary: str = "s") -> Card:
    return Card(
        summary=summary,
        indicator=Indicator.INFO,
        source=Source(label="x"),
        suggestions=(Suggestion("go"),),
        selectionBehavior=SelectionBehavior.ANY,
    )


def test_the_key_ignores_resource_order_and_key_order_but_not_content_or_context() -> None:
    a, b = {"resourceType": "Patient", "id": "1", "gender": "male"}, {"id": "2", "resourceType": "Patient"}
    same = record_key([a, b], "2026-03-01", "2.2.0")
    assert record_key([b, dict(reversed(list(a.items())))], "2026-03-01", "2.2.0") == same
    assert record_key([a, {**b, "gender": "female"}], "2026-03-01", "2.2.0") != same
    assert record_key([a, b], "2026-03-02", "2.2.0") != same
    assert record_key([a, b], "2026-03-01", "2.2.1") != same


def test_a_hit_gives_the_same_cards_with_fresh_card_and_suggestion_uuids() -> None:
    cache = CardCache(60, 10)
    stored = card()
    cache.put("k", [stored])
    (hit,) = cache.get("k") or []
    assert hit.summary == stored.summary and hit.uuid != stored.uuid
    assert hit.suggestions[0].label == "go" and hit.suggestions[0].uuid != stored.suggestions[0].uuid
    assert cache.get("other") is None


def test_entries_expire_after_the_ttl_and_the_oldest_go_beyond_the_size() -> None:
    clock = Clock()
    cache = CardCache(60, 2, timer=clock)
    cache.put("a", [card("a")])
    clock.now = 59.9
    assert cache.get("a") is not None
    clock.now = 60.0
    assert cache.get("a") is None
    for key in ("b", "c", "d"):
        cache.put(key, [card(key)])
    assert cache.get("b") is None and cache.get("c") is not None and cache.get("d") is not None


def _client(tmp_path: Path, ttl: int):
    config = Config(feedback_db=tmp_path / "f.db", card_cache_ttl_s=ttl, metrics=True, today=date(2026, 3, 1))
    return create_app(config).test_client()


@pytest.mark.parametrize("ttl", [0, 60])
def test_a_repeat_open_answers_the_same_cards_and_is_counted_when_the_cache_is_on(tmp_path, caplog, ttl) -> None:
    client = _client(tmp_path, ttl)
    body = json.loads(REQUEST.read_text())
    caplog.set_level("INFO", logger="cds_service.hooks")
    first = client.post(HOOK_URL, json=body).get_json()["cards"]
    second = client.post(HOOK_URL, json=body).get_json()["cards"]
    strip = lambda cards: [{k: v for k, v in c.items() if k not in ("uuid", "suggestions")} for c in cards]  # noqa: E731
    assert first and strip(first) == strip(second)
    assert {c["uuid"] for c in first}.isdisjoint(c["uuid"] for c in second)
    logged = [getattr(r, "fields", {}).get("cache") for r in caplog.records if r.name == "cds_service.hooks"]
    metrics = client.get("/metrics").get_data(as_text=True)
    if ttl:
        assert logged == ["miss", "hit"]
        assert 'sarcoma_cds_card_cache_total{outcome="hit"} 1.0' in metrics
    else:
        assert logged == [None, None] and "sarcoma_cds_card_cache_total{" not in metrics


def _without_uuids(cards: list[dict]) -> list[dict]:
    return [
        {k: v for k, v in c.items() if k != "uuid"}
        | {"suggestions": [{k: v for k, v in s.items() if k != "uuid"} for s in c.get("suggestions", [])]}
        for c in cards
    ]


def test_a_repeat_open_answers_byte_for_byte_the_first_answer_but_for_fresh_uuids_which_are_recorded(tmp_path) -> None:
    app = create_app(Config(feedback_db=tmp_path / "f.db", card_cache_ttl_s=60, today=date(2026, 3, 1)))
    client = app.test_client()
    body = json.loads(REQUEST.read_text())
    first, second = (client.post(HOOK_URL, json=body).get_json()["cards"] for _ in range(2))
    assert any(c.get("suggestions") for c in first)
    assert _without_uuids(first) == _without_uuids(second)
    assert [list(c) for c in first] == [list(c) for c in second]  # the same fields in the same order
    uuids = [c["uuid"] for c in second] + [s["uuid"] for c in second for s in c.get("suggestions", [])]
    assert len(set(uuids)) == len(uuids) and not set(uuids) & {c["uuid"] for c in first}
    recorded = {row["card"] for row in app.extensions["sarcoma"].feedback.issued()}
    assert recorded == {c["uuid"] for c in first + second}  # the uuids answered are the ones recorded
