"""Phase of care from Procedures (R2): resection of the primary, its margin, radiotherapy, and what the
cards make of them (S04, S05-S10, S12, S13)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from fhir_builders import (
    ICD10,
    LOINC,
    MCODE,
    SNOMED,
    concept,
    condition,
    disease_status,
    ecog,
    excision,
    margin,
    med_statement,
    notes,
    observation,
    primary,
    radiotherapy,
    rxnorm,
    secondary,
    stage_group,
    tnm,
)

from cds_service.knowledge import KnowledgeBase, load_knowledge, match
from cds_service.summary import summarise
from cds_service.summary.model import FindingKind, PatientSummary

TODAY = date(2025, 1, 1)
PRIMARY = primary(snomed="443719001", body_site="61685007", onset="2020-01-01")
RESECTION = excision("wle", performed="2020-03-01", reason="Condition/primary")
CARDS = Path(__file__).resolve().parents[2] / "cards"


def summary_of(*resources, **kwargs) -> PatientSummary:
    return summarise([PRIMARY, *resources], today=TODAY, **kwargs)


def kinds(summary: PatientSummary, about: str) -> set[FindingKind]:
    return {f.kind for f in summary.findings if f.about == about}


def test_a_completed_excision_of_the_primary_is_a_resection() -> None:
    summary = summary_of(RESECTION)
    assert summary.primary_resected.value is True and summary.primary_resected.sources == ("Procedure/wle",)
    assert summary.primary_resected.when == date(2020, 3, 1)


def test_no_procedure_recorded_reads_as_not_resected() -> None:
    summary = summary_of()
    assert summary.primary_resected.value is False and summary.radiotherapy_given.value is False
    assert summary.resection_margin is None


@pytest.mark.parametrize("status", ["not-done", "entered-in-error", "in-progress", "preparation", "stopped"])
def test_a_procedure_not_completed_is_no_resection(status: str) -> None:
    assert summary_of(excision("wle", reason="Condition/primary", status=status)).primary_resected.value is False


def test_a_biopsy_is_no_resection() -> None:
    biopsy = excision("bx", reason="Condition/primary", code=concept(SNOMED, "86273004", "Biopsy (procedure)"))
    core = excision("core", reason="Condition/primary", code={"text": "Core needle biopsy of thigh mass"})
    assert summary_of(biopsy, core).primary_resected.value is False


def test_a_resection_named_in_text_only_is_read() -> None:
    text_only = excision("amp", reason="Condition/primary", code={"text": "Above-knee amputation, left"})
    assert summary_of(text_only).primary_resected.value is True


def test_a_metastasectomy_is_not_a_resection_of_the_primary() -> None:
    summary = summary_of(
        secondary("lung", onset="2021-01-01"), excision("wedge", performed="2021-02-01", reason="Condition/lung")
    )
    assert summary.primary_resected.value is False
    assert FindingKind.INFO in kinds(summary, "primary_resected")


def test_an_unlinked_excision_counts_only_when_the_record_shows_it_is_cancer_surgery() -> None:
    profiled = excision("wle", meta={"profile": [MCODE + "mcode-cancer-related-surgical-procedure"]})
    named = excision("wle2", code={"text": "Wide excision of thigh sarcoma"})
    anonymous = excision("skin", code=concept(SNOMED, "65801008", "Excision (procedure)"))
    assert summary_of(profiled).primary_resected.value is True
    assert summary_of(named).primary_resected.value is True
    summary = summary_of(anonymous)
    assert summary.primary_resected.value is False and FindingKind.INFO in kinds(summary, "primary_resected")


def test_an_unlinked_excision_beside_another_primary_is_not_read_as_the_sarcomas() -> None:
    breast = condition("breast", concept(ICD10, "C50.911"), onset="2019-01-01")
    named = excision("wle", code={"text": "Wide excision of tumour"})
    assert summary_of(breast, named).primary_resected.value is False


def test_a_local_recurrence_after_the_last_resection_leaves_the_tumour_unresected() -> None:
    recurrence = condition("rec", concept(SNOMED, "25173007"), onset="2022-05-01")
    summary = summary_of(RESECTION, recurrence)
    assert summary.primary_resected.value is False and "local recurrence" in summary.primary_resected.basis
    re_excised = excision("re", performed="2022-06-01", reason="Condition/rec")
    assert summary_of(RESECTION, recurrence, re_excised).primary_resected.value is True


def test_a_relapse_of_unrecorded_site_after_resection_leaves_resection_status_unknown() -> None:
    relapsed = primary(snomed="443719001", body_site="61685007", onset="2020-01-01", clinical="recurrence")
    summary = summarise([relapsed, RESECTION], today=TODAY)
    assert summary.primary_resected is None
    assert FindingKind.AMBIGUOUS in kinds(summary, "primary_resected")


def test_procedures_the_ehr_could_not_provide_leave_the_phase_of_care_unknown() -> None:
    summary = summary_of(RESECTION, unavailable={"Procedure": "its query answered with an error"})
    assert summary.primary_resected is None and summary.radiotherapy_given is None
    assert FindingKind.INCOMPLETE in kinds(summary, "primary_resected")
    assert [(f.kind, f.message) for f in summary.findings if f.about == "Procedure"] == [
        (FindingKind.MISSING, "The EHR could not provide the patient's procedures: its query answered with an error.")
    ]


def test_a_completed_procedure_dated_in_the_future_is_ignored() -> None:
    summary = summary_of(excision("wle", performed="2025-06-01", reason="Condition/primary"))
    assert summary.primary_resected.value is False and FindingKind.INVALID in kinds(summary, "primary_resected")
    (invalid,) = [f for f in summary.findings if f.kind is FindingKind.INVALID]
    assert (invalid.message, invalid.sources) == (
        "completed procedure dated in the future; ignored",
        ("Procedure/wle",),
    )


@pytest.mark.parametrize(
    "reason,resected",
    [
        (concept(SNOMED, "443719001"), True),  # the leiomyosarcoma itself
        (concept(SNOMED, "25173007"), True),  # its local recurrence
        ({"text": "Leiomyosarcoma of the thigh"}, True),
        (concept(SNOMED, "22298006"), True),  # names no cancer: the tumour in the procedure's text decides
        (concept(ICD10, "C78.01"), False),  # a lung metastasis
        (concept(ICD10, "C50.911"), False),  # another cancer
        ({"text": "Breast carcinoma"}, False),
    ],
)
def test_the_reason_coded_on_an_excision_of_a_tumour_says_whether_it_removed_the_primary(
    reason: dict, resected: bool
) -> None:
    surgery = excision("wle", code={"text": "Wide excision of tumour"}, reasonCode=[reason])
    assert summary_of(surgery).primary_resected.value is resected


def test_margin_from_the_resection_outcome() -> None:
    outcome = dict(RESECTION, outcome=concept(SNOMED, "278271003", "Residual tumor stage R1"))
    summary = summary_of(outcome)
    assert summary.resection_margin.value == "R1" and summary.resection_margin.sources == ("Procedure/wle",)


def test_margin_from_a_residual_tumour_observation_after_the_resection() -> None:
    assert summary_of(RESECTION, margin("r", "R0", date="2020-03-05")).resection_margin.value == "R0"
    assert summary_of(RESECTION, margin("r", "R2", date="2020-03-01")).resection_margin.value == "R2"
    assert summary_of(RESECTION, margin("old", "R1", date="2020-02-28")).resection_margin is None


@pytest.mark.parametrize(
    "performed,observed,margin_value,basis",
    [
        ("2020-03-01", "2020-03-05", "R1", "R1 recorded on 2020-03-05"),
        ("2020-03-01", None, "R1", "R1 recorded (undated)"),
        (None, "2020-03-05", "R1", "R1 recorded on 2020-03-05"),
        (None, None, "R1", "R1 recorded (undated)"),
        ("2020-03-01", "2020-02-29", None, None),
    ],
)
def test_a_margin_observation_is_read_unless_it_is_dated_before_the_resection(
    performed: str | None, observed: str | None, margin_value: str | None, basis: str | None
) -> None:
    resection = excision("wle", performed=performed, reason="Condition/primary")
    found = summary_of(resection, margin("r", "R1", date=observed)).resection_margin
    read = (found.value, found.basis, found.sources) if found else None
    assert read == ((margin_value, basis, ("Observation/r",)) if margin_value else None)


def test_margin_as_the_r_category_in_its_own_code_system() -> None:
    uicc = dict(RESECTION, outcome={"coding": [{"system": "http://example.org/uicc-tnm", "code": "R1"}]})
    assert summary_of(uicc).resection_margin.value == "R1"


def test_no_margin_without_a_resection() -> None:
    assert summary_of(margin("r", "R1", date="2020-03-05")).resection_margin is None


def test_radiotherapy_to_the_primary() -> None:
    summary = summary_of(radiotherapy("rt", reason="Condition/primary"))
    assert summary.radiotherapy_given.value is True and summary.radiotherapy_given.when == date(2020, 2, 10)
    assert summary.radiotherapy_given.basis == "radiotherapy to the primary recorded on 2020-01-10 to 2020-02-10"


def test_a_procedure_filed_under_the_radiotherapy_category_is_radiotherapy() -> None:
    course = radiotherapy("rt", reason="Condition/primary", code={"text": "Course 1, left thigh"})
    assert summary_of(course).radiotherapy_given.value is False
    filed = dict(course, category=concept(SNOMED, "108290001"))
    assert summary_of(filed).radiotherapy_given.value is True


def test_an_mcode_radiotherapy_course_summary_is_radiotherapy() -> None:
    course = excision(
        "course",
        performed=None,
        performedPeriod={"start": "2020-01-10", "end": "2020-02-10"},
        code=concept(SNOMED, "1217123003"),
        meta={"profile": [MCODE + "mcode-radiotherapy-course-summary"]},
    )
    assert summary_of(course).radiotherapy_given.value is True


def test_radiotherapy_planning_is_not_radiotherapy_given() -> None:
    planning = radiotherapy("sim", reason="Condition/primary", code={"text": "Radiotherapy planning CT"})
    assert summary_of(planning).radiotherapy_given.value is False


def test_radiotherapy_to_a_metastasis_is_not_radiotherapy_of_the_primary() -> None:
    summary = summary_of(
        secondary("bone", snomed="94222008", onset="2021-01-01"),
        radiotherapy("rt", start="2021-02-01", end="2021-02-10", reason="Condition/bone"),
    )
    assert summary.radiotherapy_given.value is False


def test_disease_free_interval_runs_from_the_end_of_curative_treatment() -> None:
    metastasis = secondary("lung", onset="2021-03-01")
    summary = summary_of(metastasis, excision("wle", performed="2020-09-01", reason="Condition/primary"))
    assert summary.disease_free_interval_months.value == pytest.approx(6.0, abs=0.1)
    assert "end of curative treatment" in summary.disease_free_interval_months.basis
    palliative = excision(
        "wle",
        performed="2020-09-01",
        reason="Condition/primary",
        extension=[{"url": MCODE + "mcode-procedure-intent", "valueCodeableConcept": concept(SNOMED, "363676003")}],
    )
    assert summary_of(metastasis, palliative).disease_free_interval_months is None  # never disease-free


@pytest.mark.parametrize(
    "treatment,basis",
    [
        (
            excision("wle", performed="2020-09-01", reason="Condition/primary"),
            "last resection of the primary on 2020-09-01",
        ),
        (
            radiotherapy("rt", start="2020-08-01", end="2020-09-01", reason="Condition/primary"),
            "last radiotherapy to the primary on 2020-09-01",
        ),
    ],
)
def test_the_disease_free_interval_names_the_curative_treatment_it_runs_from(treatment: dict, basis: str) -> None:
    dfi = summary_of(secondary("lung", onset="2021-03-01"), treatment).disease_free_interval_months
    assert dfi.value == pytest.approx(6.0, abs=0.1)
    assert dfi.basis == f"from the end of curative treatment ({basis}) to the first distant metastasis"
    assert dfi.sources == ("Condition/lung", f"Procedure/{treatment['id']}")


def test_of_curative_treatments_ending_on_one_day_one_is_named() -> None:
    both = (
        excision("wle", performed="2020-09-01", reason="Condition/primary"),
        radiotherapy("rt", start="2020-08-01", end="2020-09-01", reason="Condition/primary"),
    )
    dfi = summary_of(secondary("lung", onset="2021-03-01"), *both).disease_free_interval_months
    assert "(last resection of the primary on 2020-09-01)" in dfi.basis


def test_surgery_not_shown_to_be_of_the_primary_is_named() -> None:
    summary = summary_of(excision("skin", code=concept(SNOMED, "65801008", "Excision (procedure)")))
    info = [(f.kind, f.message, f.sources) for f in summary.findings if f.about == "primary_resected"]
    assert info == [
        (
            FindingKind.INFO,
            "surgery not shown to be of the primary tumour is not read as its resection",
            ("Procedure/skin",),
        )
    ]


# --- the cards (R2: phase of care) -------------------------------------------------------------


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge(CARDS)


STAGE_II = [
    tnm("t", "T2", date="2020-01-20"),
    tnm("n", "N0", date="2020-01-20"),
    tnm("m", "M0", date="2020-01-20"),
    stage_group("sg", "II", date="2020-01-20"),
    ecog("e", 0, date="2024-12-01"),
]


def shown(kb: KnowledgeBase, *resources, primary_resource=PRIMARY) -> set[str]:
    summary = summarise([primary_resource, *STAGE_II, *resources], today=TODAY)
    return {m.statement.id for m in match(summary, kb)}


def test_wide_excision_is_offered_before_surgery_and_not_again_after_it(kb: KnowledgeBase) -> None:
    assert {"S05", "S06", "S08"} <= shown(kb) and not {"S12", "S13"} & shown(kb)
    after = shown(kb, RESECTION)
    assert not {"S05", "S06", "S09", "S10"} & after
    assert not {"S08", "S13"} & after  # years after resection: postoperative radiotherapy and adjuvant decisions past
    recent = shown(kb, excision("wle", performed="2024-11-01", reason="Condition/primary"))
    assert {"S08", "S13"} <= recent  # two months after resection: adjuvant chemotherapy is not standard


def test_radiotherapy_given_closes_the_surgery_with_radiotherapy_statement(kb: KnowledgeBase) -> None:
    assert "S08" not in shown(
        kb, RESECTION, radiotherapy("rt", start="2020-04-01", end="2020-05-10", reason="Condition/primary")
    )


def test_re_resection_shows_only_after_a_resection_with_a_positive_margin(kb: KnowledgeBase) -> None:
    recent = excision("wle", performed="2024-11-01", reason="Condition/primary")
    assert "S12" in shown(kb, recent, margin("r", "R1", date="2024-11-05"))
    assert "S12" in shown(kb, recent, margin("r", "R2", date="2024-11-05"))
    assert "S12" not in shown(kb, recent, margin("r", "R0", date="2024-11-05"))
    assert "S12" not in shown(kb, recent)
    assert "S12" not in shown(kb, margin("r", "R1", date="2024-11-05"))


@pytest.mark.parametrize(("performed", "offered"), [("2024-01-01", True), ("2023-12-01", False)])  # 12.0 / 13.0 months
def test_re_resection_is_offered_in_the_year_after_surgery(kb: KnowledgeBase, performed: str, offered: bool) -> None:
    resection = excision("wle", performed=performed, reason="Condition/primary")
    assert ("S12" in shown(kb, resection, margin("r", "R1", date=performed))) is offered


def test_follow_up_after_completed_local_treatment_with_no_evidence_of_disease(kb: KnowledgeBase) -> None:
    in_remission = primary(snomed="443719001", body_site="61685007", onset="2020-01-01", clinical="remission")
    assert "S04" in shown(
        kb, RESECTION, disease_status("ds", "improved", date="2024-06-01"), primary_resource=in_remission
    )
    assert "S04" not in shown(kb, primary_resource=in_remission)  # no local treatment on record
    assert "S04" not in shown(kb, RESECTION)  # treated, but not recorded as free of disease


def test_the_procedure_tables_refuse_unknown_keys() -> None:
    import yaml
    from pydantic import ValidationError

    from cds_service.summary.procedures import ProcedureTables

    good = yaml.safe_load((Path(__file__).resolve().parents[2] / "cds_service/summary/procedures.yaml").read_text())
    ProcedureTables.model_validate(good)
    with pytest.raises(ValidationError, match="resektion"):
        ProcedureTables.model_validate({**good, "resektion": {}})
    with pytest.raises(ValidationError, match="R3"):
        ProcedureTables.model_validate({**good, "margin": {"snomed": {"1": "R3"}, "any_system": ["R0"]}})


def test_an_unreadable_procedure_leaves_not_resected_unknown_but_a_recorded_resection_stands() -> None:
    broken = {**excision("broken"), "status": 42}
    summary = summary_of(broken)
    assert summary.primary_resected is None and summary.radiotherapy_given is None
    assert FindingKind.INCOMPLETE in kinds(summary, "primary_resected")
    assert summary_of(broken, RESECTION).primary_resected.value is True


# --- a recurrence only a note records, and its re-excision ------------------------------------------


def _primary_with(*texts: str, time: str | None = "2024-06-01", **kwargs) -> dict:
    return primary(
        snomed="443719001", body_site="61685007", onset="2020-01-01", note=notes(*texts, time=time), **kwargs
    )


def test_a_dated_note_on_the_primary_records_a_local_recurrence_after_the_resection() -> None:
    summary = summarise([_primary_with("Biopsy-proven local recurrence at the scar."), RESECTION], today=TODAY)
    assert summary.local_recurrence.value is True and summary.local_recurrence.when == date(2024, 6, 1)
    assert "Biopsy-proven local recurrence" in summary.local_recurrence.basis
    assert summary.primary_resected.value is False


@pytest.mark.parametrize(
    "text",
    [
        "No local recurrence on MRI.",
        "?local recurrence, for biopsy.",
        "Suspected local recurrence.",
        "History of local recurrence.",
    ],
)
def test_a_note_that_denies_hedges_or_dates_back_a_recurrence_records_none(text: str) -> None:
    summary = summarise([_primary_with(text), RESECTION], today=TODAY)
    assert summary.local_recurrence.value is False and summary.primary_resected.value is True


def test_an_undated_note_on_the_primary_records_no_recurrence() -> None:
    summary = summarise([_primary_with("Local recurrence at the scar.", time=None), RESECTION], today=TODAY)
    assert summary.local_recurrence.value is False


def test_the_note_of_a_re_excision_records_the_recurrence_and_its_removal() -> None:
    relapsed = primary(snomed="443719001", body_site="61685007", onset="2020-01-01", clinical="recurrence")
    re_excision = excision(
        "re",
        performed="2024-09-01",
        reason="Condition/primary",
        note=notes("Re-excision of recurrence, margins clear."),
    )
    summary = summarise([relapsed, RESECTION, re_excision], today=TODAY)
    assert summary.local_recurrence.value is True and summary.local_recurrence.sources == ("Procedure/re",)
    assert summary.primary_resected.value is True
    assert not kinds(summary, "primary_resected")  # the relapse's site is no longer in doubt
    without_the_note = summarise(
        [relapsed, RESECTION, excision("re", performed="2024-09-01", reason="Condition/primary")], today=TODAY
    )
    assert without_the_note.primary_resected is None


def test_a_primary_recorded_as_recurrent_dates_the_tumour_not_its_recurrence() -> None:
    """ "Recurrent DFSP" on the problem list, excised after its onset: when it came back is not
    recorded, so the excision is not known to have removed the recurrence."""
    recurrent = condition("primary", {"text": "Recurrent DFSP of the shoulder"}, onset="2020-01-01")
    summary = summarise([recurrent, RESECTION], today=TODAY)
    assert summary.local_recurrence.value is True and summary.local_recurrence.when is None
    assert summary.primary_resected.value is False
    later = excision("re", performed="2024-09-01", reason="Condition/primary", note=notes("Excision of recurrence."))
    assert summarise([recurrent, RESECTION, later], today=TODAY).primary_resected.value is True


def test_a_re_excised_recurrence_is_not_offered_re_excision_again(kb: KnowledgeBase) -> None:
    recurrence = condition("rec", concept(SNOMED, "25173007"), onset="2022-05-01")
    restaged = tnm("m-after", "M0", date="2022-05-10")
    before = shown(kb, RESECTION, recurrence, restaged)
    after = shown(kb, RESECTION, recurrence, restaged, excision("re", performed="2022-06-01", reason="Condition/rec"))
    assert {"S15", "S16", "S03"} <= before
    assert not {"S15", "S16", "S03", "S05"} & after


def in_full(fact) -> tuple | None:
    return None if fact is None else (fact.value, fact.sources, fact.basis, fact.when)


NO_RESECTION = (False, (), "no resection of the primary recorded", None)
NO_RADIOTHERAPY = (False, (), "no radiotherapy to the primary recorded", None)
RESECTED = (True, ("Procedure/wle",), "resection of the primary recorded on 2020-03-01", date(2020, 3, 1))


@pytest.mark.parametrize(
    "resources,resected,margin_value,irradiated",
    [
        ((), NO_RESECTION, None, NO_RADIOTHERAPY),
        (
            (dict(RESECTION, outcome=concept(SNOMED, "278271003")),),
            RESECTED,
            ("R1", ("Procedure/wle",), "R1 recorded as the resection's outcome", date(2020, 3, 1)),
            NO_RADIOTHERAPY,
        ),
        (
            (RESECTION, condition("rec", concept(SNOMED, "25173007"), onset="2022-05-01")),
            (
                False,
                ("Condition/rec", "Procedure/wle"),
                "local recurrence on 2022-05-01 after the last resection on 2020-03-01",
                date(2022, 5, 1),
            ),
            None,
            NO_RADIOTHERAPY,
        ),
        (
            (radiotherapy("rt", reason="Condition/primary", start="2020-01-10", end="2020-01-10"),),
            NO_RESECTION,
            None,
            (True, ("Procedure/rt",), "radiotherapy to the primary recorded on 2020-01-10", date(2020, 1, 10)),
        ),
    ],
)
def test_the_phase_of_care_in_full(
    resources: tuple, resected: tuple, margin_value: tuple | None, irradiated: tuple
) -> None:
    summary = summary_of(*resources)
    assert in_full(summary.primary_resected) == resected
    assert in_full(summary.resection_margin) == margin_value
    assert in_full(summary.radiotherapy_given) == irradiated


def test_a_relapse_of_unrecorded_site_after_resection_says_what_is_not_recorded() -> None:
    relapsed = primary(snomed="443719001", body_site="61685007", onset="2020-01-01", clinical="recurrence")
    summary = summarise([relapsed, RESECTION], today=TODAY)
    found = [(f.kind, f.message, f.sources) for f in summary.findings if f.about == "primary_resected"]
    assert found == [
        (
            FindingKind.AMBIGUOUS,
            "the disease came back after the resection, but whether at the primary site is not recorded",
            ("Procedure/wle",),
        )
    ]


LIPOMA = condition("lipoma", {"text": "Lipoma of back"}, onset="2019-01-01")
VERSIONED = MCODE + "mcode-radiotherapy-course-summary|4.0.0"


@pytest.mark.parametrize(
    "record,resected,irradiated",
    [
        (excision("x", code={"text": "Excisional biopsy of thigh mass"}, reason="Condition/primary"), False, False),
        (excision("x", code={"text": "Wide excision of tumour"}, reason="Condition/lipoma"), True, False),
        (
            excision(
                "x",
                performed=None,
                performedPeriod={"start": "2020-01-10", "end": "2020-02-10"},
                code={"text": "Course 1"},
                meta={"profile": [VERSIONED]},
            ),
            False,
            True,
        ),
    ],
)
def test_what_a_procedure_record_is(record: dict, resected: bool, irradiated: bool) -> None:
    summary = summary_of(LIPOMA, record)
    assert (summary.primary_resected.value, summary.radiotherapy_given.value) == (resected, irradiated)


@pytest.mark.parametrize(
    "focus,used",
    [(None, True), ("Condition/primary", True), ("Condition/breast", False)],
)
def test_a_margin_observation_about_another_cancer_is_not_the_sarcomas(focus: str | None, used: bool) -> None:
    breast = condition("breast", concept(ICD10, "C50.911"), onset="2015-01-01", clinical="remission")
    summary = summary_of(breast, RESECTION, margin("r", "R1", date="2020-03-05", focus=focus))
    assert (summary.resection_margin is not None) is used


def test_a_relapse_on_the_primary_without_its_site_leaves_local_recurrence_unknown_and_says_so() -> None:
    relapsed = primary(snomed="443719001", body_site="61685007", onset="2020-01-01", clinical="recurrence")
    summary = summarise([relapsed], today=TODAY)
    assert summary.local_recurrence is None
    found = [(f.kind, f.message, f.sources) for f in summary.findings if f.about == "local_recurrence"]
    assert found == [
        (
            FindingKind.AMBIGUOUS,
            "relapse recorded on the primary without its site: local or distant not recorded",
            ("Condition/primary",),
        )
    ]


def test_the_note_of_a_re_excision_done_over_days_dates_the_recurrence_by_its_end() -> None:
    re_excision = excision(
        "re",
        performed=None,
        performedPeriod={"start": "2022-06-01", "end": "2022-06-02"},
        reason="Condition/primary",
        note=notes("Re-excision of local recurrence at the scar."),
    )
    recurrence = summary_of(RESECTION, re_excision).local_recurrence
    assert (recurrence.value, recurrence.sources, recurrence.when) == (True, ("Procedure/re",), date(2022, 6, 2))


@pytest.mark.parametrize(
    "recurrence",
    [
        condition("rec", {"text": "Local recurrence at the scar"}, onset="2022-06-01"),
        excision(
            "rec", code={"text": "Re-excision of local recurrence"}, performed="2022-06-01", reason="Condition/primary"
        ),
    ],
)
def test_a_local_recurrence_named_only_in_words_is_read_and_dated(recurrence: dict) -> None:
    found = summary_of(recurrence).local_recurrence
    assert (found.value, found.when) == (True, date(2022, 6, 1))


def test_treatment_of_the_primary_after_the_first_metastasis_does_not_end_curative_treatment() -> None:
    perioperative = med_statement("dox", rxnorm("3639"), start="2020-06-01", end="2020-10-01")
    after = radiotherapy("rt", start="2021-05-01", end="2021-06-01", reason="Condition/primary")
    dfi = summary_of(secondary("lung", onset="2021-03-01"), perioperative, after).disease_free_interval_months
    assert dfi.value == pytest.approx(5.0, abs=0.1)
    assert dfi.basis == (
        "from the end of curative treatment (last perioperative anticancer drug on 2020-10-01) to the first distant "
        "metastasis"
    )


def test_overlapping_radiotherapy_courses_are_read_by_the_one_that_ended_last() -> None:
    long = radiotherapy("rt1", start="2020-01-01", end="2020-03-01", reason="Condition/primary")
    short = radiotherapy("rt2", start="2020-02-01", end="2020-02-15", reason="Condition/primary")
    given = summary_of(long, short).radiotherapy_given
    assert (given.basis, given.when) == (
        "radiotherapy to the primary recorded on 2020-01-01 to 2020-03-01",
        date(2020, 3, 1),
    )


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ({"text": "R1"}, "R1"),
        ({"text": "R0 resection"}, "R0"),
        ({"text": "Margin: R2"}, "R2"),
        ({"coding": [{"system": SNOMED, "code": "999999999", "display": "R1"}]}, "R1"),  # unknown code, display R1
        ({"text": "R0/R1"}, None),  # undecided: no conclusion
        ({"text": "R1?"}, None),
        ({"text": "R1", "coding": [{"system": SNOMED, "code": "999999999", "display": "R0"}]}, None),  # disagree
    ],
)
def test_a_margin_written_as_the_r_category_alone_is_read(written: dict, read: str | None) -> None:
    """A Procedure outcome, or a residual-tumour Observation's coded value, holding only "R1" as text."""
    found = summary_of(dict(RESECTION, outcome=written)).resection_margin
    assert (found.value if found else None) == read
    observed = observation("r", concept(LOINC, "84892-9"), value={"valueCodeableConcept": written}, date="2020-03-05")
    found = summary_of(RESECTION, observed).resection_margin
    assert (found.value if found else None) == read


@pytest.mark.parametrize(
    ("body_site", "performed", "resected"),
    [
        ("35039007", "2020-03-01", True),  # uterine LMS found at a hysterectomy for fibroids days before its onset
        ("35039007", "2019-12-06", True),  # 90 days before the onset: the operation that found it
        ("35039007", "2019-12-05", False),  # 91 days before: an earlier operation
        ("61685007", "2020-03-01", False),  # a thigh sarcoma: the hysterectomy removed something else
    ],
)
def test_a_hysterectomy_for_fibroids_is_the_resection_of_a_uterine_sarcoma_it_found(
    body_site: str, performed: str, resected: bool
) -> None:
    found = primary(snomed="443719001", body_site=body_site, onset="2020-03-05")
    surgery = excision("tah", performed=performed, text="Total abdominal hysterectomy")
    surgery["code"] = concept(SNOMED, "116140006", "Total hysterectomy")
    surgery["reasonCode"] = [concept(SNOMED, "95315005", "Uterine leiomyoma")]
    surgery["outcome"] = {"text": "Uterus 480 g, intramural mass 9.5 cm"}
    summary = summarise([found, surgery], today=TODAY)
    assert summary.primary_resected.value is resected


@pytest.mark.parametrize(
    ("outcome", "resected"),
    [
        ("Pathology: leiomyosarcoma 11 cm, confined to the specimen.", True),
        ("Specimen 480 g; benign leiomyomata, no malignancy", False),
        ("Intramural mass 9.5 cm", False),
    ],
)
def test_an_operation_naming_no_reason_whose_outcome_names_the_sarcoma_removed_it(outcome: str, resected: bool) -> None:
    surgery = excision("op", performed="2020-01-20", text="Laparotomy and excision")
    surgery["outcome"] = {"text": outcome}
    assert summary_of(surgery).primary_resected.value is resected


@pytest.mark.parametrize(
    ("outcome", "resected"),
    [("Final pathology: leiomyosarcoma, 9 cm, confined to the uterus.", True), ("Benign leiomyomata.", False)],
)
def test_a_hysterectomy_months_before_a_uterine_sarcoma_was_recorded_removed_it_when_its_pathology_names_it(
    outcome: str, resected: bool
) -> None:
    found = primary(snomed="443719001", body_site="35039007", onset="2020-03-05")
    surgery = excision("tah", performed="2019-11-20", text="Total laparoscopic hysterectomy")  # 106 days before
    surgery["code"] = concept(SNOMED, "116140006", "Total hysterectomy")
    surgery["outcome"] = {"text": outcome}
    assert summarise([found, surgery], today=TODAY).primary_resected.value is resected


@pytest.mark.parametrize(
    ("text", "resected"),
    [
        ("Laparoscopic myomectomy", False),
        ("Total hysterectomy", True),
        ("TLH-BSO (completion surgery after myomectomy)", True),  # a hysterectomy that names the myomectomy
    ],
)
def test_a_myomectomy_that_found_a_uterine_sarcoma_did_not_resect_it(text: str, resected: bool) -> None:
    found = primary(snomed="443719001", body_site="35039007", onset="2020-03-05")
    surgery = excision("op", performed="2020-03-01", text=text)
    surgery["outcome"] = {"text": "Pathology: leiomyosarcoma within morcellated fragments; margins not assessable."}
    assert summarise([found, surgery], today=TODAY).primary_resected.value is resected


@pytest.mark.parametrize(
    ("text", "resected", "irradiated"),
    [
        ("L BKA", True, False),  # below-knee amputation
        ("Postoperative RT 66 Gy left thigh", False, True),
        ("IMRT 50 Gy preoperative", False, True),
        ("Excision RT thigh mass", True, False),  # "RT" alone: right, not radiotherapy
        ("Re-excision and adjuvant RT 60 Gy", True, False),  # the resection words are read first
        ("RT planning CT", False, False),
    ],
)
def test_abbreviations_of_amputation_and_radiotherapy_are_read(text: str, resected: bool, irradiated: bool) -> None:
    done = {"resourceType": "Procedure", "id": "p", "status": "completed", "subject": {"reference": "Patient/p1"}}
    record = {
        **done,
        "code": {"text": text},
        "performedDateTime": "2020-03-01",
        "reasonReference": [{"reference": "Condition/primary"}],
    }
    summary = summary_of(record)
    assert bool(summary.primary_resected and summary.primary_resected.value) is resected
    assert bool(summary.radiotherapy_given and summary.radiotherapy_given.value) is irradiated


@pytest.mark.parametrize(
    ("performed", "follow_up"), [("2023-12-01", True), ("2024-01-01", False)]
)  # 13.0 / 12.0 months
def test_follow_up_after_a_microscopic_margin_treated_with_radiotherapy(
    kb: KnowledgeBase, performed: str, follow_up: bool
) -> None:
    """R1 and postoperative radiotherapy: follow-up (S04) once re-resection (S12) is no longer the question."""
    resection = excision("wle", performed=performed, reason="Condition/primary")
    rt = radiotherapy("rt", start="2024-02-01", end="2024-03-10", reason="Condition/primary")
    cards = shown(kb, resection, margin("r", "R1", date=performed), rt)
    assert ("S04" in cards) is follow_up
    assert ("S12" in cards) is not follow_up


@pytest.mark.parametrize(("found", "dissection"), [("2024-06-01", True), ("2020-02-20", False)])
def test_lymph_node_dissection_for_regional_nodes_found_after_the_resection(
    kb: KnowledgeBase, found: str, dissection: bool
) -> None:
    """A regional (inguinal) node relapse years after the thigh resection brings S10; nodes recorded
    before it (dissected with the primary) do not, once the primary is resected."""
    node = secondary("node", icd10="C77.4", onset=found, of="Condition/primary")
    negative_ct = observation(
        "ct", concept(LOINC, "24627-2"), value={"valueCodeableConcept": concept(SNOMED, "260385009")}, date=found
    )
    assert ("S10" in shown(kb, RESECTION, node, negative_ct)) is dissection
