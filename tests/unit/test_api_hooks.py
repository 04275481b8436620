"""The hook endpoint's prefetch semantics (CDS Hooks 2.0 "Prefetch tokens", "FHIR Resource Access")."""

import re

import pytest
import responses

from cds_service import Config, create_app

HOOK_URL = "/cds-services/sarcoma-patient-view"
FHIR = "https://ehr.example/fhir"
AUTH = {
    "access_token": "tok-123",
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "patient/*.read",
    "subject": "cds",
}


@pytest.fixture
def client(tmp_path):
    """The app, allowed to read ``FHIR`` (a request naming any fhirServer is refused by default)."""
    return create_app(Config(feedback_db=tmp_path / "f.db", allowed_fhir_servers=(FHIR,))).test_client()


def searchset(*resources, next_url=None):
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def test_full_prefetch_answers_200_with_a_cards_list(client, hook):
    response = client.post(HOOK_URL, json=hook())
    assert response.status_code == 200
    assert isinstance(response.get_json()["cards"], list)


def test_missing_key_without_fhir_server_is_412_naming_the_key(client, hook):
    body = hook()
    del body["prefetch"]["observations"]
    response = client.post(HOOK_URL, json=body)
    assert response.status_code == 412
    issue = response.get_json()["issue"][0]
    assert "observations" in issue["diagnostics"]
    assert issue["expression"] == ["prefetch.observations"]


def test_no_prefetch_and_no_fhir_server_is_412(client, hook):
    response = client.post(HOOK_URL, json=hook(prefetch=None))
    assert response.status_code == 412
    assert response.get_json()["resourceType"] == "OperationOutcome"


@responses.activate
def test_null_prefetch_means_no_data_and_is_not_fetched(client, hook):
    body = hook(fhirServer=FHIR, fhirAuthorization=AUTH)
    body["prefetch"]["medicationStatements"] = None
    assert client.post(HOOK_URL, json=body).status_code == 200
    assert len(responses.calls) == 0


@responses.activate
def test_operation_outcome_prefetch_is_not_requeried(client, hook):
    body = hook(fhirServer=FHIR, fhirAuthorization=AUTH)
    body["prefetch"]["observations"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    response = client.post(HOOK_URL, json=body)
    assert response.status_code == 200
    assert len(responses.calls) == 0


@responses.activate
def test_missing_key_is_fetched_with_the_bearer_token(client, hook):
    responses.get(
        re.compile(re.escape(FHIR) + r"/Observation\?.*"),
        json=searchset(
            {
                "resourceType": "Observation",
                "id": "o1",
                "status": "final",
                "code": {"text": "x"},
                "subject": {"reference": "Patient/p1"},
            }
        ),
    )
    body = hook(fhirServer=FHIR, fhirAuthorization=AUTH)
    del body["prefetch"]["observations"]
    assert client.post(HOOK_URL, json=body).status_code == 200
    assert len(responses.calls) == 2  # by code, and by the mCODE profiles a code search misses
    for call in (c.request for c in responses.calls):
        assert call.headers["Authorization"] == "Bearer tok-123"
        assert "patient=p1" in call.url and "_count=" in call.url


@responses.activate
def test_open_server_is_queried_without_authorization(client, hook):
    responses.get(re.compile(re.escape(FHIR) + r"/Patient/p1"), json={"resourceType": "Patient", "id": "p1"})
    body = hook(fhirServer=FHIR)
    del body["prefetch"]["patient"]
    assert client.post(HOOK_URL, json=body).status_code == 200
    assert "Authorization" not in responses.calls[0].request.headers


@responses.activate
def test_paginated_prefetch_follows_next_links(client, hook):
    page2 = f"{FHIR}/Condition?page=2"
    responses.get(
        page2, json=searchset({"resourceType": "Condition", "id": "c2", "subject": {"reference": "Patient/p1"}})
    )
    body = hook(fhirServer=FHIR, fhirAuthorization=AUTH)
    body["prefetch"]["conditions"] = searchset(
        {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}}, next_url=page2
    )
    assert client.post(HOOK_URL, json=body).status_code == 200
    assert [c.request.url for c in responses.calls] == [page2]


def test_paginated_prefetch_without_server_is_412(client, hook):
    body = hook()
    body["prefetch"]["conditions"] = searchset(next_url=f"{FHIR}/Condition?page=2")
    response = client.post(HOOK_URL, json=body)
    assert response.status_code == 412
    assert "conditions" in response.get_json()["issue"][0]["diagnostics"]


def test_prefetch_of_another_patient_is_refused(client, hook):
    body = hook(patient_id="p1")
    body["prefetch"]["conditions"] = searchset(
        {"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/someone-else"}}
    )
    response = client.post(HOOK_URL, json=body)
    assert response.status_code == 400
    assert "another patient" in response.get_json()["issue"][0]["diagnostics"]
    assert "someone-else" not in response.get_data(as_text=True)


def test_prefetch_value_without_resource_type_is_400(client, hook):
    body = hook()
    body["prefetch"]["patient"] = {"id": "p1"}
    assert client.post(HOOK_URL, json=body).status_code == 400
