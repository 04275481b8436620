"""The hook reads the FHIR server for what prefetch lacks, and gives the same cards as with prefetch.

CDS Hooks 2.0 "FHIR Resource Access": without prefetch the service queries ``fhirServer`` with the
``fhirAuthorization`` token; when it can get the data neither way the call fails with 412. Every
fixture patient is loaded into the real server by the session fixture; ``fhir_proxy`` records
which queries the service made.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
import yaml
from conftest import hook_request as hook_call
from flask.testing import FlaskClient

from cds_service import Config, create_app
from cds_service.prefetch import fill_template
from cds_service.protocol.services import prefetch_templates

if TYPE_CHECKING:
    from conftest import FhirServer, RecordingProxy

HOOK_URL = "/cds-services/sarcoma-patient-view"
INDEX = Path(__file__).resolve().parents[2] / "fhir_fixtures" / "index.yaml"
PATIENTS = [entry["patient"] for entry in yaml.safe_load(INDEX.read_text())] if INDEX.exists() else []
SEARCHED_TYPES = {
    "conditions": "Condition",
    "observations": "Observation",
    "medicationStatements": "MedicationStatement",
    "medicationRequests": "MedicationRequest",
    "medicationAdministrations": "MedicationAdministration",
    "medicationDispenses": "MedicationDispense",
    "procedures": "Procedure",
    "assessments": "Observation",
    "diagnosticReports": "DiagnosticReport",
}
needs_fixtures = pytest.mark.skipif(not PATIENTS, reason="fhir_fixtures/index.yaml lists no patients")


@pytest.fixture
def client(fhir_proxy: RecordingProxy, tmp_path: Path) -> FlaskClient:
    """The service, allowed to call only the proxy; deadlines generous for a loaded CI machine."""
    config = Config(
        feedback_db=tmp_path / "feedback.sqlite3",
        allowed_fhir_servers=(fhir_proxy.base_url,),
        fhir_deadline_s=10.0,
        fhir_timeout_s=5.0,
    )
    return create_app(config).test_client()


def read_all(server: FhirServer, query: str) -> dict[str, Any]:
    """What a complete prefetch holds: the resource, or one searchset with every page's entries."""
    url: str | None = f"{server.base_url}/{query}"
    entries: list[dict[str, Any]] = []
    while url:
        response = requests.get(url, headers=server.headers, timeout=30)
        response.raise_for_status()
        body = response.json()
        if body["resourceType"] != "Bundle":
            return body
        entries += [e for e in body.get("entry", []) if e.get("search", {}).get("mode", "match") != "outcome"]
        url = next((link["url"] for link in body.get("link", []) if link["relation"] == "next"), None)
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


def full_prefetch(server: FhirServer, patient_id: str) -> dict[str, Any]:
    context = {"patientId": patient_id, "userId": "Practitioner/itest"}
    return {key: read_all(server, fill_template(t, context)) for key, t in prefetch_templates().items()}


def hook_request(patient_id: str, proxy: RecordingProxy, token: str | None, prefetch: dict[str, Any]) -> dict[str, Any]:
    scope = "patient/Patient.read patient/Condition.read patient/Observation.read"
    return hook_call(patient_id, proxy.base_url, token, prefetch, scope)


def without_uuids(value: Any) -> Any:
    """Cards compared as content: card and suggestion uuids are new on every call."""
    if isinstance(value, dict):
        return {k: without_uuids(v) for k, v in value.items() if k != "uuid"}
    if isinstance(value, list):
        return [without_uuids(v) for v in value]
    return value


def cards(client: FlaskClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(HOOK_URL, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:800]
    return without_uuids(response.get_json()["cards"])


@needs_fixtures
@pytest.mark.parametrize("patient_id", PATIENTS)
def test_without_prefetch_the_cards_equal_those_with_full_prefetch(
    client: FlaskClient, fhir_server: FhirServer, fhir_proxy: RecordingProxy, patient_id: str
) -> None:
    complete = full_prefetch(fhir_server, patient_id)
    prefetched = cards(client, hook_request(patient_id, fhir_proxy, fhir_server.token, complete))
    assert fhir_proxy.requests == [], "a complete prefetch needs no FHIR query"

    fetched = cards(client, hook_request(patient_id, fhir_proxy, fhir_server.token, {}))
    assert fetched == prefetched
    assert any(r.method == "GET" and r.path == f"Patient/{patient_id}" for r in fhir_proxy.requests)
    for resource_type in SEARCHED_TYPES.values():
        searches = [r for r in fhir_proxy.requests if r.resource_type == resource_type]
        assert searches and searches[0].param("patient") == [patient_id], resource_type


@needs_fixtures
def test_partial_prefetch_queries_only_the_missing_keys(
    client: FlaskClient, fhir_server: FhirServer, fhir_proxy: RecordingProxy
) -> None:
    patient_id = PATIENTS[0]
    complete = full_prefetch(fhir_server, patient_id)
    expected = cards(client, hook_request(patient_id, fhir_proxy, fhir_server.token, complete))
    partial = {key: complete[key] for key in ("patient", "conditions")}

    got = cards(client, hook_request(patient_id, fhir_proxy, fhir_server.token, partial))

    assert got == expected
    asked = {r.resource_type for r in fhir_proxy.requests}
    assert asked >= {"Observation", "MedicationStatement", "MedicationRequest", "MedicationAdministration"}
    assert not asked & {"Patient", "Condition"}


@needs_fixtures
def test_a_token_the_fhir_server_refuses_gives_412(
    client: FlaskClient, fhir_server: FhirServer, fhir_proxy: RecordingProxy
) -> None:
    if not fhir_server.token:
        pytest.skip("the external FHIR server was given without a token, so it may not check one")
    response = client.post(HOOK_URL, json=hook_request(PATIENTS[0], fhir_proxy, "not-the-token", {}))
    assert response.status_code == 412
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert any(r.status == 401 for r in fhir_proxy.requests)


@needs_fixtures
def test_an_unreachable_fhir_server_gives_412(
    client: FlaskClient, fhir_server: FhirServer, fhir_proxy: RecordingProxy
) -> None:
    fhir_proxy.stop()
    response = client.post(HOOK_URL, json=hook_request(PATIENTS[0], fhir_proxy, fhir_server.token, {}))
    assert response.status_code == 412
    assert response.get_json()["resourceType"] == "OperationOutcome"


@needs_fixtures
def test_a_fhir_server_slower_than_the_deadline_gives_412(
    fhir_server: FhirServer, fhir_proxy: RecordingProxy, tmp_path: Path
) -> None:
    config = Config(
        feedback_db=tmp_path / "feedback.sqlite3",
        allowed_fhir_servers=(fhir_proxy.base_url,),
        fhir_deadline_s=0.5,
        fhir_timeout_s=0.4,
    )
    fhir_proxy.delay_s = 1.0
    response = (
        create_app(config)
        .test_client()
        .post(HOOK_URL, json=hook_request(PATIENTS[0], fhir_proxy, fhir_server.token, {}))
    )
    assert response.status_code == 412
