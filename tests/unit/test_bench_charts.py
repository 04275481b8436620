"""The benchmark's synthetic charts are valid mCODE-shaped FHIR, of exactly the size asked for."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.prefetch import Query
from cds_service.protocol.services import prefetch_templates
from cds_service.summary.codes import codes

ROOT = Path(__file__).resolve().parents[2]
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/"


def _load_charts() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_charts", ROOT / "bench" / "charts.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


charts = _load_charts()


def profiles(resource: dict[str, Any]) -> list[str]:
    return resource.get("meta", {}).get("profile", [])


def observation_filter() -> set[str]:
    """The codes the service's ``observations`` prefetch template asks for."""
    return set((Query.parse(prefetch_templates()["observations"]).param("code") or "").split(","))


@pytest.mark.parametrize("size", [1, 10, 15, 16, 100, 1000, 5000])
def test_chart_has_exactly_the_requested_size(size: int) -> None:
    assert len(charts.make_chart(size)) == size


@settings(max_examples=25, deadline=None)
@given(size=st.integers(min_value=1, max_value=400), seed=st.integers(min_value=0, max_value=10_000))
def test_any_size_gives_that_many_resources_with_unique_ids(size: int, seed: int) -> None:
    chart = charts.make_chart(size, seed=seed)
    assert len(chart) == size
    assert len({(r["resourceType"], r["id"]) for r in chart}) == size


def test_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        charts.make_chart(0)


def test_same_seed_gives_the_same_chart_and_another_seed_another() -> None:
    assert charts.make_chart(300, seed=4) == charts.make_chart(300, seed=4)
    assert charts.make_chart(300, seed=4) != charts.make_chart(300, seed=5)


@pytest.mark.parametrize("size", [10, 1000])
def test_every_resource_is_valid_r4b_with_an_allowed_status(size: int) -> None:
    statuses = codes()["statuses"]
    for resource in charts.make_chart(size):
        model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        allowed = statuses.get(resource["resourceType"])
        if allowed is not None:
            assert model.status in allowed


def test_chart_is_one_mcode_patient_with_a_primary_sts_and_histology() -> None:
    chart = charts.make_chart(100)
    patient = chart[0]
    assert patient["resourceType"] == "Patient"
    assert profiles(patient) == [MCODE + "mcode-cancer-patient"]
    for resource in chart[1:]:
        subject = resource.get("subject", {}).get("reference")
        assert subject == f"Patient/{patient['id']}"
    primaries = [r for r in chart if MCODE + "mcode-primary-cancer-condition" in profiles(r)]
    assert len(primaries) == 1
    histology = [e for e in primaries[0]["extension"] if e["url"] == MCODE + "mcode-histology-morphology-behavior"]
    assert histology[0]["valueCodeableConcept"]["coding"][0]["code"] == "8890/3"  # leiomyosarcoma
    secondaries = [r for r in chart if MCODE + "mcode-secondary-cancer-condition" in profiles(r)]
    assert len(secondaries) == 2
    assert all(
        s["extension"][0]["valueReference"]["reference"] == f"Condition/{primaries[0]['id']}" for s in secondaries
    )


def test_staging_observations_carry_method_focus_and_members() -> None:
    chart = charts.make_chart(15)
    by_profile = {p.removeprefix(MCODE): r for r in chart for p in profiles(r)}
    stage = by_profile["mcode-tnm-stage-group"]
    assert stage["method"]["coding"][0]["code"] == "897275008"  # AJCC 8th edition
    members = {m["reference"] for m in stage["hasMember"]}
    tnm = {
        "mcode-tnm-primary-tumor-category",
        "mcode-tnm-regional-nodes-category",
        "mcode-tnm-distant-metastases-category",
    }
    assert members == {f"Observation/{by_profile[p]['id']}" for p in tnm}
    for profile in {
        "mcode-histologic-grade",
        "mcode-tumor-size",
        "mcode-ecog-performance-status",
        "mcode-cancer-disease-status",
    }:
        assert profile in by_profile


def test_every_observation_matches_the_prefetch_code_filter() -> None:
    wanted = observation_filter()
    for resource in charts.make_chart(1000):
        if resource["resourceType"] == "Observation":
            assert {c["code"] for c in resource["code"]["coding"]} & wanted


def test_large_chart_is_mostly_repeated_observations_with_every_medication_type() -> None:
    mix = Counter(r["resourceType"] for r in charts.make_chart(5000))
    assert mix["Patient"] == 1
    assert mix["Condition"] == 3
    assert mix["Observation"] > 0.6 * 5000
    assert min(mix["MedicationStatement"], mix["MedicationRequest"], mix["MedicationAdministration"]) > 0


def test_prefetch_fills_every_service_key_with_the_matching_type() -> None:
    chart = charts.make_chart(1000)
    prefetch = charts.prefetch_for(chart)
    assert set(prefetch) == set(prefetch_templates())
    assert prefetch["patient"] == chart[0]
    found = {("Patient", chart[0]["id"])}
    for key, template in prefetch_templates().items():
        if key == "patient":
            continue
        bundle = prefetch[key]
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
        assert bundle["total"] == len(bundle["entry"])
        assert {e["resource"]["resourceType"] for e in bundle["entry"]} <= {Query.parse(template).resource_type}
        found |= {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}
    assert len(found) == len(chart)  # every resource in some key (two queries may both find one)


def test_hook_request_is_a_spec_patient_view_call() -> None:
    body = charts.hook_request(charts.make_chart(10))
    assert set(body) == {"hook", "hookInstance", "context", "prefetch"}
    assert body["hook"] == "patient-view"
    assert uuid.UUID(body["hookInstance"]).version == 4
    assert body["context"] == {"userId": "Practitioner/bench-oncologist", "patientId": "bench-patient"}


def test_hook_request_without_chart_names_the_fhir_server_and_token() -> None:
    body = charts.hook_request(None, fhir_server="http://127.0.0.1:9/fhir", token="t")
    assert "prefetch" not in body
    assert body["fhirServer"] == "http://127.0.0.1:9/fhir"
    assert body["fhirAuthorization"]["access_token"] == "t"
    assert body["fhirAuthorization"]["token_type"] == "Bearer"


def test_transaction_puts_each_resource_under_its_id() -> None:
    chart = charts.make_chart(20)
    bundle = charts.transaction(chart)
    assert bundle["type"] == "transaction"
    assert [e["request"] for e in bundle["entry"]] == [
        {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"} for r in chart
    ]
