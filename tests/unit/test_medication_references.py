"""Medication records that name their drug by ``medicationReference`` ("Medication/abc"): the service
reads the referenced Medication resources it was not given, with one ``Medication?_id=`` query per
chunk of ids, after the other queries. A failed read never fails the call: the medication records
count as unavailable and the therapy facts rest on partial data (G7), never "no prior therapy".
"""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from test_metrics import scrape, value

from cds_service import Config, create_app
from fhir_fixtures.ehr import hook_request

HOOK_URL = "/cds-services/sarcoma-patient-view"
FHIR = "https://ehr.example/fhir"
AUTH = {"access_token": "tok", "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read", "subject": "cds"}
MEDICATIONS = re.compile(re.escape(FHIR) + r"/Medication\?.*")
SLUG = "ddlps-metastatic-after-doxorubicin"  # doxorubicin given for metastatic disease: second line next
STATEMENTS = "org.sarcoma-cds.statements"
LINE_DEPENDENT = {"S28", "S29", "S38", "S40", "S43"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    config = Config(feedback_db=tmp_path_factory.mktemp("db") / "f.db", allowed_fhir_servers=(FHIR,))
    return create_app(config).test_client()


def by_reference(body: dict[str, Any], include: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``body`` with each administration's drug moved into a Medication resource it references; the
    Medications are put in the prefetch Bundle (``include``) or left for the service to read."""
    body = copy.deepcopy(body)
    medications: dict[str, dict[str, Any]] = {}
    bundle = body["prefetch"]["medicationAdministrations"]
    for entry in bundle["entry"]:
        resource = entry["resource"]
        concept = resource.pop("medicationCodeableConcept")
        ident = "med-" + "-".join(c["code"] for c in concept.get("coding", []))
        medications[ident] = {"resourceType": "Medication", "id": ident, "code": concept}
        resource["medicationReference"] = {"reference": f"Medication/{ident}"}
    if include:
        bundle["entry"] += [{"resource": m, "search": {"mode": "include"}} for m in medications.values()]
    body.update(fhirServer=FHIR, fhirAuthorization=AUTH)
    return body, list(medications.values())


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def post(client: Any, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(HOOK_URL, json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["cards"]


def ids(cards: list[dict[str, Any]]) -> set[str]:
    return {sid for card in cards for sid in card["extension"][STATEMENTS]}


def detail_of_data_quality(cards: list[dict[str, Any]]) -> str:
    return next(card["detail"] for card in cards if "G7" in card["extension"][STATEMENTS])


def queried_ids(call: Any) -> list[str]:
    query = parse_qs(urlsplit(call.request.url).query)
    return query["_id"][0].split(",")


@responses.activate
def test_referenced_medications_are_read_and_give_the_cards_of_coded_ones(client: Any) -> None:
    coded = post(client, hook_request(SLUG))
    body, medications = by_reference(hook_request(SLUG))
    responses.get(MEDICATIONS, json=searchset(*medications))
    assert ids(post(client, body)) == ids(coded)
    (call,) = responses.calls
    assert urlsplit(call.request.url).path == "/fhir/Medication"
    assert sorted(queried_ids(call)) == sorted(m["id"] for m in medications)
    assert call.request.headers["Authorization"] == "Bearer tok"


@responses.activate
def test_medications_already_in_the_prefetch_are_not_read_again(client: Any) -> None:
    body, _ = by_reference(hook_request(SLUG), include=True)
    assert ids(post(client, body)) == ids(post(client, hook_request(SLUG)))
    assert len(responses.calls) == 0


@responses.activate
def test_many_referenced_medications_are_read_in_chunks_of_ids(client: Any) -> None:
    body, _ = by_reference(hook_request(SLUG))
    entries = body["prefetch"]["medicationAdministrations"]["entry"]
    template = entries[0]
    for n in range(120):
        extra = copy.deepcopy(template)
        extra["resource"]["id"] = f"extra-{n}"
        extra["resource"]["medicationReference"] = {"reference": f"Medication/unknown-{n}"}
        entries.append(extra)
    responses.get(MEDICATIONS, json=searchset())
    post(client, body)
    chunks = [queried_ids(call) for call in responses.calls]
    assert len(chunks) == 3 and all(len(chunk) <= 50 for chunk in chunks)
    assert len({i for chunk in chunks for i in chunk}) == 121


@responses.activate
def test_only_the_medications_asked_for_are_taken_from_the_answer(client: Any) -> None:
    body, medications = by_reference(hook_request(SLUG))
    stranger = {"resourceType": "Medication", "id": "not-asked-for", "code": {"text": "doxorubicin"}}
    responses.get(MEDICATIONS, json=searchset(*medications, stranger))
    assert ids(post(client, body)) == ids(post(client, hook_request(SLUG)))


@pytest.mark.parametrize(
    "answer",
    [
        {"body": requests.exceptions.ReadTimeout()},
        {"status": 500, "json": {"resourceType": "OperationOutcome"}},
        {"body": "{{{ not json", "content_type": "application/fhir+json"},
        {"json": {"resourceType": "Bundle", "entry": "not an array"}},
    ],
    ids=["timeout", "server-error", "malformed-json", "malformed-bundle"],
)
@responses.activate
def test_a_failed_medication_read_withholds_the_therapy_facts_and_is_no_error(client: Any, answer: Any) -> None:
    body, _ = by_reference(hook_request(SLUG))
    responses.get(MEDICATIONS, **answer)
    cards = post(client, body)
    assert not LINE_DEPENDENT & ids(cards)  # neither first nor later line: never "no prior therapy"
    detail = detail_of_data_quality(cards)
    assert "could not provide the medication records" in detail
    assert "HTTP" not in detail and "JSON" not in detail and "FHIR" not in detail


@responses.activate
def test_without_a_fhir_server_referenced_medications_are_not_read(client: Any) -> None:
    body, _ = by_reference(hook_request(SLUG))
    del body["fhirServer"], body["fhirAuthorization"]
    cards = post(client, body)
    assert len(responses.calls) == 0
    assert not LINE_DEPENDENT & ids(cards)
    assert "neither its code nor its name is in the record" in detail_of_data_quality(cards)


@responses.activate
def test_medication_reads_are_counted_under_their_own_resource_type(tmp_path: Any) -> None:
    config = Config(feedback_db=tmp_path / "f.db", allowed_fhir_servers=(FHIR,), metrics=True)
    metered = create_app(config).test_client()
    body, medications = by_reference(hook_request(SLUG))
    responses.get(MEDICATIONS, json=searchset(*medications))
    post(metered, body)
    scraped = scrape(metered)
    assert value(scraped, "sarcoma_cds_fhir_request_duration_seconds_count", resource_type="Medication", outcome="ok")
    assert value(scraped, "sarcoma_cds_fhir_resources_total", resource_type="Medication") == len(medications)


@pytest.mark.parametrize(
    ("reference", "ident"),
    [
        ("Medication/m1", "m1"),
        ("Medication/m1/_history/2", "m1"),
        ("https://ehr.example/fhir/Medication/m1", "m1"),
        ("https://ehr.example/fhir/Medication/m1/_history/3", "m1"),
        ("#m1", None),  # contained: travels with its record
        ("Condition/c1", None),
        ("Medication/", None),
    ],
)
def test_a_medication_is_referenced_relative_absolute_or_versioned(reference: str, ident: str | None) -> None:
    from cds_service.bundle import referenced_id
    from cds_service.fhir.gather import referenced_medications

    assert referenced_id(reference, "Medication") == ident
    statement = {"resourceType": "MedicationStatement", "medicationReference": {"reference": reference}}
    assert referenced_medications([statement]) == ([ident] if ident else [])
