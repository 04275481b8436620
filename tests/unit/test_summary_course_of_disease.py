"""Records whose course is easy to misread: another cancer's metastases, distant lymph nodes, a resected
primary, therapy whose setting cannot be told, and stages at sites without AJCC 8 groups.

Each case here once produced a wrong card (a first-line card after first-line therapy, stage IV for a
stage IA sarcoma) or no card at all.
"""

from __future__ import annotations

from datetime import date

import pytest
from fhir_builders import (
    ICD10,
    SNOMED,
    concept,
    condition,
    grade,
    med_statement,
    primary,
    rxnorm,
    secondary,
    stage_group,
    tnm,
)

from cds_service.summary import summarise
from cds_service.summary.model import Diagnosis, Extent, FindingKind, StageGroup

TODAY = date(2026, 3, 1)
THIGH = "61685007"
DOXORUBICIN = rxnorm("3639", "doxorubicin")
RELATED = "http://hl7.org/fhir/StructureDefinition/condition-related"


def sarcoma(**kwargs):
    return primary("lms", morphology="8890/3", body_site=THIGH, onset="2024-01-10", **kwargs)


def linked_to(ref: str) -> dict:
    return {"extension": [{"url": RELATED, "valueReference": {"reference": ref}}]}


def kinds(summary, about: str) -> set[FindingKind]:
    return {f.kind for f in summary.findings if f.about == about}


def test_metastases_of_another_primary_do_not_stage_the_sarcoma():
    breast = condition("breast", concept(SNOMED, "353431000119107"), profile="mcode-primary-cancer-condition")
    bone = secondary("bone", snomed="94222008", onset="2025-01-10", **linked_to("Condition/breast"))
    summary = summarise(
        [sarcoma(), breast, bone, tnm("t", "T1"), tnm("n", "N0"), tnm("m", "M0"), grade("g", "G1")], today=TODAY
    )
    assert summary.stage.value is StageGroup.IA
    assert summary.extent.value is Extent.NONE


def test_an_unlinked_metastasis_with_two_primaries_is_ambiguous():
    breast = condition("breast", concept(SNOMED, "353431000119107"), profile="mcode-primary-cancer-condition")
    summary = summarise([sarcoma(), breast, secondary("bone", snomed="94222008", onset="2025-01-10")], today=TODAY)
    assert FindingKind.AMBIGUOUS in kinds(summary, "extent")


def test_distant_lymph_nodes_are_an_organ_and_regional_ones_are_n1():
    distant = summarise(
        [sarcoma(), secondary("chest-nodes", snomed=None, icd10="C77.1", onset="2025-03-01")], today=TODAY
    )
    assert distant.m.value == "M1" and distant.metastatic_organs.value == ("lymph-nodes",)
    regional = summarise(
        [
            sarcoma(),
            secondary("groin-nodes", snomed=None, icd10="C77.4", onset="2025-03-01"),
            tnm("m", "M0", date="2025-03-01"),
        ],
        today=TODAY,
    )
    assert regional.n.value == "N1" and regional.extent.value is Extent.NODAL


def test_a_resected_primary_still_governs_its_active_metastases():
    summary = summarise([sarcoma(clinical="resolved"), secondary("lung", onset="2025-01-10")], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS
    assert summary.extent.value is Extent.LUNG_ONLY


def test_an_m0_recorded_after_a_metastasis_leaves_the_extent_in_doubt():
    summary = summarise(
        [sarcoma(), secondary("lung", onset="2025-01-10"), tnm("m", "M0", date="2025-10-01")], today=TODAY
    )
    assert FindingKind.CONTRADICTION in kinds(summary, "extent")


def test_unknown_nodes_read_as_n0_as_ajcc_8_says():
    summary = summarise([sarcoma(), tnm("t", "T2"), tnm("m", "M0"), grade("g", "G3")], today=TODAY)
    assert summary.n.value == "N0" and "AJCC 8" in summary.n.basis and "none or unknown" in summary.n.basis
    assert summary.stage.value is StageGroup.IIIA


def test_a_course_still_running_when_metastases_appear_is_a_line_for_advanced_disease():
    summary = summarise(
        [
            sarcoma(),
            secondary("lung", onset="2025-01-16"),
            med_statement("dox", DOXORUBICIN, start="2025-01-02", end="2025-05-01"),
        ],
        today=TODAY,
    )
    assert summary.lines_of_therapy.value == 1


def test_therapy_whose_setting_cannot_be_told_leaves_the_line_count_incomplete():
    undated = med_statement("dox", DOXORUBICIN)
    del undated["effectiveDateTime"]
    summary = summarise([sarcoma(), secondary("lung", onset="2025-01-10"), undated], today=TODAY)
    assert FindingKind.INCOMPLETE in kinds(summary, "lines_of_therapy")
    undated_metastasis = summarise(
        [
            sarcoma(),
            secondary("lung", onset=None),
            tnm("m", "M1", date=None),
            med_statement("dox", DOXORUBICIN, start="2025-02-01"),
        ],
        today=TODAY,
    )
    assert FindingKind.INCOMPLETE in kinds(undated_metastasis, "lines_of_therapy")


def test_a_recorded_stage_is_not_used_where_ajcc_8_has_no_stage_group():
    uterus = primary("lms", icd10="C54.1", morphology="8890/3", onset="2024-01-10")
    summary = summarise([uterus, stage_group("sg", "II")], today=TODAY)
    assert summary.stage is None and summary.stage_recorded.value == "II"


def test_a_medication_known_only_by_reference_is_read_by_its_name_or_leaves_therapy_incomplete():
    named = med_statement("dox", {"text": "x"}, start="2025-02-01")
    del named["medicationCodeableConcept"]
    named["medicationReference"] = {"reference": "Medication/m1", "display": "DOXOrubicin 2 MG/ML Injection"}
    summary = summarise([sarcoma(), secondary("lung", onset="2025-01-10"), named], today=TODAY)
    assert "doxorubicin" in summary.prior_drugs.value and summary.lines_of_therapy.value == 1
    anonymous = dict(named, medicationReference={"reference": "Medication/m1"})
    summary = summarise([sarcoma(), secondary("lung", onset="2025-01-10"), anonymous], today=TODAY)
    assert FindingKind.INCOMPLETE in kinds(summary, "lines_of_therapy")
    assert FindingKind.INCOMPLETE in kinds(summary, "prior_drugs")


def test_an_sts_with_its_own_metastases_is_staged_beside_a_small_gist():
    gist = condition("gist", concept(ICD10, "C49.A2"), onset="2025-02-01")
    lung = secondary("lung", onset="2025-01-10", of="Condition/lms")
    summary = summarise([sarcoma(), gist, lung], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS
    assert summary.other_primaries.value == (Diagnosis.GIST,)
    assert summary.m.value == "M1" and summary.extent.value is Extent.LUNG_ONLY


def test_an_unlinked_metastasis_beside_an_sts_and_a_gist_leaves_the_extent_in_doubt():
    gist = condition("gist", concept(ICD10, "C49.A2"), onset="2025-02-01")
    summary = summarise([sarcoma(), gist, secondary("liver", snomed="94381002", onset="2025-03-01")], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS
    assert FindingKind.AMBIGUOUS in kinds(summary, "extent")


def test_a_resected_sarcoma_whose_metastases_are_active_is_not_hidden_by_another_active_cancer():
    breast = condition("breast", concept(SNOMED, "353431000119107"), profile="mcode-primary-cancer-condition")
    lung = secondary("lung", onset="2025-01-10", of="Condition/lms")
    summary = summarise([sarcoma(clinical="resolved"), breast, lung], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS
    assert summary.other_primaries.value == (Diagnosis.OTHER_CANCER,)
    assert summary.extent.value is Extent.LUNG_ONLY


@pytest.mark.parametrize(("sarcoma_status", "governs"), [("remission", True), ("resolved", False)])
def test_a_sarcoma_in_remission_is_not_hidden_by_a_new_active_cancer_of_another_kind(
    sarcoma_status: str, governs: bool
) -> None:
    """Follow-up of the sarcoma still applies; a resolved one with no active disease is history."""
    lung = condition(
        "nsclc", concept(SNOMED, "254637007"), onset="2026-02-01", profile="mcode-primary-cancer-condition"
    )
    summary = summarise([sarcoma(clinical=sarcoma_status), lung], today=TODAY)
    assert (summary.diagnosis.value is Diagnosis.STS) is governs
    if governs:
        assert summary.in_remission.value is True
        assert summary.other_primaries.value == (Diagnosis.OTHER_CANCER,)


def test_a_text_only_problem_naming_the_tumour_as_recurrent_is_a_local_recurrence():
    text_only = {"text": "Recurrent leiomyosarcoma right thigh, second recurrence"}
    summary = summarise([sarcoma(), condition("rec", text_only, onset="2025-11-01")], today=TODAY)
    assert summary.local_recurrence.value is True and summary.local_recurrence.sources == ("Condition/rec",)


@pytest.mark.parametrize(
    ("primary_site", "recurrence_site", "local"),
    [
        (THIGH, "82849001", False),  # thigh primary "recurrent" in the retroperitoneum: spread
        (THIGH, THIGH, True),
        ("82849001", "82849001", True),  # a retroperitoneal primary recurs there locally
        ("82849001", THIGH, False),
    ],
)
def test_a_tumour_recurrent_in_another_body_region_than_its_primary_has_spread(
    primary_site: str, recurrence_site: str, local: bool
) -> None:
    text = {"text": "Recurrent leiomyosarcoma"}
    recurrence = condition("rec", text, onset="2025-11-01", body_site=[concept(SNOMED, recurrence_site)])
    summary = summarise([sarcoma(bodySite=[concept(SNOMED, primary_site)]), recurrence], today=TODAY)
    assert summary.local_recurrence.value is local
    assert (summary.m is not None and summary.m.value == "M1") is not local
    assert (summary.extent is not None and summary.extent.value is Extent.LIMITED) is not local


def test_a_limb_tumour_recurrent_in_the_trunk_wall_is_local_or_distant_in_doubt() -> None:
    """The groin, or a chest-wall metastasis: the site classes cannot tell; the record must."""
    text = {"text": "Recurrent leiomyosarcoma"}
    recurrence = condition("rec", text, onset="2025-11-01", body_site=[concept(SNOMED, "22943007")])
    summary = summarise([sarcoma(), recurrence], today=TODAY)
    assert summary.local_recurrence is None or summary.local_recurrence.value is False
    assert FindingKind.AMBIGUOUS in kinds(summary, "local_recurrence")
    assert FindingKind.AMBIGUOUS in kinds(summary, "extent")


@pytest.mark.parametrize(("side", "local"), [("left", False), ("right", True), (None, True)])
def test_a_limb_tumour_recurrent_in_the_other_limb_has_spread(side: str | None, local: bool) -> None:
    """Right thigh primary; the recurrence in the left thigh is distant, on the same or an unrecorded side local."""
    site = {**concept(SNOMED, THIGH), "text": f"{side} thigh" if side else "thigh"}
    recurrence = condition("rec", {"text": "Recurrent leiomyosarcoma"}, onset="2025-11-01", body_site=[site])
    primary_site = {**concept(SNOMED, THIGH), "text": "right thigh"}
    summary = summarise([sarcoma(bodySite=[primary_site]), recurrence], today=TODAY)
    assert summary.local_recurrence.value is local
    assert (summary.m is not None and summary.m.value == "M1") is not local


def test_a_recurrent_problem_that_does_not_name_the_tumour_is_not_a_recurrence():
    other = {"text": "Recurrent urinary tract infection"}
    summary = summarise([sarcoma(), condition("uti", other, onset="2025-11-01")], today=TODAY)
    assert summary.local_recurrence.value is False


def test_a_recurrence_that_is_the_only_record_of_the_tumour_stands_for_the_primary():
    only = condition("rec", {"text": "LMS right thigh, locally recurrent after two excisions"}, onset="2025-11-01")
    summary = summarise([only], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS and summary.histology.value.value == "leiomyosarcoma"
    assert summary.local_recurrence.value is True and summary.local_recurrence.sources == ("Condition/rec",)


def test_a_coded_record_of_the_recurrence_beside_the_primary_is_its_local_recurrence():
    coded = condition("rec", {**concept(SNOMED, "276799004"), "text": "Recurrence of DFSP at scar"}, onset="2025-12-01")
    dfsp = primary("dfsp", snomed="276799004", onset="2020-01-01")
    summary = summarise([dfsp, coded], today=TODAY)
    assert summary.local_recurrence.value is True and summary.local_recurrence.sources == ("Condition/rec",)
    assert summary.other_primaries is None or not summary.other_primaries.value


def test_a_local_recurrence_beside_a_resolved_primary_brings_the_primary_back():
    resolved = sarcoma(clinicalStatus=concept("http://terminology.hl7.org/CodeSystem/condition-clinical", "resolved"))
    recurrence = condition("rec", concept(SNOMED, "25173007", "Recurrent tumor"), onset="2025-11-01")
    summary = summarise([resolved, recurrence], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS and summary.local_recurrence.value is True
    assert summarise([resolved], today=TODAY).diagnosis.value is Diagnosis.NONE
