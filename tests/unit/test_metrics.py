"""``GET /metrics``: off by default, direct callers only; counts hook calls, cards and feedback, never patient data.

In-process tests through ``app.test_client()`` (each app has its own registry, so counts start at zero);
``test_metrics_served.py`` runs the real ``sarcoma-cds serve`` under gunicorn with two workers.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cds_service import Config, cli, create_app
from cds_service.config import ConfigError
from cds_service.metrics import MULTIPROC_ENV, mark_worker_dead, multiprocess_directory

SERVICE = "sarcoma-patient-view"
HOOK_URL = f"/cds-services/{SERVICE}"
FEEDBACK_URL = f"{HOOK_URL}/feedback"
REQUESTS = Path(__file__).resolve().parents[2] / "fhir_fixtures" / "requests"
SLUGS = ("lms-metastatic-first-line", "angiosarcoma-after-paclitaxel", "ups-metastatic-ecog-3")


# --- helpers, shared with test_metrics_served.py --------------------------------------------------


def fixture_request(slug: str) -> dict[str, Any]:
    """A fixture's hook request with a fresh ``hookInstance``."""
    body: dict[str, Any] = json.loads((REQUESTS / f"{slug}.json").read_text(encoding="utf-8"))
    return {**body, "hookInstance": str(uuid.uuid4())}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _resources(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for value in body["prefetch"].values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            yield from (entry["resource"] for entry in value.get("entry") or [])
        elif isinstance(value, dict):
            yield value


def patient_values(body: dict[str, Any]) -> set[str]:
    """What identifies the patient or says what they have: every string of the Patient (names,
    identifiers, birth date, address), every resource id, the display and text of every code."""
    values: set[str] = {body["context"]["patientId"], body["hookInstance"]}
    for resource in _resources(body):
        values.add(str(resource.get("id") or ""))
        if resource["resourceType"] == "Patient":
            values |= {s for s in _strings(resource) if s not in {"Patient", "official", "female", "male"}}
        for key in ("code", "valueCodeableConcept", "medicationCodeableConcept", "bodySite"):
            values |= {s for s in _strings(resource.get(key)) if not s.startswith(("http", "urn:"))}
    return {value for value in values if len(value) >= 4 and not value.isdigit()}


def assert_no_patient_data(text: str, values: set[str]) -> None:
    leaked = sorted(value for value in values if value in text)
    assert not leaked, f"metrics carry patient data: {leaked}"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def hook_count(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], outcome: str = "2xx") -> float:
    return value(scraped, "sarcoma_cds_hook_duration_seconds_count", service=SERVICE, outcome=outcome)


def statements_of(cards: list[dict[str, Any]]) -> list[str]:
    return [statement for card in cards for statement in card["extension"]["org.sarcoma-cds.statements"]]


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def metrics_client(tmp_path):
    return create_app(Config(feedback_db=tmp_path / "f.db", metrics=True)).test_client()


def scrape(client: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    return samples(response.get_data(as_text=True))


# --- off, and off the public route -------------------------------------------------------------


def test_metrics_are_a_404_operation_outcome_when_not_enabled(client, hook):
    assert client.post(HOOK_URL, json=hook()).status_code == 200  # the hook is unaffected
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert response.get_json() == client.get("/no-such-path").get_json()  # indistinguishable from no route


def test_metrics_are_off_unless_the_setting_says_true():
    assert Config().metrics is False
    assert Config.from_env({"CDS_METRICS": "true"}).metrics is True
    with pytest.raises(ConfigError, match="CDS_METRICS"):
        Config.from_env({"CDS_METRICS": "enabled"})


@pytest.mark.parametrize(
    "header", [("X-Forwarded-For", "203.0.113.9"), ("Forwarded", "for=203.0.113.9"), ("X-Real-IP", "203.0.113.9")]
)
def test_a_request_that_came_through_a_proxy_gets_a_404(metrics_client, header):
    response = metrics_client.get("/metrics", headers=[header])
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"


# --- what is counted ---------------------------------------------------------------------------


def test_each_hook_call_is_timed_by_service_and_status_class(metrics_client, hook):
    for _ in range(3):
        assert metrics_client.post(HOOK_URL, json=hook()).status_code == 200
    assert metrics_client.post(HOOK_URL, json={"hook": "patient-view"}).status_code == 400
    assert metrics_client.post(HOOK_URL, data="{}", content_type="text/plain").status_code == 415
    assert metrics_client.post("/cds-services/no-such-service", json=hook()).status_code == 404
    scraped = scrape(metrics_client)
    assert hook_count(scraped, "2xx") == 3 and hook_count(scraped, "4xx") == 2
    assert value(scraped, "sarcoma_cds_hook_duration_seconds_count", service="unknown", outcome="4xx") == 1
    assert value(scraped, "sarcoma_cds_hook_duration_seconds_sum", service=SERVICE, outcome="2xx") > 0
    inf = value(scraped, "sarcoma_cds_hook_duration_seconds_bucket", service=SERVICE, outcome="2xx", le="+Inf")
    assert inf == 3


def test_other_routes_are_not_counted_as_hook_calls(metrics_client):
    for path in ("/cds-services", "/healthz", "/metrics", "/statements/S01"):
        metrics_client.get(path)
    metrics_client.options(HOOK_URL, headers={"Origin": "https://ehr.example.org"})
    scraped = scrape(metrics_client)
    assert not [key for key in scraped if key[0] == "sarcoma_cds_hook_duration_seconds_count"]


def test_an_internal_error_is_counted_as_5xx(metrics_client, hook, monkeypatch):
    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("cds_service.api.hooks.cards_for", fail)
    assert metrics_client.post(HOOK_URL, json=hook()).status_code == 500
    assert hook_count(scrape(metrics_client), "5xx") == 1


def test_a_call_the_jwt_guard_refuses_is_timed_too(tmp_path, hook):
    issuers = tmp_path / "issuers.json"
    issuers.write_text(
        json.dumps([{"iss": "https://ehr.example.org", "jku": ["https://ehr.example.org/.well-known/"]}])
    )
    config = Config(
        feedback_db=tmp_path / "f.db",
        metrics=True,
        auth_required=True,
        trusted_issuers_file=issuers,
        public_base_url="https://cds.example.org",
    )
    client = create_app(config).test_client()
    assert client.post(HOOK_URL, json=hook()).status_code == 401
    assert client.get("/metrics").status_code == 200  # Prometheus sends no CDS Hooks JWT
    assert hook_count(scrape(client), "4xx") == 1


def test_cards_are_counted_by_every_statement_they_cite(metrics_client):
    shown: list[str] = []
    for slug in SLUGS:
        response = metrics_client.post(HOOK_URL, json=fixture_request(slug))
        assert response.status_code == 200
        shown += statements_of(response.get_json()["cards"])
    assert shown
    scraped = scrape(metrics_client)
    for statement in set(shown):
        assert value(scraped, "sarcoma_cds_cards_shown_total", statement=statement) == shown.count(statement)
    counted = [key for key in scraped if key[0] == "sarcoma_cds_cards_shown_total"]
    assert len(counted) == len(set(shown))


def test_feedback_items_are_counted_by_outcome_once_acknowledged(metrics_client):
    def item(outcome: str, **extra: Any) -> dict[str, Any]:
        return {"card": str(uuid.uuid4()), "outcome": outcome, "outcomeTimestamp": "2026-03-01T10:00:00Z", **extra}

    reason = {"overrideReason": {"reason": {"code": "other", "system": "https://example.org/reasons"}}}
    accepted = {"acceptedSuggestions": [{"id": "s-1"}]}
    body = {"feedback": [item("accepted", **accepted), item("accepted", **accepted), item("overridden", **reason)]}
    assert metrics_client.post(FEEDBACK_URL, json=body).status_code == 200
    assert metrics_client.post(FEEDBACK_URL, json={"feedback": [item("ignored")]}).status_code == 400
    scraped = scrape(metrics_client)
    assert value(scraped, "sarcoma_cds_feedback_items_total", outcome="accepted") == 2
    assert value(scraped, "sarcoma_cds_feedback_items_total", outcome="overridden") == 1
    assert not [key for key in scraped if key[0] == "sarcoma_cds_feedback_items_total" and len(key[1]) != 1]


def test_metrics_carry_no_patient_data(metrics_client):
    values: set[str] = set()
    cards: list[dict[str, Any]] = []
    for slug in SLUGS:
        body = fixture_request(slug)
        values |= patient_values(body)
        cards += metrics_client.post(HOOK_URL, json=body).get_json()["cards"]
    family = next(r for r in _resources(fixture_request(SLUGS[0])) if r["resourceType"] == "Patient")["name"][0]
    comment = {"userComment": f"{family['family']} declined chemotherapy"}
    feedback = {"card": cards[0]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-03-01T10:00:00Z"}
    assert (
        metrics_client.post(FEEDBACK_URL, json={"feedback": [{**feedback, "overrideReason": comment}]}).status_code
        == 200
    )
    assert len(values) > 20
    text = metrics_client.get("/metrics").get_data(as_text=True)
    assert_no_patient_data(text, values | {"declined chemotherapy", cards[0]["uuid"]})


def test_openmetrics_is_served_when_the_scraper_asks_for_it(metrics_client, hook):
    metrics_client.post(HOOK_URL, json=hook())
    response = metrics_client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.content_type.startswith("application/openmetrics-text")
    assert response.get_data(as_text=True).endswith("# EOF\n")


# --- gunicorn: the shared folder, the hook, the command line -------------------------------------


@pytest.fixture
def no_multiproc_env() -> Iterator[None]:
    """Leaves ``PROMETHEUS_MULTIPROC_DIR`` as it found it (the code under test sets it)."""
    before = os.environ.pop(MULTIPROC_ENV, None)
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        if before is not None:
            os.environ[MULTIPROC_ENV] = before


def test_serve_makes_a_fresh_folder_for_the_run_and_removes_it_after(no_multiproc_env):
    with multiprocess_directory(True) as path:
        assert path is not None and path.is_dir() and not any(path.iterdir())
        assert os.environ[MULTIPROC_ENV] == str(path)
        (path / "counter_1.db").write_bytes(b"")
    assert not path.exists()


def test_a_named_folder_is_kept_but_the_counts_of_an_earlier_run_are_cleared(no_multiproc_env, tmp_path):
    named = tmp_path / "metrics"
    named.mkdir()
    (named / "counter_123.db").write_bytes(b"old")
    (named / "README").write_text("kept")
    os.environ[MULTIPROC_ENV] = str(named)
    with multiprocess_directory(True) as path:
        assert path == named and sorted(p.name for p in named.iterdir()) == ["README"]
    assert (named / "README").exists()


def test_a_named_folder_that_cannot_be_written_stops_serve_with_one_line(no_multiproc_env, tmp_path):
    (tmp_path / "a-file").write_text("")
    os.environ[MULTIPROC_ENV] = str(tmp_path / "a-file" / "metrics")
    with pytest.raises(ConfigError) as raised:
        with multiprocess_directory(True):
            pass
    [problem] = raised.value.problems
    assert problem.startswith(f"{MULTIPROC_ENV}: ")


def test_nothing_is_set_when_metrics_are_off(no_multiproc_env):
    with multiprocess_directory(False) as path:
        assert path is None and MULTIPROC_ENV not in os.environ


def test_a_dead_workers_live_gauges_go_but_its_counts_stay(no_multiproc_env, tmp_path):
    os.environ[MULTIPROC_ENV] = str(tmp_path)
    for name in ("counter_41.db", "histogram_41.db", "gauge_livesum_41.db", "gauge_livesum_42.db"):
        (tmp_path / name).write_bytes(b"")
    mark_worker_dead(41)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_41.db", "gauge_livesum_42.db", "histogram_41.db"]


def test_gunicorn_gets_the_child_exit_hook_only_with_metrics_on():
    on = cli.gunicorn_argv(Config(metrics=True))
    assert on[0] == "gunicorn" and on[on.index("--config") + 1] == "python:cds_service.gunicorn_hooks"
    assert on[-1] == "cds_service.wsgi:app"
    assert "--config" not in cli.gunicorn_argv(Config())
