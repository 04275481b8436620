"""Diagnosis and histology (G1-G3)."""

from __future__ import annotations

from datetime import date

import pytest
from fhir_builders import ICD10, ICDO3, SNOMED, concept, condition, histology, primary, secondary, tnm

from cds_service.summary import summarise
from cds_service.summary.model import Diagnosis, FindingKind, Histology
from fhir_fixtures import resources as fhir

TODAY = date(2025, 1, 1)


def kinds(summary, about: str) -> set[FindingKind]:
    return {f.kind for f in summary.findings if f.about == about}


@pytest.mark.parametrize(
    "snomed,expected",
    [
        ("443719001", Histology.LEIOMYOSARCOMA),
        ("443439001", Histology.UPS),
        ("302851001", Histology.SYNOVIAL),
        ("403977003", Histology.ANGIOSARCOMA),
        ("404054005", Histology.PLEOMORPHIC_RMS),
    ],
)
def test_sts_from_snomed_disorder(snomed: str, expected: Histology) -> None:
    summary = summarise([primary(snomed=snomed)], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS
    assert summary.histology.value is expected
    assert summary.diagnosis.sources == ("Condition/primary",)


@pytest.mark.parametrize(
    "code,diagnosis,histology_value",
    [
        (concept(ICD10, "C49.A2"), Diagnosis.GIST, Histology.GIST),
        (concept(ICD10, "C46.1"), Diagnosis.OUT_OF_SCOPE_SARCOMA, Histology.KAPOSI),
        ({**concept(ICD10, "D48.1"), "text": "Desmoid tumour"}, Diagnosis.DESMOID, Histology.DESMOID),
        (concept(SNOMED, "420120006"), Diagnosis.GIST, Histology.GIST),
        (concept(SNOMED, "404051002"), Diagnosis.OUT_OF_SCOPE_SARCOMA, Histology.EMBRYONAL_RMS),
        (concept(SNOMED, "404053004"), Diagnosis.OUT_OF_SCOPE_SARCOMA, Histology.ALVEOLAR_RMS),
        ({"text": "Extraskeletal Ewing sarcoma"}, Diagnosis.OUT_OF_SCOPE_SARCOMA, Histology.EWING),
    ],
)
def test_out_of_scope_tumours(code, diagnosis: Diagnosis, histology_value: Histology) -> None:
    summary = summarise([condition("c", code)], today=TODAY)
    assert summary.diagnosis.value is diagnosis
    assert summary.histology.value is histology_value


DESMOID = {**concept(ICD10, "D48.1"), "text": "Desmoid-type fibromatosis, abdominal wall"}


def test_uncertain_behaviour_of_soft_tissue_names_no_tumour_type() -> None:
    """D48.1 codes desmoid and atypical lipomatous tumour alike: the morphology or the text decides."""
    assert summarise([condition("c", concept(ICD10, "D48.1"))], today=TODAY).diagnosis.value is Diagnosis.NONE
    alt = condition("c", concept(ICD10, "D48.1"), morphology=concept(ICDO3, "8850/1"))
    summary = summarise([alt], today=TODAY)
    assert summary.histology is not None and summary.histology.value is Histology.LIPOSARCOMA
    assert not [f for f in summary.findings if f.kind is FindingKind.CONTRADICTION]


@pytest.mark.parametrize(
    "icdo3,diagnosis",
    [
        ("8936/1", Diagnosis.GIST),
        ("8821/1", Diagnosis.DESMOID),
        ("9140/3", Diagnosis.OUT_OF_SCOPE_SARCOMA),
        ("8910/3", Diagnosis.OUT_OF_SCOPE_SARCOMA),
    ],
)
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


@pytest.mark.parametrize(("morphology", "histology"), [("9231/3", Histology.EMC), ("9220/3", None)])
def test_myxoid_chondrosarcoma_of_soft_tissue_is_extraskeletal_myxoid_chondrosarcoma(
    morphology: str, histology: Histology | None
) -> None:
    """ICD-O-3 9231/3 on a soft tissue sarcoma is EMC; chondrosarcoma NOS (9220/3) is not named."""
    summary = summarise([primary(icd10="C49.22", morphology=morphology)], today=TODAY)
    assert (summary.histology.value if summary.histology else None) is histology


@pytest.mark.parametrize(("linked", "histology"), [(True, Histology.LEIOMYOSARCOMA), (False, None)])
def test_a_sarcoma_without_subtype_is_typed_by_the_biopsy_of_its_linked_metastasis(
    linked: bool, histology: Histology | None
) -> None:
    """Excised elsewhere as "sarcoma"; the lung metastasis biopsy, linked to it, says leiomyosarcoma."""
    met = secondary("met", morphology=concept(ICDO3, "8890/3"))
    if linked:
        related = {"url": fhir.CONDITION_RELATED, "valueReference": {"reference": "Condition/primary"}}
        met["extension"] = [*met["extension"], related]
    summary = summarise([primary(icd10="C49.22"), met], today=TODAY)
    assert (summary.histology.value if summary.histology else None) is histology


def test_morphology_disagreeing_with_specific_code_is_a_contradiction() -> None:
    summary = summarise([primary(snomed="443719001", morphology="8850/3")], today=TODAY)
    assert summary.histology.value is Histology.LIPOSARCOMA
    assert FindingKind.CONTRADICTION in kinds(summary, "histology")


@pytest.mark.parametrize(
    "icdo3,detail",
    [("8852/3", "myxoid"), ("8851/3", "well-differentiated"), ("8854/3", "pleomorphic"), ("8853/3", "round-cell")],
)
def test_liposarcoma_subtypes(icdo3: str, detail: str) -> None:
    summary = summarise([primary(morphology=icdo3)], today=TODAY)
    assert summary.histology.value is Histology.LIPOSARCOMA and summary.histology_detail.value == detail


def test_histology_observation_types_a_generic_primary() -> None:
    summary = summarise([primary(icd10="C49.22"), histology("h", "8890/3", focus="Condition/primary")], today=TODAY)
    assert summary.histology.value is Histology.LEIOMYOSARCOMA
    assert "Observation/h" in summary.histology.sources


@pytest.mark.parametrize(
    "focus,histology_value",
    [(None, Histology.LEIOMYOSARCOMA), ("Condition/primary", Histology.LEIOMYOSARCOMA), ("Condition/other", None)],
)
def test_a_histology_record_types_the_primary_unless_it_is_about_another_condition(
    focus: str | None, histology_value: Histology | None
) -> None:
    summary = summarise([primary(icd10="C49.22"), histology("h", "8890/3", focus=focus)], today=TODAY)
    assert (summary.histology.value if summary.histology else None) is histology_value


@pytest.mark.parametrize(
    "code,diagnosis,contradiction",
    [
        # a code that names a sarcoma stands against a carcinosarcoma histology record
        (concept(SNOMED, "443719001"), Diagnosis.STS, True),
        (concept(ICD10, "C49.22"), Diagnosis.STS, True),
        # a sarcoma named only in words yields to it
        ({"text": "Leiomyosarcoma of the thigh"}, Diagnosis.OTHER_CANCER, False),
        ({"text": "Rhabdomyosarcoma, alveolar subtype"}, Diagnosis.OTHER_CANCER, False),
        ({"text": "Rhabdomyosarcoma of the thigh"}, Diagnosis.OTHER_CANCER, False),
        ({"text": "Sarcoma of the thigh"}, Diagnosis.OTHER_CANCER, False),
    ],
)
def test_a_carcinoma_histology_record_overrides_a_sarcoma_named_only_in_words(
    code: dict, diagnosis: Diagnosis, contradiction: bool
) -> None:
    carcinosarcoma = concept("http://terminology.hl7.org/CodeSystem/icd-o-3", "8980/3")
    summary = summarise([condition("primary", code, morphology=carcinosarcoma)], today=TODAY)
    assert summary.diagnosis.value is diagnosis
    assert (FindingKind.CONTRADICTION in kinds(summary, "histology")) is contradiction


@pytest.mark.parametrize(
    "text,histology_value",
    [
        ("Leiomyosarcoma of the thigh", Histology.LEIOMYOSARCOMA),
        ("Rhabdomyosarcoma, pleomorphic subtype", Histology.PLEOMORPHIC_RMS),
    ],
)
def test_a_histology_read_from_the_diagnosis_text_cites_the_condition(text: str, histology_value: Histology) -> None:
    summary = summarise([condition("primary", {"text": text})], today=TODAY)
    assert summary.histology.value is histology_value
    assert summary.histology.sources == ("Condition/primary",)
    assert summary.histology.basis.startswith("display text of Condition/primary")


def test_generic_sarcoma_reports_missing_histology() -> None:
    summary = summarise([primary(icd10="C49.22")], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS and summary.histology is None
    found = [(f.kind, f.message, f.sources) for f in summary.findings if f.about == "histology"]
    assert found == [(FindingKind.MISSING, "histological subtype not recorded", ("Condition/primary",))]


def test_rhabdomyosarcoma_without_subtype_is_ambiguous() -> None:
    summary = summarise([primary(snomed="302847003")], today=TODAY)
    assert summary.histology is None
    found = [(f.kind, f.message, f.sources) for f in summary.findings if f.about == "histology"]
    assert found == [
        (
            FindingKind.AMBIGUOUS,
            "rhabdomyosarcoma subtype not recorded (embryonal/alveolar are out of scope, G2)",
            ("Condition/primary",),
        )
    ]


@pytest.mark.parametrize(
    "clinical,verification", [("resolved", "confirmed"), ("active", "entered-in-error"), ("active", "refuted")]
)
def test_resolved_or_erroneous_primaries_do_not_count(clinical: str, verification: str) -> None:
    summary = summarise([primary(snomed="443719001", clinical=clinical, verification=verification)], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.NONE


@pytest.mark.parametrize("clinical", ["remission", "inactive"])
def test_primary_under_follow_up_counts_when_nothing_is_active(clinical: str) -> None:
    summary = summarise([primary(snomed="443719001", clinical=clinical)], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS
    assert FindingKind.INFO in kinds(summary, "diagnosis")


def test_a_sarcoma_in_remission_governs_beside_an_active_other_cancer_which_is_named() -> None:
    """Its follow-up still applies (r31a-07); the other cancer is named, not hidden."""
    summary = summarise(
        [primary(snomed="443719001", clinical="remission"), condition("breast", concept(SNOMED, "353431000119107"))],
        today=TODAY,
    )
    assert summary.diagnosis.value is Diagnosis.STS
    assert summary.other_primaries.value == (Diagnosis.OTHER_CANCER,)


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
    summary = summarise(
        [primary(snomed="443719001"), condition("breast", concept(SNOMED, "353431000119107"))], today=TODAY
    )
    assert summary.diagnosis.value is Diagnosis.STS
    assert FindingKind.INFO in kinds(summary, "diagnosis")


def test_an_sts_beside_a_small_gist_governs_and_the_gist_is_reported_beside_it() -> None:
    summary = summarise([primary(snomed="443719001"), condition("gist", concept(ICD10, "C49.A2"))], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS
    assert summary.histology.value is Histology.LEIOMYOSARCOMA
    assert summary.other_primaries.value == (Diagnosis.GIST,)
    assert summary.other_primaries.sources == ("Condition/gist",)
    assert summary.other_primaries.basis == "also present: gastrointestinal stromal tumour (Condition/gist)"
    assert FindingKind.AMBIGUOUS not in kinds(summary, "diagnosis")


def test_a_lone_gist_is_the_diagnosis_with_no_other_primary() -> None:
    summary = summarise([condition("gist", concept(ICD10, "C49.A2"))], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.GIST
    assert summary.other_primaries.value == ()


def test_every_other_kind_beside_an_sts_is_reported() -> None:
    summary = summarise(
        [
            primary(snomed="443719001"),
            condition("desmoid", DESMOID),
            condition("ks", concept(ICD10, "C46.1")),
            condition("breast", concept(SNOMED, "353431000119107")),
        ],
        today=TODAY,
    )
    assert summary.diagnosis.value is Diagnosis.STS
    assert summary.other_primaries.value == (Diagnosis.DESMOID, Diagnosis.OUT_OF_SCOPE_SARCOMA, Diagnosis.OTHER_CANCER)
    assert "kaposi sarcoma (Condition/ks)" in summary.other_primaries.basis


def test_without_an_sts_the_gist_governs_and_a_desmoid_is_reported_beside_it() -> None:
    summary = summarise([condition("gist", concept(ICD10, "C49.A2")), condition("desmoid", DESMOID)], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.GIST
    assert summary.other_primaries.value == (Diagnosis.DESMOID,)


def text_condition(text: str, code: dict | None = None, **kwargs) -> dict:
    """A cancer Condition known by its text (and optionally a code that does not name the histology)."""
    return condition("c", {**(code or {}), "text": text}, **kwargs)


@pytest.mark.parametrize(
    "text,diagnosis",
    [
        ("Leiomyosarcoma of uterus", Diagnosis.STS),
        ("Soft tissue sarcomas of thigh", Diagnosis.STS),
        ("Sarcomatoid mesothelioma", Diagnosis.OTHER_CANCER),
        ("Sarcomatoid renal cell carcinoma", Diagnosis.OTHER_CANCER),
        ("Carcinosarcoma of uterus", Diagnosis.OTHER_CANCER),
        ("Sarcoidosis", Diagnosis.NONE),
        ("Kaposiform haemangioendothelioma", Diagnosis.NONE),
        ("Kaposi varicelliform eruption", Diagnosis.NONE),  # eczema herpeticum
        ("Kaposi sarcoma-associated herpesvirus infection", Diagnosis.NONE),
        ("Pseudo-Kaposi sarcoma (acroangiodermatitis) of both shins", Diagnosis.NONE),
        ("Kaposi's sarcoma of skin", Diagnosis.OUT_OF_SCOPE_SARCOMA),
        ("PNET (Askin tumour) chest wall", Diagnosis.OUT_OF_SCOPE_SARCOMA),
    ],
)
def test_diagnosis_text_is_read_as_whole_words(text: str, diagnosis: Diagnosis) -> None:
    assert summarise([text_condition(text)], today=TODAY).diagnosis.value is diagnosis


@pytest.mark.parametrize(
    "text,diagnosis",
    [
        ("Sarcomatoid renal cell carcinoma", Diagnosis.OTHER_CANCER),
        ("Leiomyosarcoma of kidney", Diagnosis.STS),
    ],
)
def test_a_kidney_code_leaves_the_histology_to_the_text(text: str, diagnosis: Diagnosis) -> None:
    kidney = concept(ICD10, "C64.1")
    assert summarise([text_condition(text, kidney)], today=TODAY).diagnosis.value is diagnosis


def site_only(text: str) -> dict:
    """ICD-10-CM C49.22 (soft tissue of the left lower limb): a sarcoma, a site, no histology."""
    return text_condition(text, concept(ICD10, "C49.22"))


@pytest.mark.parametrize(
    "text,histology_value,detail",
    [
        ("Pleomorphic liposarcoma of left thigh", Histology.LIPOSARCOMA, "pleomorphic"),
        ("Leiomyosarcoma, left thigh", Histology.LEIOMYOSARCOMA, None),
        ("Liposarcoma", Histology.LIPOSARCOMA, None),
        ("Dedifferentiated liposarcoma", Histology.LIPOSARCOMA, "dedifferentiated"),
    ],
)
def test_a_site_only_sarcoma_code_leaves_the_histology_to_the_text(
    text: str, histology_value: Histology, detail: str | None
) -> None:
    summary = summarise([site_only(text)], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS
    assert summary.histology.value is histology_value
    assert (summary.histology_detail.value if summary.histology_detail else None) == detail
    assert "histology from the display text" in summary.histology.basis
    assert FindingKind.MISSING not in kinds(summary, "histology")


@pytest.mark.parametrize(
    "text,histology_value",
    [
        ("High-grade spindle cell sarcoma, left thigh; not liposarcoma (MDM2 negative)", Histology.SPINDLE_CELL),
        ("Sarcoma of the thigh, liposarcoma excluded", None),
        ("Sarcoma of the thigh, liposarcoma ruled out", None),
        ("?Liposarcoma vs UPS, left thigh", None),
        ("Liposarcoma versus undifferentiated pleomorphic sarcoma", None),
        ("Probable liposarcoma, left thigh", None),
        ("Sarcoma, differential liposarcoma", None),
        ("Leiomyosarcoma, left thigh; not liposarcoma", Histology.LEIOMYOSARCOMA),  # the stated one counts
        ("Liposarcoma, left thigh", Histology.LIPOSARCOMA),
    ],
)
def test_a_histology_the_text_negates_or_leaves_in_doubt_is_not_read(
    text: str, histology_value: Histology | None
) -> None:
    summary = summarise([site_only(text)], today=TODAY)
    assert (summary.histology.value if summary.histology else None) is histology_value


@pytest.mark.parametrize("text", ["Malignant neoplasm of left thigh", "Sarcomatoid carcinoma, left thigh"])
def test_a_site_only_sarcoma_code_with_text_naming_no_histology_leaves_it_unknown(text: str) -> None:
    summary = summarise([site_only(text)], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS
    assert summary.histology is None
    assert FindingKind.MISSING in kinds(summary, "histology")


def test_sarcomatoid_carcinoma_text_is_still_not_a_sarcoma() -> None:
    summary = summarise([text_condition("Sarcomatoid carcinoma of left thigh")], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.OTHER_CANCER


def test_a_histology_code_wins_over_contradicting_text() -> None:
    leiomyosarcoma = {**concept(SNOMED, "443719001"), "text": "Liposarcoma of left thigh"}
    summary = summarise([condition("c", leiomyosarcoma)], today=TODAY)
    assert summary.histology.value is Histology.LEIOMYOSARCOMA


def test_a_histology_record_wins_over_the_text_beside_a_site_only_code() -> None:
    resource = primary(icd10="C49.22", morphology="8890/3")
    resource["code"]["text"] = "Liposarcoma of left thigh"
    summary = summarise([resource], today=TODAY)
    assert summary.histology.value is Histology.LEIOMYOSARCOMA


def test_a_coded_non_sarcoma_histology_decides_before_the_text() -> None:
    resource = condition(
        "c",
        {**concept(ICD10, "C64.1"), "text": "Sarcoma of kidney"},
        morphology=concept("http://terminology.hl7.org/CodeSystem/icd-o-3", "8318/3"),
    )
    summary = summarise([resource], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.OTHER_CANCER
    assert "ICD-O-3 8318/3" in summary.diagnosis.basis


def test_a_sarcoma_code_with_a_carcinoma_histology_record_is_a_contradiction() -> None:
    summary = summarise([primary(icd10="C49.22", morphology="8980/3")], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS
    assert FindingKind.CONTRADICTION in kinds(summary, "histology")


@pytest.mark.parametrize("verification", ["provisional", "differential", "unconfirmed"])
def test_a_suspected_sarcoma_is_not_a_diagnosis(verification: str) -> None:
    summary = summarise([primary(snomed="443719001", verification=verification)], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.NONE
    assert FindingKind.INFO in kinds(summary, "diagnosis")


@pytest.mark.parametrize("verification", ["confirmed", None])
def test_a_confirmed_or_unverified_sarcoma_is_a_diagnosis(verification: str | None) -> None:
    summary = summarise([primary(snomed="443719001", verification=verification)], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS


def test_a_suspected_metastasis_puts_the_spread_in_doubt_without_counting() -> None:
    summary = summarise([primary(snomed="443719001"), secondary("met", verification="provisional")], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS
    assert summary.metastatic_organs is None or "lung" not in summary.metastatic_organs.value
    assert FindingKind.AMBIGUOUS in kinds(summary, "extent")
    assert FindingKind.AMBIGUOUS in kinds(summary, "stage")


@pytest.mark.parametrize("staged,doubt", [("2020-05-31", True), ("2020-06-01", False), ("2020-06-02", False)])
def test_a_suspected_metastasis_is_settled_by_an_m0_recorded_on_or_after_it(staged: str, doubt: bool) -> None:
    nodule = secondary("met", verification="unconfirmed", onset="2020-06-01")
    summary = summarise([primary(snomed="443719001"), nodule, tnm("m", "M0", date=staged)], today=TODAY)
    assert (FindingKind.AMBIGUOUS in kinds(summary, "extent")) is doubt
    assert summary.m.value == "M0" and (summary.metastatic_organs is None or not summary.metastatic_organs.value)


def test_a_suspected_metastasis_that_is_resolved_raises_no_doubt() -> None:
    summary = summarise(
        [primary(snomed="443719001"), secondary("met", verification="provisional", clinical="resolved")], today=TODAY
    )
    assert FindingKind.AMBIGUOUS not in kinds(summary, "extent")


LMS_TEXT = {"text": "History of leiomyosarcoma, s/p TAH 2015"}


def test_history_of_sarcoma_on_an_active_problem_is_no_active_sarcoma() -> None:
    summary = summarise([condition("lms", LMS_TEXT)], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.NONE
    assert any("past diagnosis" in f.message for f in summary.findings if f.about == "diagnosis")


def test_a_past_sarcoma_with_its_own_active_metastasis_governs() -> None:
    met = secondary("lung", onset="2024-06-01", of="Condition/lms")
    summary = summarise(
        [condition("lms", LMS_TEXT), met, condition("breast", concept(SNOMED, "353431000119107"))], today=TODAY
    )
    assert summary.diagnosis.value is Diagnosis.STS
    assert summary.m.value == "M1" and summary.metastatic_organs.value == ("lung",)
    assert summary.other_primaries.value == (Diagnosis.OTHER_CANCER,)
    assert summary.in_remission.value is True and "past diagnosis" in summary.in_remission.basis


def test_a_past_sarcoma_is_the_primary_of_an_unlinked_active_metastasis() -> None:
    summary = summarise([condition("lms", LMS_TEXT), secondary("lung", onset="2024-06-01")], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS and summary.m.value == "M1"


def test_a_past_sarcoma_gives_way_to_an_active_other_cancer() -> None:
    summary = summarise(
        [condition("lms", LMS_TEXT), condition("breast", concept(SNOMED, "353431000119107"))], today=TODAY
    )
    assert summary.diagnosis.value is Diagnosis.OTHER_CANCER


@pytest.mark.parametrize(
    "text",
    [
        "h/o leiomyosarcoma",
        "Leiomyosarcoma, s/p wide local excision in 2019",
        "Status post excision of leiomyosarcoma 2018",
        "Previous leiomyosarcoma",
        "Prior leiomyosarcoma",
        "Hx of leiomyosarcoma",
    ],
)
def test_past_wordings_make_an_active_problem_a_past_diagnosis(text: str) -> None:
    assert summarise([text_condition(text)], today=TODAY).diagnosis.value is Diagnosis.NONE


@pytest.mark.parametrize(
    "text",
    [
        "Leiomyosarcoma",
        "Leiomyosarcoma diagnosed on a previous biopsy",
        "Leiomyosarcoma, previously untreated",
        "Leiomyosarcoma prior to surgery",
        "Leiomyosarcoma, s/p neoadjuvant chemotherapy",
        "Leiomyosarcoma, s/p excision",
    ],
)
def test_present_wordings_stay_active_disease(text: str) -> None:
    summary = summarise([text_condition(text)], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS and summary.in_remission.value is False


def test_a_relapse_status_is_kept_whatever_the_text() -> None:
    summary = summarise([text_condition("History of leiomyosarcoma", clinical="relapse")], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS and summary.in_remission.value is False


@pytest.mark.parametrize("text", ["Leiomyosarcoma of thigh, resected in 2023", "Leiomyosarcoma, s/p TAH 2023"])
@pytest.mark.parametrize(
    "today,past",
    [
        (date(2024, 11, 30), False),  # 11 months after the end of 2023
        (date(2024, 12, 1), True),  # 12 months
        (date(2025, 1, 1), True),  # 13 months
    ],
)
def test_a_dated_treatment_is_past_once_its_year_ended_12_months_ago(text: str, today: date, past: bool) -> None:
    summary = summarise([text_condition(text, onset="2023-01-10")], today=today)
    assert (summary.diagnosis.value is Diagnosis.NONE) is past


def test_metastasis_without_primary_is_reported() -> None:
    summary = summarise([secondary("met")], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.NONE
    assert FindingKind.MISSING in kinds(summary, "diagnosis")


@pytest.mark.parametrize(
    "text",
    [
        "Probable leiomyosarcoma, biopsy pending",
        "Leiomyosarcoma, histology pending",
        "Suspected leiomyosarcoma of the thigh",
    ],
)
def test_a_diagnosis_text_that_says_it_is_not_confirmed_is_no_diagnosis(text: str) -> None:
    summary = summarise([condition("lms", {"text": text})], today=TODAY)
    assert summary.diagnosis.value is not Diagnosis.STS


def test_a_confirmed_diagnosis_text_is_a_diagnosis() -> None:
    summary = summarise([condition("lms", {"text": "Leiomyosarcoma of the thigh"})], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS


@pytest.mark.parametrize(
    "text,diagnosis,histology",
    [
        (
            "RMS left thigh, alveolar subtype (FOXO1 fusion)",
            Diagnosis.OUT_OF_SCOPE_SARCOMA,
            "alveolar-rhabdomyosarcoma",
        ),
        ("Rhabdomyosarcoma, embryonal type", Diagnosis.OUT_OF_SCOPE_SARCOMA, "embryonal-rhabdomyosarcoma"),
        ("RMS of the thigh, pleomorphic", Diagnosis.STS, "pleomorphic-rhabdomyosarcoma"),
        ("RMS of the thigh", Diagnosis.STS, None),  # subtype not written: rhabdomyosarcoma without subtype
    ],
)
def test_a_rhabdomyosarcoma_subtype_written_apart_from_its_name_is_read(text: str, diagnosis, histology) -> None:
    summary = summarise([text_condition(text)], today=TODAY)
    assert summary.diagnosis.value is diagnosis
    assert (summary.histology.value.value if summary.histology else None) == histology


UNLINKED = secondary("lung", onset="2024-06-01")
LINKED = secondary("lung", onset="2024-06-01", of="Condition/ups")


@pytest.mark.parametrize(
    "second,spread,in_doubt",
    [
        ({"snomed": "443719001"}, [UNLINKED], True),  # leiomyosarcoma beside the UPS: whose metastasis?
        ({"snomed": "443719001"}, [LINKED], False),  # the metastasis is the UPS's: the LMS is named apart
        ({"snomed": "443719001"}, [], False),  # no metastasis: each tumour its own review
        ({"snomed": "443439001"}, [UNLINKED], False),  # the same UPS recorded twice
        ({"icd10": "C49.12"}, [UNLINKED], False),  # a site-only code: no histology of its own to differ
    ],
)
def test_a_second_sarcoma_primary_of_another_histology_puts_the_histology_in_doubt(
    second: dict[str, str], spread: list[dict], in_doubt: bool
) -> None:
    first = primary("ups", snomed="443439001", onset="2024-01-01")
    summary = summarise([first, primary("other", onset="2024-03-01", **second), *spread], today=TODAY)
    assert (FindingKind.AMBIGUOUS in kinds(summary, "histology")) is in_doubt
    doubt = (
        "more than one sarcoma primary of different histology (leiomyosarcoma, undifferentiated pleomorphic sarcoma)"
    )
    assert any(f.message.startswith(doubt) for f in summary.findings) is in_doubt
    named_apart = second.get("snomed") == "443719001"  # another histology: another tumour, named
    assert (FindingKind.AMBIGUOUS in kinds(summary, "primary_tumours")) is named_apart


@pytest.mark.parametrize(
    "text,subtype_read",
    [("Rhabdomyosarcoma, alveolar subtype", True), ("Rhabdomyosarcoma, not alveolar subtype", False)],
)
def test_a_rhabdomyosarcoma_subtype_counts_only_where_the_text_states_it(text: str, subtype_read: bool) -> None:
    summary = summarise([site_only(text)], today=TODAY)
    assert (summary.histology is not None and summary.histology.value is Histology.ALVEOLAR_RMS) is subtype_read


def in_full(fact) -> tuple | None:
    return None if fact is None else (fact.value, fact.sources, fact.basis, fact.when)


EXTENSION = "ICD-O-3 8852/3 (liposarcoma) in the histology extension of Condition/primary"


def test_the_diagnosis_and_histology_in_full() -> None:
    summary = summarise([primary(morphology="8852/3", onset="2020-01-01")], today=TODAY)
    cited, onset = ("Condition/primary",), date(2020, 1, 1)
    assert in_full(summary.diagnosis) == (Diagnosis.STS, cited, EXTENSION, onset)
    assert in_full(summary.histology) == (Histology.LIPOSARCOMA, cited, EXTENSION, onset)
    assert in_full(summary.histology_detail) == ("myxoid", cited, EXTENSION, onset)
    assert in_full(summary.other_primaries) == ((), cited, "no other primary cancer", None)


def test_a_coded_rhabdomyosarcoma_without_subtype_says_so() -> None:
    summary = summarise([primary(snomed="302847003", onset="2020-01-01")], today=TODAY)
    assert summary.diagnosis.basis == "rhabdomyosarcoma without subtype in Condition/primary"


def test_a_carcinoma_histology_record_against_a_sarcoma_code_says_which_is_used() -> None:
    summary = summarise([primary(icd10="C49.22", morphology="8980/3")], today=TODAY)
    contradictions = [f.message for f in summary.findings if f.kind is FindingKind.CONTRADICTION]
    assert contradictions == [
        "the diagnosis names a sarcoma, the histology record a tumour that is not a sarcoma; the diagnosis is used"
    ]


def test_a_rhabdomyosarcoma_code_on_a_plain_condition_is_the_primary_with_its_subtype_missing() -> None:
    summary = summarise([condition("c", concept(SNOMED, "302847003"), onset="2020-01-01")], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS and summary.diagnosis.sources == ("Condition/c",)
    assert [f.kind for f in summary.findings if f.about == "histology"] == [FindingKind.AMBIGUOUS]


@pytest.mark.parametrize(
    ("resource", "histology"),
    [
        (primary(icd10="C55", morphology="8714/3"), Histology.PECOMA),
        (
            condition("p", {"text": "Malignant PEComa of uterus"}, profile="mcode-primary-cancer-condition"),
            Histology.PECOMA,
        ),
        (condition("p", {"text": "Malignant perivascular epithelioid cell tumour"}), Histology.PECOMA),
    ],
)
def test_malignant_pecoma_is_a_soft_tissue_sarcoma(resource: dict, histology: Histology) -> None:
    summary = summarise([resource], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS and summary.histology.value is histology


def test_a_pecoma_not_called_malignant_is_not_read_as_sarcoma() -> None:
    summary = summarise([condition("p", {"text": "PEComa of uterus"})], today=TODAY)
    assert summary.diagnosis.value is not Diagnosis.STS


@pytest.mark.parametrize(
    "text,site",
    [
        ("Leiomyosarcoma of inferior vena cava", "retroperitoneum"),
        ("Leiomyosarcoma of the IVC", "retroperitoneum"),
        ("Leiomyosarcoma of the right atrium", "visceral"),
        ("Uterine leiomyosarcoma", "visceral"),
        ("Leiomyosarcoma", None),  # no site named: the site stays unknown
    ],
)
def test_without_a_coded_site_the_site_the_diagnosis_names_is_read(text: str, site: str | None) -> None:
    condition = primary(snomed="443719001", onset="2020-01-01")
    condition["code"]["text"] = text
    fact = summarise([condition], today=TODAY).site
    assert (fact.value.value if fact else None) == site
    assert fact is None or fact.basis == "named in the diagnosis"


def test_a_coded_body_site_wins_over_the_site_the_diagnosis_names() -> None:
    condition = primary(snomed="443719001", body_site="61685007", onset="2020-01-01")  # lower limb
    condition["code"]["text"] = "Leiomyosarcoma of inferior vena cava"
    assert summarise([condition], today=TODAY).site.value.value == "extremity"


THIGH, ARM, UTERUS = "61685007", "53120007", "35039007"  # SNOMED lower limb, upper limb, uterine structure


def site(code: str, text: str | None = None) -> list[dict]:
    return [{**concept(SNOMED, code), **({"text": text} if text else {})}]


@pytest.mark.parametrize(
    ("second", "tumours"),
    [
        ({"bodySite": site(UTERUS)}, 2),  # another site class: another tumour
        ({"bodySite": site(ARM, "left upper arm")}, 2),  # the other side
        ({"bodySite": site(ARM)}, 1),  # an extremity, side not said: may be the same tumour
        ({"bodySite": site(THIGH, "right lower limb")}, 1),  # the same side and class: recorded twice
        ({}, 1),  # no coded site
        ({"bodySite": site(UTERUS), "clinical": "remission"}, 1),
        ({"bodySite": site(UTERUS), "verification": "provisional"}, 1),
    ],
)
def test_a_second_active_primary_at_another_site_is_named_for_its_own_review(
    second: dict[str, object], tumours: int
) -> None:
    first = primary("p1", snomed="443719001", onset="2024-01-01", bodySite=site(THIGH, "right thigh"))
    other = primary("p2", snomed="443719001", onset="2024-06-01", **second)
    summary = summarise([first, other], today=TODAY)
    assert summary.primary_tumours is not None and summary.primary_tumours.value == tumours
    assert (FindingKind.AMBIGUOUS in kinds(summary, "primary_tumours")) is (tumours > 1)


def test_a_recorded_subtype_these_guidelines_do_not_name_is_kept_by_its_recorded_name() -> None:
    coding = {"system": ICDO3, "code": "8931/3", "display": "Endometrial stromal sarcoma, low grade"}
    condition = primary(snomed="424413001", morphology="8931/3")
    condition["extension"][0]["valueCodeableConcept"]["coding"][0] = coding
    summary = summarise([condition], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.STS and summary.histology is None
    assert summary.histology_unnamed is not None
    assert summary.histology_unnamed.value == "Endometrial stromal sarcoma, low grade"
    assert FindingKind.MISSING in kinds(summary, "histology")


@pytest.mark.parametrize("morphology", [None, "8890/3"])
def test_no_recorded_subtype_or_a_named_one_leaves_no_unnamed_subtype(morphology: str | None) -> None:
    summary = summarise([primary(snomed="424413001", morphology=morphology)], today=TODAY)
    assert summary.histology_unnamed is None
    assert (summary.histology is not None) is (morphology is not None)


@pytest.mark.parametrize(
    ("morphology", "status", "detail"),
    [
        ("8858/3", "active", "dedifferentiated"),  # recurred dedifferentiated: the tumour's subtype now
        ("8858/3", "resolved", "well-differentiated"),  # a past recurrence re-excised: not the tumour now
        ("8890/3", "active", "well-differentiated"),  # another histology: not this tumour's subtype
        (None, "active", "well-differentiated"),
    ],
)
def test_a_local_recurrence_recorded_with_its_own_subtype_gives_the_tumour_its_subtype(
    morphology: str | None, status: str, detail: str
) -> None:
    first = primary(icd10="C48.0", morphology="8851/3", onset="2015-03-01")
    back = condition(
        "lr",
        concept(SNOMED, "25173007"),
        morphology=concept(ICDO3, morphology) if morphology else None,
        onset="2024-06-01",
        clinical=status,
    )
    summary = summarise([first, back], today=TODAY)
    assert summary.histology is not None and summary.histology.value is Histology.LIPOSARCOMA
    assert summary.histology_detail is not None and summary.histology_detail.value == detail


@pytest.mark.parametrize("site_only_id", ["a-site", "z-site"])  # sorted before, or after, the histology's record
def test_of_two_records_of_one_tumour_the_one_that_names_the_histology_is_the_index(site_only_id: str) -> None:
    """The same onset: the index does not depend on how the EHR or a FHIR server named the ids."""
    site_only = primary(site_only_id, icd10="C49.22", onset="2023-02-01")
    named = primary("m-ups", snomed="443439001", onset="2023-02-01")
    summary = summarise([site_only, named], today=TODAY)
    assert summary.histology.value is Histology.UPS
    assert summary.histology.sources[0] == "Condition/m-ups"


@pytest.mark.parametrize(("linked", "index"), [(True, "Condition/lms"), (False, "Condition/dfsp")])
def test_a_sarcoma_with_metastases_recorded_as_its_own_governs_over_an_older_one(linked: bool, index: str) -> None:
    """R5: an active sarcoma with its own metastases is not hidden by an older primary still on the list."""
    older = primary("dfsp", snomed="276799004", body_site="22943007", onset="2015-03-01")
    newer = primary("lms", snomed="443719001", body_site="35039007", onset="2023-06-01")
    lung = secondary("lung", onset="2024-06-01", of="Condition/lms" if linked else None)
    summary = summarise([older, newer, lung], today=TODAY)
    assert summary.histology.sources[0] == index
