"""Every independent patient (tests/data/independent-patients/) gives the same cards from a real FHIR
server as from its file: the hook called without prefetch (the service reads the server with the
bearer token) and the hook called with prefetch an EHR filled from the server by the service's
templates both show, card by card, the statements that direct evaluation of the file shows
(``cards_for`` as of the same day as ``tests/scenario/test_independent_patients.py``). An EHR filling
the templates sends only what they find: the cards from its prefetch are those of the file without the
Observations no code of the template matches (an mCODE-profiled one may carry none), which the service
itself asks the server for only when it reads the Observations itself.

The files share ids (``Condition/prim``), so each is loaded under ids of its own
(``charts_on_server``). Every sixth patient with medications is loaded a second time with each drug
in a Medication resource the record references (``medicationReference``), which the service must
read from the server (the prefetch templates do not ask for Medications); their cards must not change.
New patient files are picked up as they are added; every other one is read from the server (``CASES``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from charts_on_server import (
    MEDICATION_USES,
    Chart,
    has_coded_medications,
    load,
    prefetch_from,
    resources_of,
)
from conftest import RecordingProxy, hook_request
from flask.testing import FlaskClient

from cds_service import Config, create_app
from cds_service.engine import cards_for
from cds_service.knowledge import KnowledgeBase, load_knowledge
from cds_service.prefetch import Query
from cds_service.protocol.services import prefetch_templates
from fhir_fixtures.ehr import medications_by_reference

if TYPE_CHECKING:
    from conftest import FhirServer

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "tests" / "data" / "independent-patients"
TODAY = date(2026, 3, 1)  # as tests/scenario/test_independent_patients.py reads them
HOOK_URL = "/cds-services/sarcoma-patient-view"
STATEMENTS = "org.sarcoma-cds.statements"
REFERENCED = "medication-reference"  # the form of a chart whose drugs are Medication resources


@cache
def file_resources(name: str) -> tuple[dict[str, Any], ...]:
    """The file's resources exactly as the scenario test evaluates them."""
    bundle = json.loads((FOLDER / f"{name}.json").read_text("utf-8"))
    return tuple(entry["resource"] for entry in bundle.get("entry", []))


NAMES = sorted(path.stem for path in FOLDER.glob("*.json"))
MEDICATED = [name for name in NAMES if has_coded_medications(file_resources(name))]
# Every other patient as coded, and every sixth with medications also with its drugs as Medication
# resources: the server reads these cases test are the same for every patient (the scenario test reads
# every patient in process), and reading all of them twice took most of CI's time on a slow machine.
CASES = [(name, "coded") for name in NAMES[::2]] + [(name, REFERENCED) for name in MEDICATED[::6]]


def chart_of(name: str, form: str) -> Chart:
    bundle = json.loads((FOLDER / f"{name}.json").read_text("utf-8"))
    resources = resources_of(bundle)
    return Chart.of(f"{name}/{form}", medications_by_reference(resources) if form == REFERENCED else resources)


def referenced_medications(chart: Chart) -> set[str]:
    """The Medications the chart's medication records reference and the server must be asked for."""
    return {
        r["medicationReference"]["reference"]
        for r in chart.resources
        if r["resourceType"] in MEDICATION_USES
        and r.get("medicationReference", {}).get("reference", "").startswith("Medication/")
    }


def statements(cards: list[Any]) -> list[list[str]]:
    return [list(card.get("extension", {}).get(STATEMENTS, [])) for card in cards]


@cache
def knowledge() -> KnowledgeBase:
    return load_knowledge(ROOT / "cards")


@cache
def direct(name: str, templated: bool = False) -> list[list[str]]:
    """Statements per card, in card order, from what of the file the server can give (``templated``: what
    the templates find)."""
    resources = [r for r in file_resources(name) if _obtainable(r) and (not templated or _found_by_template(r))]
    shown = cards_for(resources, knowledge=knowledge(), base_url="http://t", today=TODAY)
    return [list((card.extension or {}).get(STATEMENTS, [])) for card in shown]


def _obtainable(resource: dict[str, Any]) -> bool:
    """Of a type the service reads from a FHIR server: one a template searches, or a referenced Medication
    (an mCODE Tumor, a BodyStructure, is read only when a prefetch holds it)."""
    searched = {Query.parse(template).resource_type for template in prefetch_templates().values()}
    return resource["resourceType"] in searched | {"Medication"}


def _found_by_template(resource: dict[str, Any]) -> bool:
    """Whether an Observation template finds the Observation (by a code or category it asks for)."""
    if resource["resourceType"] != "Observation":
        return True
    for template in prefetch_templates().values():
        query = Query.parse(template)
        for element in ("code", "category") if query.resource_type == "Observation" else ():
            wanted = set((query.param(element) or "").split(","))
            concepts = resource.get(element) or []
            for concept in concepts if isinstance(concepts, list) else [concepts]:
                if any(str(c.get("code")) in wanted for c in concept.get("coding", [])):
                    return True
    return False


@pytest.fixture(scope="module")
def on_server(fhir_server: FhirServer) -> dict[tuple[str, str], tuple[Chart, list[str]]]:
    """Every case's chart on the server, with the entries the server refused (normally none)."""
    charts = {case: chart_of(*case) for case in CASES}
    refused = load(fhir_server, charts.values())
    return {case: (chart, refused.get(chart.name, [])) for case, chart in charts.items()}


@pytest.fixture(scope="module")
def proxy(fhir_server: FhirServer) -> Iterator[RecordingProxy]:
    recording = RecordingProxy(fhir_server.base_url)
    try:
        yield recording
    finally:
        recording.stop()


@pytest.fixture(scope="module")
def client(proxy: RecordingProxy, tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    """One service for the module, allowed to read only the proxy; deadlines generous for a loaded CI machine."""
    config = Config(
        feedback_db=tmp_path_factory.mktemp("parity") / "feedback.sqlite3",
        allowed_fhir_servers=(proxy.base_url,),
        fhir_deadline_s=10.0,
        fhir_timeout_s=5.0,
        today=TODAY,
    )
    return create_app(config).test_client()


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as reused:  # the EHR's own reads for the prefetch: one connection
        yield reused


def hook_cards(
    client: FlaskClient, proxy: RecordingProxy, token: str | None, patient_id: str, prefetch: dict[str, Any]
) -> list[list[str]]:
    response = client.post(HOOK_URL, json=hook_request(patient_id, proxy.base_url, token, prefetch))
    assert response.status_code == 200, response.get_data(as_text=True)[:800]
    return statements(response.get_json()["cards"])


def test_every_patient_is_on_the_server(on_server: dict[tuple[str, str], tuple[Chart, list[str]]]) -> None:
    """A chart the server refused a resource of is skipped below (its cards could not match); one
    whose Patient it refused means the loading itself is broken."""
    refused = {
        chart.name: entries for chart, entries in on_server.values() if any(e.startswith("Patient/") for e in entries)
    }
    assert refused == {}, f"the FHIR test server refused: {refused}"


@pytest.mark.parametrize(("name", "form"), CASES, ids=[f"{name}-{form}" for name, form in CASES])
def test_the_cards_from_the_server_equal_those_from_the_file(
    on_server: dict[tuple[str, str], tuple[Chart, list[str]]],
    fhir_server: FhirServer,
    proxy: RecordingProxy,
    client: FlaskClient,
    session: requests.Session,
    name: str,
    form: str,
) -> None:
    chart, refused = on_server[(name, form)]
    if refused:
        pytest.skip(f"the FHIR test server refused some of its resources: {'; '.join(refused)}")
    expected = direct(name)

    proxy.clear()
    fetched = hook_cards(client, proxy, fhir_server.token, chart.patient_id, {})
    assert fetched == expected, "without prefetch (the service reads the FHIR server)"
    medication_reads = [r for r in proxy.requests if r.resource_type == "Medication"]
    assert len(medication_reads) == -(-len(referenced_medications(chart)) // 50), "one read per 50 Medications"

    prefetch = prefetch_from(session, fhir_server, chart.patient_id)
    proxy.clear()
    prefetched = hook_cards(client, proxy, fhir_server.token, chart.patient_id, prefetch)
    assert prefetched == direct(name, templated=True), "with prefetch filled from the FHIR server by the templates"
    assert {r.resource_type for r in proxy.requests} <= {"Medication"}, "a complete prefetch needs no other query"


def test_medications_the_fhir_server_cannot_give_are_named_on_the_data_quality_card(
    on_server: dict[tuple[str, str], tuple[Chart, list[str]]],
    fhir_server: FhirServer,
    fhir_proxy: RecordingProxy,
    session: requests.Session,
    tmp_path: Path,
) -> None:
    """A complete prefetch, and a fhirServer that is gone by the time the Medications are read:
    the call still answers, and the therapy history is in doubt rather than empty."""
    name = next(name for name, form in CASES if form == REFERENCED)
    chart, _ = on_server[(name, REFERENCED)]
    prefetch = prefetch_from(session, fhir_server, chart.patient_id)
    config = Config(feedback_db=tmp_path / "f.sqlite3", allowed_fhir_servers=(fhir_proxy.base_url,), today=TODAY)
    fhir_proxy.stop()
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"patientId": chart.patient_id, "userId": "Practitioner/itest"},
        "fhirServer": fhir_proxy.base_url,
        "prefetch": prefetch,
    }
    response = create_app(config).test_client().post(HOOK_URL, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:800]
    details = [card["detail"] for card in response.get_json()["cards"] if "G7" in card["extension"][STATEMENTS]]
    assert details and "could not provide the medication records" in details[0]
