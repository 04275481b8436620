"""No patient data in the logs (STYLE "never echo request values"; cds-hooks.md item 28 "never log JWTs").

Runs real calls with a fixture patient's chart as prefetch, captures every log record of every
logger at DEBUG, and looks for the patient's identifying values and the chart's clinical text.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from cds_service import Config, create_app
from cds_service.fixtures import build_prefetch, bundle_resources, load_bundle, request_context

HOOK_URL = "/cds-services/sarcoma-patient-view"
FEEDBACK_URL = HOOK_URL + "/feedback"
FIXTURES = Path(__file__).resolve().parents[2] / "fhir_fixtures"
FHIR = "https://ehr.example.com/fhir"
ACCESS_TOKEN = "access-token-9f8e7d6c5b4a"


def _resources(path: Path) -> list[dict[str, Any]]:
    return bundle_resources(load_bundle(path))


def _identified_fixture() -> Path:
    """The first fixture whose Patient has a name, an identifier and a birth date."""
    for path in sorted(FIXTURES.glob("*.json")):
        for resource in _resources(path):
            if resource.get("resourceType") == "Patient" and {"name", "identifier", "birthDate"} <= resource.keys():
                return path
    pytest.skip("no fixture patient with name, identifier and birthDate")


def _strings(value: Any, keys: set[str]) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in keys and isinstance(item, str):
                yield item
            elif key in keys and isinstance(item, list):
                yield from (x for x in item if isinstance(x, str))
            else:
                yield from _strings(item, keys)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, keys)


def identifying_values(resources: list[dict[str, Any]]) -> set[str]:
    """Names, identifiers, birth date and id of the patient; display and text of the clinical data."""
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    values = {patient["id"], patient["birthDate"]}
    values |= set(_strings(patient.get("name"), {"family", "given", "text"}))
    values |= set(_strings(patient.get("identifier"), {"value"}))
    values |= set(_strings(patient.get("address"), {"line", "city", "postalCode"}))
    values |= set(_strings(patient.get("telecom"), {"value"}))
    for resource in resources:
        if resource["resourceType"] != "Patient":
            values |= set(_strings(resource.get("code"), {"display", "text"}))
            values |= set(_strings(resource.get("valueCodeableConcept"), {"display", "text"}))
    values.add(ACCESS_TOKEN)
    return {value for value in values if len(value) >= 4}


def prefetch_for(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The prefetch an EHR would send for these resources (every template answered)."""
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    return build_prefetch(bundle, request_context(bundle))


@pytest.fixture(scope="module")
def chart() -> list[dict[str, Any]]:
    return _resources(_identified_fixture())


@pytest.fixture
def request_body(chart):
    patient_id = next(r["id"] for r in chart if r["resourceType"] == "Patient")

    def build(**fields: Any) -> dict[str, Any]:
        body = {
            "hook": "patient-view",
            "hookInstance": str(uuid.uuid4()),
            "context": {"patientId": patient_id, "userId": "Practitioner/dr-1"},
            "prefetch": prefetch_for(chart),
        }
        body.update(fields)
        return body

    return build


@pytest.fixture
def logged(tmp_path, caplog):
    """The app, and a function returning every log line written so far (message and traceback)."""
    app = create_app(Config(feedback_db=tmp_path / "f.db"))
    caplog.set_level(logging.DEBUG)
    for name in ("cds_service", "werkzeug", "flask", "urllib3", "requests", "gunicorn"):
        logging.getLogger(name).setLevel(logging.DEBUG)

    def lines() -> str:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        return "\n".join(formatter.format(record) for record in caplog.records)

    return app.test_client(), lines


def assert_no_leak(text: str, values: set[str]) -> None:
    leaked = sorted(value for value in values if value in text)
    assert not leaked, f"log lines carry patient data: {leaked}"


def test_hook_call_logs_instance_and_timing_but_no_patient_data(logged, request_body, chart):
    client, lines = logged
    body = request_body()
    response = client.post(HOOK_URL, json=body)
    assert response.status_code == 200
    text = lines()
    assert_no_leak(text, identifying_values(chart))
    hook_line = next(line for line in text.splitlines() if body["hookInstance"] in line)
    assert re.search(r"ms=\d+(\.\d+)?", hook_line)


def test_400_logs_no_patient_data(logged, request_body, chart):
    client, lines = logged
    body = request_body()
    body["context"]["userId"] = next(r["name"][0]["family"] for r in chart if r["resourceType"] == "Patient")
    assert client.post(HOOK_URL, json=body).status_code == 400
    assert_no_leak(lines(), identifying_values(chart))


def test_400_for_another_patients_data_logs_no_patient_data(logged, request_body, chart):
    client, lines = logged
    body = request_body()
    body["context"]["patientId"] = "someone-else"
    assert client.post(HOOK_URL, json=body).status_code == 400
    assert_no_leak(lines(), identifying_values(chart))


def test_412_without_fhir_server_logs_no_patient_data(logged, request_body, chart):
    client, lines = logged
    body = request_body()
    del body["prefetch"]["observations"]
    assert client.post(HOOK_URL, json=body).status_code == 412
    assert_no_leak(lines(), identifying_values(chart))


@responses.activate
def test_412_after_a_failed_fhir_call_logs_neither_patient_data_nor_token(logged, request_body, chart):
    responses.get(re.compile(re.escape(FHIR) + r"/.*"), status=500, body="patient not available")
    client, lines = logged
    body = request_body(fhirServer=FHIR, fhirAuthorization={"access_token": ACCESS_TOKEN, "token_type": "Bearer"})
    del body["prefetch"]["conditions"]
    assert client.post(HOOK_URL, json=body).status_code == 412
    assert len(responses.calls) == 1
    assert_no_leak(lines(), identifying_values(chart))


def test_feedback_logs_no_comment_text(logged, chart):
    client, lines = logged
    family = next(r["name"][0]["family"] for r in chart if r["resourceType"] == "Patient")
    feedback = {
        "feedback": [
            {
                "card": str(uuid.uuid4()),
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-24T10:00:00Z",
                "overrideReason": {"userComment": f"{family} declined chemotherapy"},
            }
        ]
    }
    assert client.post(FEEDBACK_URL, json=feedback).status_code == 200
    assert_no_leak(lines(), identifying_values(chart) | {"declined chemotherapy"})


def test_internal_error_logs_no_patient_data(logged, request_body, chart, monkeypatch):
    import cds_service.api.hooks as hooks

    family = next(r["name"][0]["family"] for r in chart if r["resourceType"] == "Patient")

    def fail(*args: Any, **kwargs: Any) -> None:
        raise ValueError(f"unexpected value {family!r}")

    monkeypatch.setattr(hooks, "cards_for", fail)
    client, lines = logged
    assert client.post(HOOK_URL, json=request_body()).status_code == 500
    assert_no_leak(lines(), identifying_values(chart))
