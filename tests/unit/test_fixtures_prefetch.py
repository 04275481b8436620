"""Fixture loading and the local prefetch evaluator (CDS Hooks 2.0 "Prefetch template")."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

from cds_service.config import Config
from cds_service.prefetch import Query
from cds_service.protocol.request import parse_hook_request
from cds_service.protocol.services import SARCOMA_PATIENT_VIEW
from fhir_fixtures.ehr import (
    FixtureError,
    build_prefetch,
    fixture_resources,
    hook_request,
    list_fixtures,
    load_bundle,
    request_context,
    run_query,
    stable_hook_instance,
)

FIXTURES_DIR = Config().fixtures_dir
FIXTURES = list_fixtures(FIXTURES_DIR)
STAGE_GROUP = {"system": "http://loinc.org", "code": "21908-9"}
BODY_HEIGHT = {"system": "http://loinc.org", "code": "8302-2"}


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    url = f"{resource['resourceType']}/{resource['id']}"
    return {"fullUrl": url, "resource": resource, "request": {"method": "PUT", "url": url}}


def _observation(ident: str, patient: str, coding: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "code": {"coding": [coding]},
        "subject": {"reference": f"Patient/{patient}"},
    }


def _bundle(*resources: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": [_entry(r) for r in resources]}


@pytest.fixture
def two_patients() -> dict[str, Any]:
    """Patient p1 with a stage observation and a height; a condition and a stage of patient p2."""
    return _bundle(
        {"resourceType": "Patient", "id": "p1"},
        _observation("p1-stage", "p1", STAGE_GROUP),
        _observation("p1-height", "p1", BODY_HEIGHT),
        _observation("p2-stage", "p2", STAGE_GROUP),
        {
            "resourceType": "Condition",
            "id": "p2-primary",
            "subject": {"reference": "Patient/p2"},
            "code": {"text": "sarcoma"},
        },
        {
            "resourceType": "MedicationStatement",
            "id": "p1-doxorubicin",
            "status": "completed",
            "medicationCodeableConcept": {"text": "doxorubicin"},
            "subject": {"reference": "http://ehr.example/fhir/Patient/p1"},
        },
    )


def test_every_template_key_is_answered(two_patients):
    prefetch = build_prefetch(two_patients, {"patientId": "p1", "userId": "Practitioner/x"})
    assert list(prefetch) == list(SARCOMA_PATIENT_VIEW.prefetch)


def test_searchsets_hold_only_the_patients_resources_of_that_type(two_patients):
    prefetch = build_prefetch(two_patients, {"patientId": "p1", "userId": "Practitioner/x"})
    assert prefetch["conditions"] == {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}
    [statement] = prefetch["medicationStatements"]["entry"]
    assert statement["resource"]["id"] == "p1-doxorubicin"  # absolute references count too
    assert statement["search"] == {"mode": "match"}
    assert prefetch["medicationRequests"]["total"] == 0


def test_medications_the_records_reference_come_along_as_included():
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ms",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "medicationReference": {"reference": "Medication/dox"},
    }
    medications = [{"resourceType": "Medication", "id": i, "code": {"text": i}} for i in ("dox", "unrelated")]
    bundle = _bundle({"resourceType": "Patient", "id": "p1"}, statement, *medications)
    prefetch = build_prefetch(bundle, {"patientId": "p1", "userId": "Practitioner/x"})
    entries = prefetch["medicationStatements"]["entry"]
    assert [(e["resource"]["id"], e["search"]["mode"]) for e in entries] == [("ms", "match"), ("dox", "include")]
    assert prefetch["medicationStatements"]["total"] == 1
    assert all(e["resource"]["resourceType"] != "Medication" for e in prefetch["medicationRequests"]["entry"])


def test_observation_search_applies_the_code_filter(two_patients):
    prefetch = build_prefetch(two_patients, {"patientId": "p1", "userId": "Practitioner/x"})
    observations = prefetch["observations"]
    assert [e["resource"]["id"] for e in observations["entry"]] == ["p1-stage"]
    assert observations["total"] == 1


def test_token_with_system_matches_only_that_system(two_patients):
    resources = fixture_resources(two_patients)
    by_system = run_query(Query.parse("Observation?patient=p1&code=http://loinc.org|21908-9"), resources)
    other_system = run_query(Query.parse("Observation?patient=p1&code=http://snomed.info/sct|21908-9"), resources)
    either = run_query(Query.parse("Observation?patient=Patient/p1&code=8302-2,21908-9&_count=1"), resources)
    assert [e["resource"]["id"] for e in by_system["entry"]] == ["p1-stage"]
    assert other_system["entry"] == []
    assert either["total"] == 2  # _count does not page: everything comes in one searchset


def test_read_gives_the_resource_or_null(two_patients):
    assert build_prefetch(two_patients, {"patientId": "p1"})["patient"] == {"resourceType": "Patient", "id": "p1"}
    assert build_prefetch(two_patients, {"patientId": "nobody"})["patient"] is None


@pytest.mark.parametrize("query", ["Observation?patient=p1&status=final", "Patient/p1?_elements=id"])
def test_query_features_beyond_the_templates_are_refused(two_patients, query):
    with pytest.raises(FixtureError, match="unsupported"):
        run_query(Query.parse(query), fixture_resources(two_patients))


def test_ids_missing_from_resources_come_from_the_request_url():
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": {"resourceType": "Patient"}, "request": {"method": "PUT", "url": "Patient/p9"}}],
    }
    assert request_context(bundle)["patientId"] == "p9"


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.slug for f in FIXTURES])
def test_each_fixture_prefetch_is_about_its_own_patient(fixture):
    bundle = load_bundle(fixture.slug, FIXTURES_DIR)
    context = request_context(bundle)
    assert context["patientId"] == fixture.patient
    prefetch = build_prefetch(bundle, context)
    assert prefetch["patient"]["id"] == fixture.patient
    for key, template in SARCOMA_PATIENT_VIEW.prefetch.items():
        if key == "patient":
            continue
        wanted = Query.parse(template).resource_type
        for entry in prefetch[key]["entry"]:
            resource = entry["resource"]
            assert resource["resourceType"] == wanted
            reference = (resource.get("subject") or resource.get("patient"))["reference"]
            assert reference.endswith(f"Patient/{fixture.patient}")


def test_index_lists_every_fixture_file():
    on_disk = {path.stem for path in FIXTURES_DIR.glob("*.json")}
    assert {f.slug for f in FIXTURES} == on_disk
    assert all(f.description and f.patient for f in FIXTURES)


def test_without_an_index_every_json_file_is_a_fixture(tmp_path, two_patients):
    for name in ("b-patient", "a-patient"):
        (tmp_path / f"{name}.json").write_text(json.dumps(two_patients))
    assert [f.slug for f in list_fixtures(tmp_path)] == ["a-patient", "b-patient"]


def test_load_bundle_accepts_a_collection(tmp_path, two_patients):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({**two_patients, "type": "collection"}))
    assert load_bundle(path)["type"] == "collection"


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "no such fixture file"),
        ("{not json", "not valid JSON"),
        ('{"resourceType": "Patient", "id": "p1"}', "not a FHIR Bundle"),
        ('{"resourceType": "Bundle", "type": "searchset"}', "transaction or collection"),
        (
            '{"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": '
            '{"resourceType": "Patient", "id": "p1", "gender": 12, "colour": "red"}}]}',
            "fails FHIR R4 validation",
        ),
    ],
)
def test_unusable_bundles_raise_a_clear_fixture_error(tmp_path, content, message):
    path = tmp_path / "broken.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(FixtureError, match=message) as raised:
        load_bundle(path)
    assert str(path) in str(raised.value)


def test_slugs_cannot_leave_the_fixtures_folder():
    with pytest.raises(FixtureError):
        load_bundle("..", FIXTURES_DIR)


def test_hook_request_is_spec_exact(two_patients):
    body = hook_request(two_patients)
    request = parse_hook_request(copy.deepcopy(body), SARCOMA_PATIENT_VIEW)
    assert request.patient_id == "p1"
    assert body["context"]["userId"] == "Practitioner/sandbox-clinician"
    assert uuid.UUID(body["hookInstance"]).version == 4
    assert body["hookInstance"] != hook_request(two_patients)["hookInstance"]
    assert set(body["prefetch"]) == set(SARCOMA_PATIENT_VIEW.prefetch)
    assert "fhirServer" not in body


def test_hook_request_for_a_fhir_server_with_a_token(two_patients):
    body = hook_request(two_patients, fhir_server="http://fhir.example/r4/", token="t0k", prefetch=False)
    request = parse_hook_request(body, SARCOMA_PATIENT_VIEW)
    assert request.fhir_server == "http://fhir.example/r4"
    assert request.fhir_authorization is not None and request.fhir_authorization.access_token == "t0k"
    assert "prefetch" not in body


@pytest.mark.parametrize("options", [{"token": "t0k"}, {"prefetch": False}])
def test_hook_request_refuses_impossible_combinations(two_patients, options):
    with pytest.raises(FixtureError):
        hook_request(two_patients, **options)


def test_stable_hook_instance_depends_only_on_the_slug():
    assert stable_hook_instance("lms-x") == stable_hook_instance("lms-x") != stable_hook_instance("lms-y")
    assert uuid.UUID(stable_hook_instance("lms-x")).version == 5


def test_hook_request_takes_a_slug():
    slug = FIXTURES[0].slug
    body = hook_request(slug, fixtures_dir=FIXTURES_DIR, hook_instance=stable_hook_instance(slug))
    assert body["hookInstance"] == stable_hook_instance(slug)
    assert body["context"]["patientId"] == FIXTURES[0].patient


def test_fixture_dir_default_follows_the_environment(monkeypatch, tmp_path, two_patients):
    (tmp_path / "only.json").write_text(json.dumps(two_patients))
    monkeypatch.setenv("CDS_FIXTURES_DIR", str(tmp_path))
    assert load_bundle("only")["entry"][0]["resource"]["id"] == "p1"


def test_a_category_token_list_matches_any_category_of_a_report(two_patients):
    report = {
        "resourceType": "DiagnosticReport",
        "id": "ct",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "category": [{"coding": [{"code": "LAB"}]}, {"coding": [{"system": "http://x", "code": "RAD"}]}],
        "code": {"text": "CT chest"},
    }
    resources = [*fixture_resources(two_patients), report]
    found = run_query(Query.parse("DiagnosticReport?patient=p1&category=CT,RAD"), resources)
    assert [e["resource"]["id"] for e in found["entry"]] == ["ct"]
    assert run_query(Query.parse("DiagnosticReport?patient=p1&category=SP"), resources)["entry"] == []
