"""Judgements the record rarely codes (R2): set only on evidence, coded data first, then structured
proxies, then clinician notes; evidence older than the latest disease event is not used."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fhir_builders import (
    SNOMED,
    concept,
    condition,
    disease_status,
    excision,
    med_administration,
    notes,
    primary,
    secondary,
    size,
    tnm,
)

from cds_service.summary import summarise
from cds_service.summary.model import FindingKind, Growth, Margin, PatientSummary, Resectability

TODAY = date(2026, 3, 1)
LMS = {"snomed": "443719001", "body_site": "61685007", "onset": "2024-01-10"}
LUNG = secondary("lung", onset="2025-01-14")  # the latest disease event in the metastatic charts


def summary(*resources: dict[str, Any], note: list[dict[str, Any]] | None = None) -> PatientSummary:
    index = primary("p", **LMS, **({"note": note} if note else {}))
    return summarise([index, *resources], today=TODAY)


def localised(*resources: dict[str, Any], t: str = "T2", note: list[dict[str, Any]] | None = None) -> PatientSummary:
    return summary(
        tnm("t", t, date="2024-01-20"),
        tnm("n", "N0", date="2024-01-20"),
        tnm("m", "M0", date="2024-01-20"),
        *resources,
        note=note,
    )


def test_a_note_sets_resectability_quoting_its_sentence_resource_and_date() -> None:
    fact = summary(note=notes("Seen at MDT. Judged unresectable.", time="2025-05-10")).resectability
    assert fact.value is Resectability.UNRESECTABLE and fact.sources == ("Condition/p",)
    assert fact.basis == "per note on Condition/p, 2025-05-10: 'Judged unresectable.'"


@pytest.mark.parametrize("written, used", [("2025-01-13", False), ("2025-01-14", True), ("2025-01-15", True)])
def test_a_note_older_than_the_latest_disease_event_is_ignored(written: str, used: bool) -> None:
    fact = summary(LUNG, note=notes("Unresectable", time=written)).resectability
    assert (fact is not None) is used


def test_a_tumour_judged_unresectable_stays_so_through_progression_but_not_through_new_disease() -> None:
    unresectable = notes("Judged unresectable.", time="2025-05-10")
    worse = disease_status("ds", "worsened", date="2025-06-01")
    assert summary(LUNG, worse, note=unresectable).resectability.value is Resectability.UNRESECTABLE
    later_met = secondary("liver", snomed="94222008", onset="2025-06-01")
    assert summary(LUNG, later_met, note=unresectable).resectability is None


def test_progression_is_a_disease_event_that_outdates_earlier_notes() -> None:
    before = notes("Asymptomatic", time="2025-05-10")
    assert summary(LUNG, note=before).symptomatic.value is False
    assert summary(LUNG, disease_status("ds", "worsened", date="2025-06-01"), note=before).symptomatic is None


def test_an_undated_note_cannot_be_placed_after_the_latest_event() -> None:
    undated = condition("rt", {"text": "Tumour judged unresectable"}, onset=None)
    assert summary(LUNG, undated).resectability is None
    assert (
        summary(LUNG, condition("rt", {"text": "Tumour judged unresectable"}, onset="2025-02-01")).resectability.value
        is Resectability.UNRESECTABLE
    )


def test_a_text_only_condition_is_read_only_when_it_names_the_tumour() -> None:
    assert summary(condition("hiv", {"text": "Asymptomatic HIV infection"}, onset="2025-02-01")).symptomatic is None
    assert summary(condition("x", {"text": "Lung lesions asymptomatic"}, onset="2025-02-01")).symptomatic.value is False


BREAST = condition("breast", concept(SNOMED, "254837009", "Malignant neoplasm of breast"), onset="2024-06-01")
UNRESECTABLE = notes("Unresectable", time="2025-05-10")


@pytest.mark.parametrize(
    "record,read",
    [
        (secondary("bone", snomed="94222008", onset="2025-01-14", of="Condition/p", note=UNRESECTABLE), True),
        (secondary("bone", snomed="94222008", onset="2025-01-14", of="Condition/breast", note=UNRESECTABLE), False),
        (excision("cut", performed="2025-05-10", reason="Condition/p", note=UNRESECTABLE), True),
        (excision("cut", performed="2025-05-10", reason="Condition/breast", note=UNRESECTABLE), False),
        (condition("x", {"text": "Tumour judged unresectable"}, onset="2025-05-10"), True),
        (disease_status("ds", "stable", date="2025-05-10", note=UNRESECTABLE), True),
        (disease_status("ds", "stable", date="2025-05-10", note=UNRESECTABLE, focus="Condition/breast"), False),
        ({**disease_status("ds", "stable", date="2025-05-10", note=UNRESECTABLE), "status": "entered-in-error"}, False),
        (
            condition("x", {**concept(SNOMED, "22298006"), "text": "Tumour judged unresectable"}, onset="2025-05-10"),
            False,
        ),
    ],
)
def test_only_what_is_written_about_this_sarcoma_is_read(record: dict, read: bool) -> None:
    found = summary(BREAST, record).resectability
    assert (found is not None and found.value is Resectability.UNRESECTABLE) is read


@pytest.mark.parametrize(
    "events,written,used",
    [
        ((), "2024-01-09", False),  # before the primary's onset, 2024-01-10
        ((), "2024-01-10", True),
        ((tnm("m", "M1", date="2025-01-14"),), "2025-01-13", False),  # before a recorded M1
        ((tnm("m", "M1", date="2025-01-14"),), "2025-01-14", True),
        ((condition("rec", concept(SNOMED, "25173007"), onset="2025-01-14"),), "2025-01-13", False),  # local recurrence
        ((condition("rec", concept(SNOMED, "25173007"), onset="2025-01-14"),), "2025-01-14", True),
    ],
)
def test_a_note_is_read_from_the_latest_disease_event_on(events: tuple, written: str, used: bool) -> None:
    fact = summary(*events, note=notes("Unresectable", time=written)).resectability
    assert (fact is not None) is used


def test_with_no_dated_disease_event_every_note_is_current() -> None:
    index = primary(
        "p", snomed="443719001", body_site="61685007", onset=None, note=notes("Unresectable", time="2019-05-10")
    )
    assert summarise([index], today=TODAY).resectability.value is Resectability.UNRESECTABLE


def test_a_note_on_another_cancer_says_nothing_about_the_sarcoma() -> None:
    breast = condition(
        "breast",
        concept(SNOMED, "254837009", "Malignant neoplasm of breast"),
        onset="2024-06-01",
        note=notes("Unresectable", time="2025-05-10"),
    )
    assert summary(breast).resectability is None


def test_notes_on_observations_and_procedures_are_read() -> None:
    status = disease_status("ds", "stable", date="2025-04-15", note=notes("Asymptomatic"))
    cut = excision("wle", performed="2024-03-01", reason="Condition/p", note=notes("R1 at the deep margin."))
    found = summary(status, cut)
    assert found.symptomatic.value is False and found.symptomatic.sources == ("Observation/ds",)
    assert found.margin_from_note.value is Margin.R1
    assert found.margin_from_note.basis == "per note on Procedure/wle, 2024-03-01: 'R1 at the deep margin.'"


@pytest.mark.parametrize(
    ("text", "margin"),
    [
        ("Myxofibrosarcoma G2; tumour reaches the inked deep margin.", Margin.R1),
        ("Tumour at ink at the lateral margin.", Margin.R1),
        ("Tumour is not at the inked margin.", None),  # negated: not an involved margin
    ],
)
def test_the_pathology_wording_of_an_involved_margin_is_read(text: str, margin: Margin | None) -> None:
    cut = excision("wle", performed="2024-03-01", reason="Condition/p", note=notes(text))
    found = summary(cut).margin_from_note
    assert (found.value if found else None) is margin


def test_the_aim_of_a_response_is_read_from_a_note() -> None:
    note = notes("Neoadjuvant chemotherapy aiming for downsizing to allow surgery", time="2025-05-10")
    assert summary(note=note).response_needed.value is True
    assert summary().response_needed is None


def test_the_latest_note_wins() -> None:
    found = summary(note=notes("Unresectable", time="2025-03-01") + notes("Now resectable", time="2025-06-01"))
    assert found.resectability.value is Resectability.RESECTABLE


def test_notes_of_one_date_that_disagree_settle_nothing_and_say_so() -> None:
    other = condition("x", {"text": "Tumour resectable"}, onset="2025-05-10")
    found = summary(other, note=notes("Unresectable", time="2025-05-10"))
    assert found.resectability is None
    said = [(f.kind, f.message, f.sources) for f in found.findings if f.about == "resectability"]
    assert said == [
        (
            FindingKind.AMBIGUOUS,
            "clinician notes of the same date disagree; no conclusion drawn from them",
            ("Condition/p", "Condition/x"),
        )
    ]


def test_a_coded_finding_settles_symptoms_before_a_note() -> None:
    coded = condition("asx", concept(SNOMED, "84387000", "Asymptomatic (finding)"), onset="2025-05-01")
    found = summary(coded, note=notes("Symptomatic", time="2025-06-01"))
    assert found.symptomatic.value is False and found.symptomatic.basis == "coded finding (SNOMED 84387000)"
    assert summary(note=notes("Symptomatic", time="2025-06-01")).symptomatic.value is True


@pytest.mark.parametrize(
    "code,clinical,verification,symptomatic",
    [
        ("84387000", "active", "confirmed", False),  # asymptomatic
        ("264931009", "active", "confirmed", True),  # symptomatic
        ("264931009", None, None, True),
        ("264931009", "resolved", "confirmed", None),
        ("264931009", "active", "refuted", None),
        ("264931009", "active", "entered-in-error", None),
        ("84387000", "active", "refuted", None),
    ],
)
def test_a_coded_finding_is_evidence_while_it_stands(
    code: str, clinical: str | None, verification: str | None, symptomatic: bool | None
) -> None:
    coded = condition("sx", concept(SNOMED, code), onset="2025-05-01", clinical=clinical, verification=verification)
    fact = summary(coded).symptomatic
    assert (fact.value if fact else None) is symptomatic
    if fact:
        assert (fact.sources, fact.when) == (("Condition/sx",), date(2025, 5, 1))


def growing_sizes() -> list[dict[str, Any]]:
    return [
        size("s1", 2.0, date="2025-02-01", focus="BodyStructure/lung1"),
        size("s2", 3.0, date="2025-05-01", focus="BodyStructure/lung1"),
    ]


def test_growth_comes_from_the_disease_status_first() -> None:
    found = summary(
        LUNG,
        disease_status("ds", "stable", date="2025-05-02"),
        *growing_sizes(),
        note=notes("Rapid growth", time="2025-05-10"),
    )
    assert found.growth.value is Growth.NOT_GROWING and "disease status stable" in found.growth.basis


def test_growth_comes_from_measurements_before_notes() -> None:
    found = summary(LUNG, *growing_sizes(), note=notes("Slow growth", time="2025-05-10"))
    assert found.growth.value is Growth.GROWING and "at least 20 % and 5 mm" in found.growth.basis


def test_growth_comes_from_a_note_when_nothing_stronger_is_recorded() -> None:
    found = summary(LUNG, note=notes("Slowly growing lung lesions", time="2025-05-10"))
    assert found.growth.value is Growth.SLOW and found.growth.basis.startswith("per note on ")


def test_measurements_of_a_lesion_last_measured_before_the_latest_event_are_not_used() -> None:
    old = [
        size("s1", 2.0, date="2024-02-01", focus="BodyStructure/p"),
        size("s2", 3.0, date="2024-06-01", focus="BodyStructure/p"),
    ]
    assert summary(*old).growth.value is Growth.GROWING
    assert summary(LUNG, *old).growth is None


def test_a_t3_primary_puts_resectability_in_question_with_the_threshold_written() -> None:
    fact = localised(t="T3").resectability
    assert fact.value is Resectability.TO_CONFIRM and fact.sources == ("Observation/t",)
    assert fact.basis == "primary T3, read so at T3-T4"


@pytest.mark.parametrize("t, in_question", [("T2", False), ("T3", True), ("T4", True)])
def test_locally_advanced_starts_at_t3(t: str, in_question: bool) -> None:
    assert (localised(t=t).resectability is not None) is in_question


def test_an_undetermined_disease_status_says_nothing_about_growth() -> None:
    assert summary(LUNG, disease_status("ds", "undetermined", date="2025-05-02")).growth is None


def test_a_plain_note_settles_what_the_t3_proxy_puts_in_question() -> None:
    fact = localised(t="T3", note=notes("Unresectable", time="2025-05-10")).resectability
    assert fact.value is Resectability.UNRESECTABLE


def test_a_resected_primary_is_not_in_question() -> None:
    assert localised(excision("wle", performed="2024-03-01", reason="Condition/p"), t="T3").resectability is None


def test_a_local_recurrence_after_a_resection_puts_resectability_in_question() -> None:
    recurrence = condition("lr", concept(SNOMED, "25173007", "Recurrent tumor"), onset="2025-06-01")
    cut = excision("wle", performed="2024-03-01", reason="Condition/p")
    fact = localised(recurrence, cut).resectability
    assert fact.value is Resectability.TO_CONFIRM and fact.sources == ("Condition/lr", "Procedure/wle")
    assert fact.basis == "local recurrence after a resection"
    assert localised(recurrence).resectability is None


@pytest.mark.parametrize(
    "resources, asked",
    [
        ([LUNG], {"resectability", "symptoms", "growth rate"}),
        ([LUNG, secondary("bone", snomed="94222008", onset="2025-01-14")], {"symptoms", "growth rate"}),
    ],
)
def test_unsettled_judgements_are_open_questions_for_the_extent(
    resources: list[dict[str, Any]], asked: set[str]
) -> None:
    assert summary(*resources).open_questions.value == frozenset(asked)


def test_a_settled_judgement_is_no_open_question() -> None:
    found = summary(LUNG, note=notes("Resectable. Asymptomatic. Slow growth.", time="2025-05-10"))
    assert found.open_questions is None


def test_resectability_to_be_confirmed_stays_an_open_question() -> None:
    assert localised(t="T3").open_questions.value == frozenset({"resectability"})


def test_no_open_questions_in_remission() -> None:
    remission = primary("p", **{**LMS, "clinical": "remission"})
    assert summarise([remission, tnm("m", "M0")], today=TODAY).open_questions is None


def test_nothing_is_judged_without_a_primary() -> None:
    found = summarise([condition("x", {"text": "Tumour judged unresectable"})], today=TODAY)
    assert (found.resectability, found.symptomatic, found.growth, found.open_questions) == (None, None, None, None)


def test_nothing_is_judged_for_a_cancer_the_sarcoma_guideline_does_not_govern() -> None:
    gist = primary("g", snomed="420120006", onset="2024-01-10", note=notes("Unresectable", time="2025-05-10"))
    assert summarise([gist], today=TODAY).resectability is None


@pytest.mark.parametrize("count,many", [(5, False), (6, True), (7, True)])
def test_six_or_more_metastasis_conditions_are_more_than_a_few(count: int, many: bool) -> None:
    metastases = [secondary(f"lung{i}", onset=f"2025-01-{10 + i}") for i in range(count)]
    fact = summary(*metastases).metastatic_lesions
    if many:
        assert fact.value.value == "many" and fact.sources == tuple(f"Condition/lung{i}" for i in range(count))
        assert fact.basis == f"{count} distant metastases recorded (6 or more read as more than a few)"
        assert fact.when == date(2025, 1, 9 + count)  # the latest of them
    else:
        assert fact is None


def test_the_number_of_metastasis_conditions_is_dated_by_the_dated_ones() -> None:
    metastases = [secondary(f"lung{i}", onset=None) for i in range(6)]
    fact = summary(*metastases).metastatic_lesions
    assert fact.value.value == "many" and fact.when is None


@pytest.mark.parametrize(
    "text,value",
    [
        ("Innumerable bilateral lung metastases; not resectable.", "many"),
        ("CT: too numerous to count.", "many"),
        ("Two metastases in the right lower lobe.", "few"),
        ("Solitary metastasis, right lung.", "few"),
        ("Multiple lung nodules.", None),  # "multiple" does not say how many
    ],
)
def test_a_note_gives_the_number_of_metastases(text: str, value: str | None) -> None:
    lung = secondary("lung", onset="2025-01-14", note=notes(text, time="2025-02-01"))
    fact = summary(lung).metastatic_lesions
    assert (fact.value.value if fact else None) == value


def test_the_number_of_metastases_is_not_judged_without_metastases() -> None:
    assert localised(note=notes("Innumerable lesions.", time="2025-02-01")).metastatic_lesions is None


@pytest.mark.parametrize(
    "text,value",
    [
        ("CT: 12 pulmonary nodules, both lungs.", "many"),
        ("More than ten metastases.", "many"),
        ("Lungs: >10 lesions.", "many"),
        ("Three small bilateral lung metastases.", "few"),
        ("Two 8 mm central nodules.", None),  # a size, not a count
        ("5 nodules.", None),  # between a few and many: no conclusion
        ("Multiple pulmonary metastases, both lungs.", "many"),  # several lesions on both sides
        ("Several nodules bilaterally.", "many"),
        ("Multiple pulmonary metastases.", None),  # more than one, number unknown: no conclusion
        ("Metastases in both lungs.", None),
        ("Two metastases, both lungs.", "few"),
        ("Single 3 cm segment 7 liver metastasis.", None),  # a place, not seven lesions
        ("7 liver metastases.", "many"),
        ("Multiple liver metastases (both lobes).", "many"),
        ("Multiple liver metastases (right lobe).", None),
    ],
)
def test_a_number_of_lesions_in_a_note_gives_the_number_of_metastases(text: str, value: str | None) -> None:
    lung = secondary("lung", onset="2025-01-14", note=notes(text, time="2025-02-01"))
    fact = summary(lung).metastatic_lesions
    assert (fact.value.value if fact else None) == value


def test_a_note_older_than_a_later_metastasis_is_not_used() -> None:
    note = notes("Asymptomatic; slow growth, observation agreed.", time="2025-03-10")
    lung = secondary("lung", onset="2025-01-14", note=note)
    assert summary(lung).growth.value is Growth.SLOW
    liver = secondary("liver", snomed="94381002", onset="2025-12-05")
    later = summary(lung, liver)
    assert later.growth is None and later.symptomatic is None


@pytest.mark.parametrize(
    "text,fit",
    [
        ("MDT: inoperable due to comorbidity; definitive radiotherapy.", False),
        ("Declined surgery.", False),
        ("Patient declines further surgery; discussed SBRT.", False),
        ("Refused surgery.", False),
        ("Fit for surgery.", True),
        ("Not inoperable.", True),
        ("Unresectable.", None),  # a judgement on the tumour, not on the patient
    ],
)
def test_fitness_for_surgery_is_read_apart_from_resectability(text: str, fit: bool | None) -> None:
    fact = localised(note=notes(text, time="2025-05-10")).fit_for_surgery
    assert (fact.value if fact else None) is fit


@pytest.mark.parametrize(
    "text,value",
    [("Lung mets x14.", "many"), ("Lung mets x3.", None), ("Lung metastases (23 nodules).", "many")],
)
def test_a_count_after_the_lesions_gives_the_number_of_metastases(text: str, value: str | None) -> None:
    lung = secondary("lung", onset="2025-01-14", note=notes(text, time="2025-02-01"))
    fact = summary(lung).metastatic_lesions
    assert (fact.value.value if fact else None) == value


def test_the_words_of_a_coded_metastasis_give_the_number_of_metastases() -> None:
    coded = secondary("lung", onset="2025-01-14")
    coded["code"]["text"] = "Innumerable lung metastases"
    counted = summary(coded).metastatic_lesions
    assert counted.value.value == "many"
    assert counted.basis.startswith("per diagnosis text on Condition/lung")  # not called a note


@pytest.mark.parametrize(
    "text,value",
    [
        ("Re-excision would be mutilating.", Resectability.UNRESECTABLE),
        ("Not clearly resectable.", None),  # a hedge, not a judgement
        ("Unresectable without amputation.", Resectability.AMPUTATION_ONLY),  # limb-sparing is in question
        ("Not resectable without amputation; patient declines it.", Resectability.AMPUTATION_ONLY),
        ("Would require amputation for R0.", Resectability.AMPUTATION_ONLY),
        ("Resectable only by hemipelvectomy; limb-sparing resection not feasible.", Resectability.AMPUTATION_ONLY),
        ("Unresectable: encases the aorta.", Resectability.UNRESECTABLE),
    ],
)
def test_mutilating_resection_reads_as_unresectable_and_a_hedge_says_nothing(text: str, value) -> None:
    fact = summary(LUNG, note=notes(text, time="2025-05-10")).resectability
    assert (fact.value if fact else None) is value


def test_with_the_patient_unfit_for_surgery_resectability_is_no_open_question() -> None:
    fit = localised(note=notes("Fit for surgery.", time="2025-05-10"))
    unfit = localised(note=notes("Not a candidate for surgery: unfit for anaesthesia.", time="2025-05-10"))
    assert fit.open_questions is not None and "resectability" in fit.open_questions.value
    assert unfit.open_questions is None or "resectability" not in unfit.open_questions.value


@pytest.mark.parametrize(
    "text,wish",
    [
        ("Patient declines chemotherapy and wishes best supportive care only.", "supportive-care-only"),
        ("Comfort care only.", "supportive-care-only"),
        ("Declines further chemotherapy and wishes to focus on comfort.", "supportive-care-only"),
        ("Patient declined adjuvant chemotherapy.", "no-adjuvant-chemotherapy"),
        ("Adjuvant chemotherapy discussed; patient declined. CT every 3 months.", "no-adjuvant-chemotherapy"),
        ("Adjuvant chemotherapy discussed; patient undecided.", None),
        ("Adjuvant AI offered; she declined chemotherapy after discussion.", "no-chemotherapy"),
        ("She declined chemotherapy; discussion to continue.", None),  # still being discussed
        ("Declined further treatment.", "supportive-care-only"),
        ("Patient declines chemotherapy and surgery; would accept palliative radiotherapy.", "supportive-care-only"),
        ("Progression on CT. Patient refuses any further chemotherapy.", "no-chemotherapy"),
        ("She does not wish to have any chemotherapy.", "no-chemotherapy"),
        ("She does not want any more chemotherapy and would like to focus on quality of life.", "no-chemotherapy"),
        ("He no longer wants chemotherapy.", "no-chemotherapy"),
        ("She has had enough of chemo and doesn't want to go through any more of it.", "no-chemotherapy"),
        ("He doesn't want any more chemotherapy.", "no-chemotherapy"),
        ("Patient refuses any chemotherapy; open to radiotherapy.", "no-chemotherapy"),
        ("Agrees to chemotherapy.", "accepts-treatment"),
        ("Best supportive care discussed as an option.", None),  # a discussion, not a wish
        ("Chemotherapy discussed; patient undecided.", None),
    ],
)
def test_a_wish_about_anticancer_treatment_is_read_from_a_note(text: str, wish: str | None) -> None:
    fact = localised(note=notes(text, time="2025-05-10")).treatment_wish
    assert (fact.value if fact else None) == wish


def test_a_note_that_the_tumour_is_unresectable_no_longer_holds_once_the_primary_was_resected() -> None:
    note = notes("MDT: currently unresectable.", time="2025-03-01")
    before = localised(note=note).resectability
    after = localised(excision("wle", performed="2025-10-06", reason="Condition/p"), note=note).resectability
    assert before is not None and before.value is Resectability.UNRESECTABLE
    assert after is None or after.value is not Resectability.UNRESECTABLE


# --- a primary judged unresectable while the disease was local (S26: "M1 or unresectable") ----------------


def _paclitaxel(start: str, text: str = "Paclitaxel 80 mg/m2 weekly") -> dict[str, Any]:
    return med_administration("pac", {"text": text}, start=start, reasonReference=[{"reference": "Condition/p"}])


@pytest.mark.parametrize(
    ("drug", "resection", "advanced"),
    [
        (_paclitaxel("2025-06-03"), None, True),  # begun after the judgement: treatment of advanced disease
        (_paclitaxel("2025-05-20"), None, False),  # begun before it
        (_paclitaxel("2025-06-03", "Neoadjuvant paclitaxel 80 mg/m2 weekly"), None, False),  # named neoadjuvant
        (_paclitaxel("2025-06-03"), excision("wle", performed="2025-11-01", reason="Condition/p"), False),  # resected
    ],
)
def test_a_course_begun_after_the_primary_was_judged_unresectable_treats_advanced_disease(
    drug: dict[str, Any], resection: dict[str, Any] | None, advanced: bool
) -> None:
    judged = notes("Extensive scalp involvement, unresectable. Start weekly paclitaxel.", time="2025-05-28")
    found = summary(drug, *([resection] if resection else []), note=judged)
    assert (found.primary_unresectable is not None) is (resection is None)
    assert {e.setting for e in found.therapies} == {"advanced" if advanced else "perioperative"}
    assert found.lines_of_therapy.value == (1 if advanced else 0)


def test_a_primary_judged_unresectable_before_it_spread_stays_so_when_metastases_come() -> None:
    judged = notes("Judged unresectable.", time="2024-11-10")
    found = summary(LUNG, _paclitaxel("2024-11-20"), note=judged)
    assert found.primary_unresectable is not None and found.primary_unresectable.when == date(2024, 11, 10)
    assert found.resectability is None  # the metastases' resectability is a new question
    assert found.lines_of_therapy.value == 1
    assert summary(LUNG, note=notes("Judged resectable.", time="2024-11-10")).primary_unresectable is None


@pytest.mark.parametrize(
    ("text", "fit"), [("MDT: not for surgery. Palliative systemic therapy.", False), ("MDT: for surgery.", None)]
)
def test_an_mdt_not_for_surgery_is_read_as_no_surgery(text: str, fit: bool | None) -> None:
    fact = summary(note=notes(text, time="2025-05-10")).fit_for_surgery
    assert (fact.value if fact else None) is fit


@pytest.mark.parametrize(
    ("later", "since"),
    [
        ("Restaging: still unresectable.", date(2024, 11, 10)),  # confirms the judgement, does not move it
        ("Restaging: now resectable.", None),  # the latest note before the spread decides
    ],
)
def test_a_later_note_confirming_unresectability_does_not_move_its_date(later: str, since: date | None) -> None:
    judged = [*notes("Judged unresectable.", time="2024-11-10"), *notes(later, time="2025-03-01")]
    found = summary(secondary("lung", onset="2025-06-01"), _paclitaxel("2024-11-20"), note=judged)
    assert (found.primary_unresectable.when if found.primary_unresectable else None) == since
    assert found.lines_of_therapy.value == (1 if since else 0)


@pytest.mark.parametrize(
    ("text", "kept"), [("Multiple bilateral pulmonary metastases", True), ("Solitary metastasis", False)]
)
def test_many_metastases_stay_many_through_progression_a_few_do_not(text: str, kept: bool) -> None:
    lung = secondary("lung", onset="2025-01-14", of="Condition/p")
    lung["code"]["text"] = text
    worse = disease_status("ds", "worsened", date="2025-06-01")
    fact = summary(lung, worse).metastatic_lesions
    assert (fact is not None and fact.value.value == "many") is kept
    assert kept or fact is None  # "a few" is not current after the disease grew
