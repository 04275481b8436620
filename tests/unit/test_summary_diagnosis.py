"""Diagnosis and histology (clinical.md 3.2-3.5, G1-G3)."""

from __future__ import annotations

from datetime import date

import pytest
from fhir_builders import ICD10, SNOMED, concept, condition, histology, primary, secondary

from cds_service.summary import summarise
from cds_service.summary.model import Diagnosis, FindingKind, Histology

TODAY = date(2025, 1, 1)


def kinds(summary, about: str) -> set[FindingKind]:
    return {f.kind for f in summary.findings if f.about == about}


@pytest.mark.parametrize("snomed,expected", [
    ("443719001", Histology.LEIOMYOSARCOMA),
    ("443439001", Histology.UPS),
    ("302851001", Histology.SYNOVIAL),
    ("403977003", Histology.ANGIOSARCOMA),
    ("404054005", Histology.PLEOMORPHIC_RMS),
])
def test_sts_from_snomed_disorder(snomed: str, expected: Histology) -> None:
    summary = summarise([primary(snomed=snomed)], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS
    assert summary.histology.value is expected
    assert summary.diagnosis.sources == ("Condition/primary",)


@pytest.mark.parametrize("code,diagnosis,histology_value", [
    (concept(ICD10, "C49.A2"), Diagnosis.GIST, Histology.GIST),
    (concept(ICD10, "C46.1"), Diagnosis.OUT_OF_SCOPE_SARCOMA, Histology.KAPOSI),
    (concept(ICD10, "D48.1"), Diagnosis.DESMOID, Histology.DESMOID),
    (concept(SNOMED, "420120006"), Diagnosis.GIST, Histology.GIST),
    (concept(SNOMED, "404051002"), Diagnosis.OUT_OF_SCOPE_SARCOMA, Histology.EMBRYONAL_RMS),
    (concept(SNOMED, "404053004"), Diagnosis.OUT_OF_SCOPE_SARCOMA, Histology.ALVEOLAR_RMS),
    ({"text": "Extraskeletal Ewing sarcoma"}, Diagnosis.OUT_OF_SCOPE_SARCOMA, Histology.EWING),
])
def test_out_of_scope_tumours(code, diagnosis: Diagnosis, histology_value: Histology) -> None:
    summary = summarise([condition("c", code)], today=TODAY)
    assert summary.diagnosis.value is diagnosis
    assert summary.histology.value is histology_value


@pytest.mark.parametrize("icdo3,diagnosis", [("8936/1", Diagnosis.GIST), ("8821/1", Diagnosis.DESMOID),
                                             ("9140/3", Diagnosis.OUT_OF_SCOPE_SARCOMA),
                                             ("8910/3", Diagnosis.OUT_OF_SCOPE_SARCOMA)])
def test_morphology_decides_guideline(icdo3: str, diagnosis: Diagnosis) -> None:
    summary = summarise([primary(icd10="C49.22", morphology=icdo3)], today=TODAY)
    assert summary.diagnosis.value is diagnosis


def test_morphology_wins_over_generic_condition_code() -> None:
    summary = summarise([primary(snomed="424952003", morphology="8858/3")], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS
    assert summary.histology.value is Histology.LIPOSARCOMA
    assert summary.histology_detail.value == "dedifferentiated"
    assert "ICD-O-3 8858/3" in summary.histology.basis
    assert FindingKind.CONTRADICTION not in kinds(summary, "histology")


def test_morphology_disagreeing_with_specific_code_is_a_contradiction() -> None:
    summary = summarise([primary(snomed="443719001", morphology="8850/3")], today=TODAY)
    assert summary.histology.value is Histology.LIPOSARCOMA
    assert FindingKind.CONTRADICTION in kinds(summary, "histology")


@pytest.mark.parametrize("icdo3,detail", [("8852/3", "myxoid"), ("8851/3", "well-differentiated"),
                                          ("8854/3", "pleomorphic"), ("8853/3", "round-cell")])
def test_liposarcoma_subtypes(icdo3: str, detail: str) -> None:
    summary = summarise([primary(morphology=icdo3)], today=TODAY)
    assert summary.histology.value is Histology.LIPOSARCOMA and summary.histology_detail.value == detail


def test_histology_observation_types_a_generic_primary() -> None:
    summary = summarise([primary(icd10="C49.22"), histology("h", "8890/3", focus="Condition/primary")],
                        today=TODAY)
    assert summary.histology.value is Histology.LEIOMYOSARCOMA
    assert "Observation/h" in summary.histology.sources


def test_generic_sarcoma_reports_missing_histology() -> None:
    summary = summarise([primary(icd10="C49.22")], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS and summary.histology is None
    assert FindingKind.MISSING in kinds(summary, "histology")


def test_rhabdomyosarcoma_without_subtype_is_ambiguous() -> None:
    summary = summarise([primary(snomed="302847003")], today=TODAY)
    assert summary.histology is None
    assert FindingKind.AMBIGUOUS in kinds(summary, "histology")


@pytest.mark.parametrize("clinical,verification", [("resolved", "confirmed"), ("active", "entered-in-error"),
                                                   ("active", "refuted")])
def test_resolved_or_erroneous_primaries_do_not_count(clinical: str, verification: str) -> None:
    summary = summarise([primary(snomed="443719001", clinical=clinical, verification=verification)], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.NONE


@pytest.mark.parametrize("clinical", ["remission", "inactive"])
def test_primary_under_follow_up_counts_when_nothing_is_active(clinical: str) -> None:
    summary = summarise([primary(snomed="443719001", clinical=clinical)], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS
    assert FindingKind.INFO in kinds(summary, "diagnosis")


def test_active_other_cancer_governs_over_sarcoma_in_remission() -> None:
    summary = summarise([primary(snomed="443719001", clinical="remission"),
                         condition("breast", concept(SNOMED, "353431000119107"))], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.OTHER_CANCER


def test_missing_clinical_status_counts_as_active() -> None:
    assert summarise([primary(snomed="443719001", clinical=None)], today=TODAY).diagnosis.value is Diagnosis.STS


def test_primary_in_remission_counts_when_metastases_are_active() -> None:
    summary = summarise([primary(snomed="443719001", clinical="remission"), secondary("met")], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS
    assert FindingKind.INFO in kinds(summary, "diagnosis")


def test_other_cancer_is_not_sts() -> None:
    summary = summarise([condition("lung", concept(SNOMED, "254637007"))], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.OTHER_CANCER


def test_non_cancer_conditions_are_ignored() -> None:
    summary = summarise([condition("htn", concept(SNOMED, "38341003", "Hypertensive disorder"))], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.NONE


def test_sts_governs_over_an_unrelated_other_cancer() -> None:
    summary = summarise([primary(snomed="443719001"), condition("breast", concept(SNOMED, "353431000119107"))],
                        today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS
    assert FindingKind.INFO in kinds(summary, "diagnosis")


def test_gist_and_sts_together_are_ambiguous_and_gist_governs() -> None:
    summary = summarise([primary(snomed="443719001"), condition("gist", concept(ICD10, "C49.A2"))], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.GIST
    assert FindingKind.AMBIGUOUS in kinds(summary, "diagnosis")


def test_metastasis_without_primary_is_reported() -> None:
    summary = summarise([secondary("met")], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.NONE
    assert FindingKind.MISSING in kinds(summary, "diagnosis")
