"""Each fixture patient, sent through the hook with full prefetch, produces the statements its
index entry says it must, none it must not, and exactly those it shows
(fhir_fixtures/index.yaml)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from cds_service import Config, create_app
from cds_service.config import PROJECT_ROOT
from cds_service.knowledge.model import INTERNAL_LANGUAGE
from fhir_fixtures.ehr import hook_request, list_fixtures

FIXTURES = list_fixtures(PROJECT_ROOT / "fhir_fixtures")
INDEX = yaml.safe_load((PROJECT_ROOT / "fhir_fixtures" / "index.yaml").read_text("utf-8"))
SHOWS = {Path(entry["file"]).stem: entry.get("shows") for entry in INDEX}
HOOK_URL = "/cds-services/sarcoma-patient-view"
STATEMENTS = "org.sarcoma-cds.statements"


@pytest.fixture(scope="module")
def scenario_client(tmp_path_factory):
    """A test client per reading date: each fixture is read on the date its story is told."""
    folder = tmp_path_factory.mktemp("db")
    clients: dict = {}

    def client_on(today):
        if today not in clients:
            config = Config(feedback_db=folder / f"f-{len(clients)}.db", today=today)
            clients[today] = create_app(config).test_client()
        return clients[today]

    return client_on


@cache
def _cards(slug: str, client) -> tuple:
    response = client.post(HOOK_URL, json=hook_request(slug))
    assert response.status_code == 200, response.get_json()
    return tuple(response.get_json()["cards"])


def cards_of(client_on, slug: str) -> list[dict]:
    fixture = next(f for f in FIXTURES if f.slug == slug)
    return list(_cards(slug, client_on(fixture.today)))


def statement_ids(cards: list[dict]) -> set[str]:
    return {sid for card in cards for sid in card.get("extension", {}).get(STATEMENTS, [])}


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.slug)
def test_fixture_produces_its_expected_statements(scenario_client, fixture):
    ids = statement_ids(cards_of(scenario_client, fixture.slug))
    missing = set(fixture.must) - ids
    forbidden = set(fixture.must_not) & ids
    assert not missing, f"{fixture.slug}: expected {sorted(missing)} (got {sorted(ids)})"
    assert not forbidden, f"{fixture.slug}: must not show {sorted(forbidden)}"


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.slug)
def test_fixture_shows_exactly_its_statements(scenario_client, fixture):
    shows = SHOWS.get(fixture.slug)
    assert shows is not None, f"{fixture.slug}: index.yaml gives no 'shows'"
    ids = statement_ids(cards_of(scenario_client, fixture.slug))
    extra, lost = sorted(ids - set(shows)), sorted(set(shows) - ids)
    assert sorted(ids) == sorted(shows), f"{fixture.slug}: also shows {extra}, no longer {lost}"


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.slug)
def test_every_card_is_spec_shaped_and_cites_its_statements(scenario_client, fixture):
    for card in cards_of(scenario_client, fixture.slug):
        assert 0 < len(card["summary"]) < 140
        assert card["indicator"] in ("info", "warning", "critical")
        assert card["source"]["label"]
        assert card["extension"][STATEMENTS], "every card cites at least one statement"
        for link in card.get("links", []):
            assert link["type"] == "absolute" and link["url"].startswith("http")
        if card.get("suggestions"):
            assert card["selectionBehavior"]


URL = re.compile(r"<?https?://\S+>?|\]\([^)]*\)")
RECORD = re.compile(r"\b[A-Z][A-Za-z]+/[A-Za-z0-9\-.#]+")  # "Condition/x": record references are shown on purpose
FORBIDDEN = re.compile(
    INTERNAL_LANGUAGE.pattern + r"|\bS\d{2}\b|(?-i:\bsts\b)|\bextent none\b|\b[a-z]+(?:-[a-z]+){2,}\b",
    re.IGNORECASE,
)


def clinician_text(card: dict) -> str:
    """Everything on a card a clinician reads, link targets left out (they carry statement ids)."""
    parts = [card["summary"], card.get("detail", ""), card["source"]["label"]]
    parts += [link["label"] for link in card.get("links", [])]
    parts += [s["label"] for s in card.get("suggestions", [])]
    return RECORD.sub(" ", URL.sub(" ", "\n".join(parts)))


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.slug)
def test_no_internal_language_reaches_a_clinician(scenario_client, fixture):
    for card in cards_of(scenario_client, fixture.slug):
        found = FORBIDDEN.findall(clinician_text(card))
        assert not found, f"{fixture.slug}: {sorted(set(found))} on '{card['summary']}'"


def test_every_statement_is_reachable_by_some_fixture(scenario_client, app):
    """Every statement with a situation (`when:`) fires for at least one fixture patient."""
    knowledge = app.extensions["sarcoma_knowledge"]
    reached: set[str] = set()
    for fixture in FIXTURES:
        reached |= statement_ids(cards_of(scenario_client, fixture.slug))
    unreachable = {statement.id for statement in knowledge.matchable()} - reached
    assert not unreachable, f"no fixture reaches {sorted(unreachable)}"


def test_there_are_enough_fixtures():
    assert len(FIXTURES) >= 25
