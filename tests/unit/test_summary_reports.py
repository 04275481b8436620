"""Imaging and pathology reports: a final report's coded conclusion is a disease status, its
conclusion in words is read as a note; reports not final, or dated after today, are not read."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fhir_builders import (
    LOINC,
    SNOMED,
    concept,
    condition,
    disease_status,
    med_administration,
    observation,
    primary,
    rxnorm,
    secondary,
    stage_group,
)

from cds_service.summary import summarise
from cds_service.summary.model import DiseaseStatus

TODAY = date(2025, 1, 1)
ON_LINE = [
    primary(snomed="443719001", onset="2020-01-01"),
    secondary("lung", onset="2021-01-01"),
    med_administration("d", rxnorm("1790099"), start="2021-02-01"),
]
WORSENED = "271299001"


def report(
    id: str = "ct", *, status: str = "final", day: str = "2021-06-01", coded: str | None = None, text: str | None = None
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": id,
        "status": status,
        "subject": {"reference": "Patient/p1"},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
        "code": {"text": "CT chest, abdomen and pelvis"},
        "effectiveDateTime": day,
    }
    if coded:
        resource["conclusionCode"] = [concept(SNOMED, coded)]
    if text:
        resource["conclusion"] = text
    return resource


def test_a_final_report_coding_progression_is_progression() -> None:
    summary = summarise([*ON_LINE, report(coded=WORSENED)], today=TODAY)
    assert summary.progression is not None and summary.progression.value is True
    assert summary.progression.sources == ("DiagnosticReport/ct",)


def test_a_report_speaking_of_progression_only_in_words_asks_to_confirm_the_status() -> None:
    summary = summarise(
        [*ON_LINE, report(text="Progressive disease (RECIST 1.1): two new liver metastases.")], today=TODAY
    )
    assert summary.progression is None or summary.progression.value is not True
    asked = {f.about for f in summary.findings if f.sources == ("DiagnosticReport/ct",)}
    assert {"disease_status", "progression"} <= asked
    why = next(f.message for f in summary.findings if f.about == "disease_status")
    assert "per report on DiagnosticReport/ct" in why and "per note" not in why


@pytest.mark.parametrize(
    "unread",
    [
        report(status="preliminary", coded=WORSENED),
        report(status="entered-in-error", text="Progressive disease."),
        report(day="2025-01-02", coded=WORSENED),  # dated after today
        report(text="No evidence of disease progression."),
        report(coded="359746009"),  # stable
        report(text="Small vessel disease progression. No acute infarct."),  # names no tumour
    ],
)
def test_a_report_that_does_not_conclude_progression_plainly_and_finally_is_not_progression(
    unread: dict[str, Any],
) -> None:
    summary = summarise([*ON_LINE, unread], today=TODAY)
    assert summary.progression is None or summary.progression.value is False


def test_a_status_observation_of_the_same_date_wins_over_a_report() -> None:
    summary = summarise(
        [*ON_LINE, report(coded=WORSENED), disease_status("s", "stable", date="2021-06-01")], today=TODAY
    )
    assert summary.disease_status is not None and summary.disease_status.value is DiseaseStatus.STABLE


def test_a_later_report_wins_over_an_earlier_status_observation() -> None:
    summary = summarise(
        [*ON_LINE, disease_status("s", "stable", date="2021-05-01"), report(coded=WORSENED)], today=TODAY
    )
    assert summary.disease_status is not None and summary.disease_status.value is DiseaseStatus.WORSENED


def test_an_invalid_report_is_not_read_and_is_reported() -> None:
    broken = {**report(coded=WORSENED), "status": 7}
    summary = summarise([*ON_LINE, broken], today=TODAY)
    assert summary.progression is None
    assert any(f.sources == ("DiagnosticReport/ct",) for f in summary.findings)


def test_beside_another_active_cancer_a_report_is_not_read_as_the_sarcomas_course() -> None:
    breast = condition("breast", concept(SNOMED, "353431000119107"), onset="2020-06-01")
    summary = summarise([*ON_LINE, breast, report(coded=WORSENED, text="Progressive disease.")], today=TODAY)
    assert summary.progression is None


@pytest.mark.parametrize(("status", "dead"), [("final", True), ("preliminary", None)])
def test_a_final_autopsy_report_records_the_death(status: str, dead: bool | None) -> None:
    autopsy = {
        **report(status=status, text="Immediate cause of death: pulmonary embolism."),
        "code": concept(LOINC, "18743-5"),
    }
    summary = summarise([*ON_LINE, autopsy], today=TODAY)
    assert (summary.deceased.value if summary.deceased else None) is dead


def test_a_margin_sentence_of_a_pathology_report_is_read() -> None:
    path = report("path", day="2020-03-01", text="All margins negative, closest 12 mm (R0).")
    summary = summarise([primary(snomed="443719001", onset="2020-01-01"), path], today=TODAY)
    assert summary.margin_from_note is not None and summary.margin_from_note.value.value == "R0"


STAGED_M0 = [primary(snomed="443719001", onset="2020-01-01"), stage_group("sg", "IIIA", date="2020-02-01")]


def _mri(text: str, day: str = "2021-06-01") -> dict[str, Any]:
    """An MRI report in words only, its category written as many systems write it (MR)."""
    mri = report("mri", day=day, text=text)
    return {
        **mri,
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "MR"}]}],
    }


@pytest.mark.parametrize(
    ("found", "restage"),
    [
        (report(coded="94391008"), True),  # Secondary malignant neoplasm of lung, coded
        (_mri("Lesions in T11 and L4 in keeping with metastases from the known sarcoma."), True),
        (_mri("Appearances in keeping with pulmonary metastatic disease from the sarcoma."), True),
        (_mri("No lesion in keeping with metastases from the sarcoma."), False),
        (report(coded="94391008", day="2020-01-15"), False),  # before the stage that implies M0: settled by it
    ],
)
def test_a_metastasis_a_report_finds_after_m0_asks_for_restaging(found: dict, restage: bool) -> None:
    """A surveillance scan coded or worded as metastatic disease: the earlier M0 no longer holds (R1)."""
    summary = summarise([*STAGED_M0, found], today=TODAY)
    restaging = [f for f in summary.findings if f.about == "extent" and "restaging needed" in f.message]
    assert bool(restaging) is restage and (summary.extent is None) is restage


def test_a_report_on_known_metastases_is_not_progression() -> None:
    """ "In keeping with metastases" describes the disease; it does not say it grew."""
    without = summarise(ON_LINE, today=TODAY)
    summary = summarise([*ON_LINE, _mri("Nodules in keeping with metastases from the sarcoma.")], today=TODAY)
    assert summary.progression == without.progression and summary.progression_noted == without.progression_noted


NED = "281900007"  # No abnormality detected: mCODE's "no evidence of disease"


@pytest.mark.parametrize(("day", "doubt"), [("2021-06-01", True), ("2020-12-31", False)])
def test_no_evidence_of_disease_after_a_metastasis_puts_the_extent_in_doubt(day: str, doubt: bool) -> None:
    """After a metastasectomy the metastasis Condition is often left active: which is current is not said."""
    records = [primary(snomed="443719001", onset="2020-01-01"), secondary("lung", onset="2021-01-01")]
    status = observation(
        "ned", concept(LOINC, "97509-4"), value={"valueCodeableConcept": concept(SNOMED, NED)}, date=day
    )
    summary = summarise([*records, status], today=TODAY)
    contradictions = [f for f in summary.findings if f.about == "extent" and f.kind.value == "contradiction"]
    assert bool(contradictions) is doubt
    assert not [f for f in summary.findings if "unrecognised disease status" in f.message]
