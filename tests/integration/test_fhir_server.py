"""The FHIR server the integration tests rely on does what the service's fallback needs.

Checked against whichever server ``fhir_server`` provides (sekmet-fhir by default, or
``FHIR_BASE_URL``): capability statement, transaction load, every prefetch query the service
issues, paging by ``next`` links, and bearer-token enforcement.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import requests

from cds_service.prefetch import fill_template
from cds_service.protocol.services import prefetch_templates

if TYPE_CHECKING:
    from conftest import FhirServer, RecordingProxy

PATIENT = "itest-srv"
BIG = "itest-srv-big"
BIG_SIZE = 123
LAB = {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}
SURVEY = {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}
STAGE_GROUP = {"system": "http://loinc.org", "code": "21908-9"}  # a code the observations template asks for


def transaction(*resources: dict[str, Any]) -> dict[str, Any]:
    """PUT entries with client ids, as the fixture bundles are written."""
    entries = [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def subject(patient: str) -> dict[str, Any]:
    return {"subject": {"reference": f"Patient/{patient}"}}


def small_patient() -> dict[str, Any]:
    """One resource of every type the service reads, all about PATIENT."""
    med = {"medicationCodeableConcept": {"text": "doxorubicin"}}
    return transaction(
        {"resourceType": "Patient", "id": PATIENT, "gender": "female", "birthDate": "1970-01-01"},
        {
            "resourceType": "Condition",
            "id": f"{PATIENT}-dx",
            **subject(PATIENT),
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "424413001"}]},
        },
        {
            "resourceType": "Observation",
            "id": f"{PATIENT}-stage",
            "status": "final",
            "category": [{"coding": [LAB]}],
            "code": {"coding": [STAGE_GROUP]},
            **subject(PATIENT),
        },
        {  # a performance status under a local code: found by its category (the assessments query) only
            "resourceType": "Observation",
            "id": f"{PATIENT}-who",
            "status": "final",
            "category": [{"coding": [SURVEY]}],
            "code": {"coding": [{"system": "https://ehr.example/codes", "code": "WHOPS"}], "text": "WHO PS"},
            "valueInteger": 1,
            **subject(PATIENT),
        },
        {"resourceType": "MedicationStatement", "id": f"{PATIENT}-ms", "status": "active", **subject(PATIENT), **med},
        {
            "resourceType": "MedicationRequest",
            "id": f"{PATIENT}-mr",
            "status": "active",
            "intent": "order",
            **subject(PATIENT),
            **med,
        },
        {
            "resourceType": "MedicationAdministration",
            "id": f"{PATIENT}-ma",
            "status": "completed",
            "effectiveDateTime": "2024-01-01",
            **subject(PATIENT),
            **med,
        },
        {
            "resourceType": "MedicationDispense",
            "id": f"{PATIENT}-md",
            "status": "completed",
            "whenHandedOver": "2024-01-01",
            **subject(PATIENT),
            **med,
        },
        {
            "resourceType": "Procedure",
            "id": f"{PATIENT}-px",
            "status": "completed",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "65801008"}]},
            "performedDateTime": "2024-02-01",
            **subject(PATIENT),
        },
        *(
            {
                "resourceType": "DiagnosticReport",
                "id": f"{PATIENT}-{category.lower()}",
                "status": "final",
                "category": [
                    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": category}]}
                ],
                "code": {"text": text},
                "conclusion": "No evidence of disease.",
                **subject(PATIENT),
            }
            # an imaging report, which the query asks for, and a laboratory one, which it must leave out
            for category, text in (("RAD", "CT chest"), ("LAB", "Full blood count"))
        ),
    )


def big_patient() -> dict[str, Any]:
    observations = (
        {
            "resourceType": "Observation",
            "id": f"{BIG}-{i}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
            "valueQuantity": {"value": 150 + i, "unit": "cm"},
            **subject(BIG),
        }
        for i in range(BIG_SIZE)
    )
    return transaction({"resourceType": "Patient", "id": BIG}, *observations)


def post_transaction(server: FhirServer, bundle: dict[str, Any]) -> requests.Response:
    headers = {**server.headers, "Content-Type": "application/fhir+json"}
    return requests.post(server.base_url, json=bundle, headers=headers, timeout=60)


def get(server: FhirServer, url: str, **params: str) -> dict[str, Any]:
    return get_json(url, server.headers, **params)


def get_json(url: str, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = requests.get(url, params=params or None, headers=headers, timeout=30)
    assert response.status_code == 200, response.text[:500]
    return response.json()


def matches(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]


def outcomes(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == "OperationOutcome"]


def pages(headers: dict[str, str], first_url: str) -> Iterator[dict[str, Any]]:
    url: str | None = first_url
    while url:
        page = get_json(url, headers)
        yield page
        url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)


@pytest.fixture(scope="module")
def loaded(fhir_server: FhirServer) -> FhirServer:
    for bundle in (small_patient(), big_patient()):
        response = post_transaction(fhir_server, bundle)
        assert response.status_code == 200, response.text[:500]
    return fhir_server


def test_metadata_is_an_r4_capability_statement(fhir_server: FhirServer) -> None:
    statement = get(fhir_server, f"{fhir_server.base_url}/metadata")
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"].startswith("4.0")


def test_a_transaction_bundle_is_accepted_entry_by_entry(fhir_server: FhirServer) -> None:
    response = post_transaction(fhir_server, small_patient())
    assert response.status_code == 200, response.text[:500]
    reply = response.json()
    assert reply["type"] == "transaction-response"
    statuses = [entry["response"]["status"] for entry in reply["entry"]]
    assert len(statuses) == len(small_patient()["entry"])
    assert all(status.startswith(("200", "201")) for status in statuses)


def test_a_transaction_with_a_bad_entry_is_rejected_whole(fhir_server: FhirServer) -> None:
    bad = transaction({"resourceType": "Patient", "id": "itest-srv-rolled-back"})
    bad["entry"].append(
        {
            "resource": {"resourceType": "Observation", "id": "itest-srv-misfiled", "status": "final", "code": {}},
            "request": {"method": "PUT", "url": "Condition/itest-srv-misfiled"},  # type differs from the body
        }
    )
    assert post_transaction(fhir_server, bad).status_code in (400, 422)
    url = f"{fhir_server.base_url}/Patient/itest-srv-rolled-back"
    assert requests.get(url, headers=fhir_server.headers, timeout=30).status_code in (404, 410)


def test_patient_read_returns_the_resource(loaded: FhirServer) -> None:
    patient = get(loaded, f"{loaded.base_url}/Patient/{PATIENT}")
    assert (patient["resourceType"], patient["id"]) == ("Patient", PATIENT)


@pytest.mark.parametrize("key", sorted(prefetch_templates()))
def test_every_prefetch_query_of_the_service_is_answered_in_full(loaded: FhirServer, key: str) -> None:
    """The fallback sends the prefetch templates as queries; no parameter may be ignored."""
    query = fill_template(prefetch_templates()[key], {"patientId": PATIENT, "userId": "Practitioner/itest"})
    body = get(loaded, f"{loaded.base_url}/{query}")
    if body["resourceType"] != "Bundle":
        assert (body["resourceType"], body["id"]) == ("Patient", PATIENT)
        return
    assert body["type"] == "searchset"
    assert outcomes(body) == [], "the server ignored a search parameter"
    found = matches(body)
    assert len(found) == 1
    assert found[0]["subject"]["reference"] == f"Patient/{PATIENT}"


@pytest.mark.parametrize(
    "params",
    [
        {"patient": PATIENT},
        {"patient": f"Patient/{PATIENT}"},
        {"subject": f"Patient/{PATIENT}"},
        {"patient": PATIENT, "category": "laboratory"},
        {"patient": PATIENT, "category": f"{LAB['system']}|{LAB['code']}"},
        {"patient": PATIENT, "code": f"{STAGE_GROUP['system']}|{STAGE_GROUP['code']}"},
        {"patient": PATIENT, "code": f"unknown-code,{STAGE_GROUP['code']}"},
        {"patient": PATIENT, "code": STAGE_GROUP["code"], "_count": "1"},
        {"patient": PATIENT, "category": "survey"},
    ],
    ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()),
)
def test_observation_search_forms_find_the_patients_observation(loaded: FhirServer, params: dict[str, str]) -> None:
    body = get(loaded, f"{loaded.base_url}/Observation", **params)
    wanted = {"laboratory": ["stage"], "survey": ["who"]}.get(params.get("category", "").rsplit("|")[-1])
    if wanted is None:
        wanted = ["stage"] if "code" in params else ["stage", "who"]
    assert sorted(r["id"] for r in matches(body)) == [f"{PATIENT}-{name}" for name in wanted]
    assert outcomes(body) == []


def test_a_search_by_several_ids_finds_exactly_those_resources(fhir_server: FhirServer) -> None:
    """How the service reads the Medications that medication records reference (``fhir/gather.py``)."""
    medications = [
        {"resourceType": "Medication", "id": f"itest-srv-med-{n}", "code": {"text": f"drug {n}"}} for n in range(3)
    ]
    assert post_transaction(fhir_server, transaction(*medications)).status_code == 200
    body = get(fhir_server, f"{fhir_server.base_url}/Medication", _id="itest-srv-med-0,itest-srv-med-2,unknown")
    assert sorted(r["id"] for r in matches(body)) == ["itest-srv-med-0", "itest-srv-med-2"]
    assert outcomes(body) == []


def test_observation_search_excludes_other_categories_and_codes(loaded: FhirServer) -> None:
    assert matches(get(loaded, f"{loaded.base_url}/Observation", patient=PATIENT, category="vital-signs")) == []
    assert matches(get(loaded, f"{loaded.base_url}/Observation", patient=PATIENT, code="8302-2")) == []


def test_paging_with_next_links_returns_every_match_once(loaded: FhirServer) -> None:
    first = f"{loaded.base_url}/Observation?patient={BIG}&_count=50"
    seen = list(pages(loaded.headers, first))
    ids = [r["id"] for page in seen for r in matches(page)]
    assert len(seen) == 3
    assert [len(matches(page)) for page in seen] == [50, 50, BIG_SIZE - 100]
    assert sorted(ids) == sorted(f"{BIG}-{i}" for i in range(BIG_SIZE))
    assert seen[0].get("total", BIG_SIZE) == BIG_SIZE


def test_next_links_stay_on_the_same_server(loaded: FhirServer) -> None:
    page = get(loaded, f"{loaded.base_url}/Observation", patient=BIG, _count="50")
    next_url = next(link["url"] for link in page["link"] if link["relation"] == "next")
    assert next_url.startswith(loaded.base_url + "/")


def test_a_wrong_bearer_token_is_refused_with_401(loaded: FhirServer) -> None:
    if not loaded.token:
        pytest.skip("the external FHIR server was given without a token, so it may not check one")
    wrong = {"Accept": "application/fhir+json", "Authorization": "Bearer not-the-token"}
    assert requests.get(f"{loaded.base_url}/Patient/{PATIENT}", headers=wrong, timeout=30).status_code == 401
    assert requests.get(f"{loaded.base_url}/Patient/{PATIENT}", timeout=30).status_code == 401


def test_the_recording_proxy_sees_every_page_and_keeps_links_on_itself(
    loaded: FhirServer, fhir_proxy: RecordingProxy
) -> None:
    seen = list(pages(loaded.headers, f"{fhir_proxy.base_url}/Observation?patient={BIG}&_count=50"))
    assert sum(len(matches(page)) for page in seen) == BIG_SIZE
    first, *rest = fhir_proxy.requests
    assert (first.method, first.path) == ("GET", "Observation")
    assert (first.param("patient"), first.param("_count")) == ([BIG], ["50"])
    assert len(rest) == 2 and all(r.status == 200 for r in fhir_proxy.requests)


def test_a_stopped_proxy_refuses_connections(fhir_proxy: RecordingProxy) -> None:
    fhir_proxy.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{fhir_proxy.base_url}/metadata", timeout=5)
