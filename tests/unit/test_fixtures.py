"""The fixture patients in fhir_fixtures/ are valid FHIR, self-contained and indexed.

Scenario and integration tests load these bundles into a prefetch or a FHIR server, so a broken
reference or a duplicate id would make them fail for the wrong reason.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fhir.resources.R4B import get_fhir_model_class

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fhir_fixtures"
BUNDLE_FILES = sorted(FIXTURES.glob("*.json"))
INDEX: list[dict[str, Any]] = yaml.safe_load((FIXTURES / "index.yaml").read_text("utf-8"))
ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
STATEMENT_IDS = {path.stem for path in (ROOT / "cards").glob("[SG][0-9]*.yaml")}
ICDO3_CODE = re.compile(r"^\d{4}/[012369]$")
ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/"
HISTOLOGY_EXT = MCODE + "mcode-histology-morphology-behavior"
RELATED_EXT = "http://hl7.org/fhir/StructureDefinition/condition-related"
CLINICAL_DATE_KEYS = {
    "onsetDateTime",
    "recordedDate",
    "effectiveDateTime",
    "authoredOn",
    "performedDateTime",
    "dateAsserted",
    "start",
    "end",
}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text("utf-8"))


def resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle["entry"]]


def references(node: Any) -> Iterator[str]:
    """Every ``reference`` string anywhere inside a resource."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def dated_values(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in CLINICAL_DATE_KEYS and isinstance(value, str):
                yield value
            else:
                yield from dated_values(value)
    elif isinstance(node, list):
        for item in node:
            yield from dated_values(item)


@pytest.fixture(scope="module", params=BUNDLE_FILES, ids=lambda p: p.stem)
def bundle(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def test_there_are_at_least_25_fixture_patients() -> None:
    assert len(BUNDLE_FILES) >= 25


def test_every_bundle_validates_as_r4b_and_so_does_every_resource(bundle: dict[str, Any]) -> None:
    get_fhir_model_class("Bundle").model_validate(bundle)
    for resource in resources(bundle):
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_bundle_is_a_transaction_of_puts_to_type_slash_id(bundle: dict[str, Any]) -> None:
    assert bundle["type"] == "transaction"
    for entry in bundle["entry"]:
        resource = entry["resource"]
        address = f"{resource['resourceType']}/{resource['id']}"
        assert entry["request"] == {"method": "PUT", "url": address}
        assert entry["fullUrl"] == address


def test_bundle_holds_one_patient_and_every_id_starts_with_its_id(bundle: dict[str, Any]) -> None:
    patients = [r for r in resources(bundle) if r["resourceType"] == "Patient"]
    assert len(patients) == 1
    patient_id = patients[0]["id"]
    assert patient_id == bundle["id"]
    for resource in resources(bundle):
        assert ID_PATTERN.match(resource["id"]), resource["id"]
        assert resource["id"].startswith(patient_id)


def test_every_reference_resolves_inside_its_bundle(bundle: dict[str, Any]) -> None:
    present = {f"{r['resourceType']}/{r['id']}" for r in resources(bundle)}
    for resource in resources(bundle):
        for target in references(resource):
            assert target in present, f"{resource['id']} -> {target}"


def test_references_point_at_the_right_resource_types(bundle: dict[str, Any]) -> None:
    """subject -> Patient, focus -> Condition/BodyStructure, hasMember -> Observation,
    condition-related -> Condition (mCODE STU4 profiles)."""
    for resource in resources(bundle):
        if "subject" in resource:
            assert resource["subject"]["reference"].startswith("Patient/")
        for focus in resource.get("focus", []):
            assert focus["reference"].split("/")[0] in {"Condition", "BodyStructure"}
        for member in resource.get("hasMember", []):
            assert member["reference"].startswith("Observation/")
        for ext in resource.get("extension", []):
            if ext["url"] == RELATED_EXT:
                assert ext["valueReference"]["reference"].startswith("Condition/")


def test_staging_observations_name_method_and_focus(bundle: dict[str, Any]) -> None:
    for resource in resources(bundle):
        profiles = resource.get("meta", {}).get("profile", [])
        if any("mcode-tnm-" in p for p in profiles):
            assert resource["method"]["coding"][0]["code"] in {"897275008", "443830009"}
            assert resource["focus"][0]["reference"].startswith("Condition/")
            assert resource["status"] == "final"


def test_primary_histology_is_icdo3(bundle: dict[str, Any]) -> None:
    for resource in resources(bundle):
        for ext in resource.get("extension", []):
            if ext["url"] == HISTOLOGY_EXT:
                (histology,) = ext["valueCodeableConcept"]["coding"]
                assert histology["system"] == ICDO3
                assert ICDO3_CODE.match(histology["code"])


def test_clinical_dates_fall_in_2020_to_october_2026(bundle: dict[str, Any]) -> None:
    """Stories run up to their ``today`` (2026); a few reach back to an old performance status or
    a transplant years before the sarcoma."""
    for resource in resources(bundle):
        for value in dated_values(resource):
            assert "2020-01-01" <= value[:10] <= "2026-10-31", (resource["id"], value)


def test_resource_addresses_are_unique_across_all_fixtures() -> None:
    counts = Counter(f"{r['resourceType']}/{r['id']}" for path in BUNDLE_FILES for r in resources(load(path)))
    assert [address for address, n in counts.items() if n > 1] == []


def test_index_and_files_match_one_to_one() -> None:
    files = [entry["file"] for entry in INDEX]
    assert len(files) == len(set(files))
    assert set(files) == {path.name for path in BUNDLE_FILES}
    for entry in INDEX:
        assert entry["patient"] == load(FIXTURES / entry["file"])["id"]


def test_index_entries_name_known_statement_ids_and_never_contradict_themselves() -> None:
    for entry in INDEX:
        assert entry["description"] and entry["situation"]
        for statement in entry["must"] + entry["must_not"] + entry["shows"]:
            assert statement in STATEMENT_IDS, (entry["file"], statement)
        assert not set(entry["must"]) & set(entry["must_not"]), entry["file"]
        assert set(entry["must"]) <= set(entry["shows"]), entry["file"]
        assert not set(entry["must_not"]) & set(entry["shows"]), entry["file"]


def test_large_fixture_needs_paging_even_for_oncology_codes_alone() -> None:
    """>= 500 Observations in all, and > 100 ECOG/Karnofsky ones (one page at _count=100)."""
    observations = [
        r for r in resources(load(FIXTURES / "many-observations.json")) if r["resourceType"] == "Observation"
    ]
    performance = [o for o in observations if o["code"]["coding"][0]["code"] in {"89247-1", "89243-0"}]
    assert len(observations) >= 500
    assert len(performance) > 100


@pytest.fixture(scope="module")
def builder() -> Any:
    spec = importlib.util.spec_from_file_location("fixture_build", FIXTURES / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_committed_json_and_index_are_what_the_builder_makes_of_the_patient_files(builder: Any) -> None:
    patients = builder.load_patients()
    assert [p.slug for p in patients] == [Path(entry["file"]).stem for entry in INDEX]
    for patient in patients:
        committed = (FIXTURES / f"{patient.slug}.json").read_text("utf-8")
        assert builder.bundle_text(patient) == committed, patient.slug
    assert builder.index_text(patients) == (FIXTURES / "index.yaml").read_text("utf-8")


MINIMAL_PATIENT = {
    "description": "A patient with a diagnosis only.",
    "today": "2026-03-01",
    "situation": ["sts"],
    "must": ["S01"],
    "must_not": [],
    "shows": ["S01"],
    "resources": [
        {"patient": {"given": "Ada", "family": "Test", "gender": "female", "birth": "1970-01-01"}},
        {"primary": {"codes": ["sts:lms"], "onset": "2025-01-01"}},
    ],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"resources": [{"scan": {"when": "2025-02-01"}}]}, "step 3: unknown step 'scan'"),
        (
            {"resources": [{"ecog": {"score": 0, "when": "2025-02-01", "scale": "who"}}]},
            "step 3 (ecog): unknown key 'scale'",
        ),
        ({"resources": [{"ecog": {"score": 0}}]}, "step 3 (ecog): missing key 'when'"),
        (
            {"resources": [{"stage_group": {"kind": "c", "stage": "IA", "when": "2025-02-01", "members": "tnm-dx"}}]},
            "step 3 (stage_group): 'members: tnm-dx' names no earlier step",
        ),
        ({"notes": "free text"}, "unknown key 'notes'"),
    ],
)
def test_a_patient_file_with_an_unknown_step_or_key_is_refused_naming_the_file(
    builder: Any, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = tmp_path / "odd-patient.yaml"
    path.write_text(yaml.safe_dump(MINIMAL_PATIENT), "utf-8")
    assert builder.build(builder.load_patient(path))["id"] == "odd-patient"
    broken = {**MINIMAL_PATIENT, **change}
    if "resources" in change:
        broken["resources"] = MINIMAL_PATIENT["resources"] + change["resources"]
    path.write_text(yaml.safe_dump(broken), "utf-8")
    with pytest.raises(builder.PatientFileError) as refused:
        builder.load_patient(path)
    assert "odd-patient.yaml" in str(refused.value)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("primary", "message"),
    [
        ({"codes": ["sts:lms", "icd:C99.9"]}, "unknown value 'icd:C99.9'"),
        ({"codes": ["sts:lms"], "site": "spleen"}, "unknown value 'spleen'"),
    ],
)
def test_an_unknown_code_or_table_name_is_refused_naming_the_file_and_step(
    builder: Any, tmp_path: Path, primary: dict[str, Any], message: str
) -> None:
    path = tmp_path / "odd-code.yaml"
    patient_step = MINIMAL_PATIENT["resources"][0]
    broken = {**MINIMAL_PATIENT, "resources": [patient_step, {"primary": {"onset": "2025-01-01", **primary}}]}
    path.write_text(yaml.safe_dump(broken), "utf-8")
    with pytest.raises(builder.PatientFileError) as refused:
        builder.build(builder.load_patient(path))
    assert str(refused.value).endswith(f"odd-code.yaml: step 2 (primary): {message}")


def test_record_shows_rewrites_only_the_shows_block_of_a_patient_file(builder: Any, tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    text = yaml.safe_dump(MINIMAL_PATIENT, sort_keys=False).replace("shows:\n- S01\n", "shows: [S01, S05,\n  S06]\n")
    path.write_text(text, "utf-8")
    patient = builder.load_patient(path)
    builder.record_shows([patient], {"one": ["G7", "S01"]})
    assert path.read_text("utf-8") == text.replace("shows: [S01, S05,\n  S06]\n", "shows: [G7, S01]\n")
    assert builder.load_patient(path).shows == ["G7", "S01"]


def test_a_long_shows_list_is_wrapped_and_an_empty_one_is_written_as_brackets(builder: Any) -> None:
    ids = [f"S{i:02d}" for i in range(1, 48)]
    text = builder.flow_list("shows", ids)
    assert all(len(line) <= 110 for line in text.splitlines())
    assert yaml.safe_load(text) == {"shows": ids}
    assert builder.flow_list("shows", []) == "shows: []\n"


def _two_patient_folder(tmp_path: Path, builder: Any) -> Path:
    folder = tmp_path / "fixtures"
    (folder / "patients").mkdir(parents=True)
    sarcoma = {
        **MINIMAL_PATIENT,
        "resources": MINIMAL_PATIENT["resources"] + [{"tnm": {"kind": "c", "m": "M0", "when": "2025-01-10"}}],
    }
    control = {
        **MINIMAL_PATIENT,
        "situation": ["not-sts"],
        "must": [],
        "shows": [],
        "resources": [MINIMAL_PATIENT["resources"][0], {"primary": {"codes": ["sct:nsclc"], "onset": "2025-01-01"}}],
    }
    (folder / "patients" / "lms-mini.yaml").write_text(yaml.safe_dump(sarcoma), "utf-8")
    (folder / "patients" / "nsclc-mini.yaml").write_text(yaml.safe_dump(control), "utf-8")
    (folder / "patients" / "ORDER").write_text("lms-mini\nnsclc-mini\n", "utf-8")
    builder.write_all(folder)
    return folder


def test_recorded_shows_are_what_the_service_returns_for_each_chart(builder: Any, tmp_path: Path) -> None:
    folder = _two_patient_folder(tmp_path, builder)
    shown = builder.shown_statements(builder.load_patients(folder / "patients"), folder)
    assert set(shown) == {"lms-mini", "nsclc-mini"}
    assert "S01" in shown["lms-mini"] and set(shown["lms-mini"]) <= STATEMENT_IDS
    assert shown["lms-mini"] == sorted(shown["lms-mini"])
    assert shown["nsclc-mini"] == []


def test_recorded_shows_read_each_chart_as_of_its_patients_today(builder: Any, tmp_path: Path) -> None:
    """Read before the diagnosis was made, the same chart holds nothing to show."""
    folder = _two_patient_folder(tmp_path, builder)
    patient = builder.load_patients(folder / "patients")[0]
    earlier = builder.Patient(**{**patient.__dict__, "today": "2024-06-01"})
    assert builder.shown_statements([earlier], folder) == {"lms-mini": []}


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            {"stated": {"start": "2025-02-01", "status": "completed"}},
            "step 3 (stated): a medication needs 'drug' or 'text'",
        ),
        (
            {"primary": {"codes": [], "onset": "2025-01-01", "suffix": "primary-2"}},
            "step 3 (primary): a primary needs 'codes' or 'text'",
        ),
        (
            {"metastasis": {"site": "lung", "onset": "2025-02-01", "verification": "likely"}},
            "step 3 (metastasis): unknown value 'likely'",
        ),
    ],
)
def test_a_medication_without_a_drug_or_a_condition_without_a_code_is_refused(
    builder: Any, tmp_path: Path, step: dict[str, Any], message: str
) -> None:
    path = tmp_path / "odd-step.yaml"
    broken = {**MINIMAL_PATIENT, "resources": MINIMAL_PATIENT["resources"] + [step]}
    path.write_text(yaml.safe_dump(broken), "utf-8")
    with pytest.raises(builder.PatientFileError) as refused:
        builder.build(builder.load_patient(path))
    assert str(refused.value).endswith(f"odd-step.yaml: {message}")


def test_free_text_drugs_name_their_ids_and_carry_no_invented_route(builder: Any) -> None:
    chart = builder.Chart("p")
    chart.patient("Ada", "Test", "female", "1970-01-01", deceased="2026-01-02")
    chart.primary(["sts:lms"], "2025-01-01")
    other = chart.condition("transplant", "2020-05-04", "Kidney transplant", ["icd:Z94.0"])
    chart.stated("2025-05-05", "completed", text="MAID x 6 cycles", end="2025-08-18")
    chart.renewed("2025-03-03", 30, 2, drug="sirolimus", treats=other)
    made = {r["id"]: r for r in chart.resources}
    assert made["p"]["deceasedDateTime"] == "2026-01-02"
    maid = made["p-mstmt-maid-x-6-cycles"]
    assert maid["medicationCodeableConcept"] == {"text": "MAID x 6 cycles"} and "dosage" not in maid
    first, last = made["p-mreq-sirolimus-r01"], made["p-mreq-sirolimus-r02"]
    assert (first["status"], last["status"]) == ("completed", "active")
    assert last["reasonReference"] == [{"reference": "Condition/p-condition-transplant"}]
    assert "meta" not in last and "extension" not in last  # not a cancer-related medication
