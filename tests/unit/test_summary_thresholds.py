"""Every threshold the summary uses, in one table: the value on the threshold and one unit either side.

Each row names a threshold, a probe (a chart built around one value, run through ``summarise`` and,
for card gates, ``match``) and the outcome expected for each value. The thresholds are written here
as numbers and dates on purpose, not read from ``codes.yaml``, ``drugs.yaml``, ``ajcc8.yaml`` or
``cards/``: moving a threshold by one unit in the data or the code makes its row fail, so a change
of a clinical threshold shows in review as a change of this table (issue 11, "Boundary tests").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fhir_builders import (
    AJCC8,
    LOINC,
    SNOMED,
    TNM_CODES,
    concept,
    condition,
    ecog,
    excision,
    grade,
    karnofsky,
    margin,
    med_administration,
    med_request,
    med_statement,
    observation,
    patient,
    primary,
    rxnorm,
    secondary,
    size,
    tnm,
)

from cds_service.knowledge import KnowledgeBase, load_knowledge, match
from cds_service.summary import summarise
from cds_service.summary.model import Diagnosis, Growth, MetastasisTiming, PatientSummary, StageGroup

TODAY = date(2025, 1, 1)
ONSET = date(2020, 1, 1)
CARDS = Path(__file__).resolve().parents[2] / "cards"
LMS_THIGH = {"snomed": "443719001", "body_site": "61685007"}  # leiomyosarcoma, lower limb (extremity)
DOXORUBICIN = rxnorm("3639", "doxorubicin")
IFOSFAMIDE = rxnorm("5657", "ifosfamide")
SYNC, META = MetastasisTiming.SYNCHRONOUS, MetastasisTiming.METACHRONOUS
GROWING, NOT_GROWING = Growth.GROWING, Growth.NOT_GROWING


@cache
def knowledge() -> KnowledgeBase:
    return load_knowledge(CARDS)


def day(offset: int, start: date = ONSET) -> str:
    return (start + timedelta(days=offset)).isoformat()


def summary_of(*resources: dict[str, Any], today: date = TODAY, **primary_fields: Any) -> PatientSummary:
    fields = {**LMS_THIGH, "onset": ONSET.isoformat(), **primary_fields}
    return summarise([primary(**fields), *resources], today=today)


def shown(summary: PatientSummary) -> set[str]:
    return {m.statement.id for m in match(summary, knowledge())}


# --- Probes: one value in, what the summary (or the card match) makes of it out ----------------------


def timing_of_metastasis_after(days: int) -> MetastasisTiming | None:
    """Primary onset 2020-01-01, first lung metastasis ``days`` later."""
    timing = summary_of(secondary("lung", onset=day(days))).metastasis_timing
    return timing.value if timing else None


METASTASIS = secondary("lung", onset="2021-01-01")
ADVANCED_FROM = date(2021, 1, 1)


def lines_with_a_drug_added_after(days: int) -> int:
    """Doxorubicin starts a first line on 2021-02-01; ifosfamide is added ``days`` later."""
    line_start = date(2021, 2, 1)
    summary = summary_of(
        METASTASIS,
        med_administration("dox", DOXORUBICIN, start=line_start.isoformat()),
        med_administration("ifo", IFOSFAMIDE, start=day(days, line_start)),
    )
    return summary.lines_of_therapy.value


def setting_of_a_course_running_on_after_the_metastasis(days: int) -> str:
    """Doxorubicin begun before the first metastasis (2021-01-01) and given until ``days`` after it."""
    course = med_statement("dox", DOXORUBICIN, start="2020-12-01", end=day(days, ADVANCED_FROM))
    (therapy,) = summary_of(METASTASIS, course).therapies
    return therapy.setting


def courses_of_two_doses(days: int) -> int:
    """Two doxorubicin doses ``days`` apart."""
    first = date(2021, 2, 1)
    doses = [med_administration("d1", DOXORUBICIN, start=first.isoformat())]
    doses.append(med_administration("d2", DOXORUBICIN, start=day(days, first)))
    return len(summary_of(METASTASIS, *doses).therapies)


def line_in_progress_after_last_dose(days: int) -> bool:
    """A completed first-line dose of doxorubicin ``days`` before today, nothing recorded since."""
    dose = med_administration("dox", DOXORUBICIN, start=day(-days, TODAY))
    return summary_of(METASTASIS, dose).line_ongoing.value


def pretreated_after_last_dose(last: str) -> Callable[[str], bool | None]:
    def probe(relapse: str) -> bool | None:
        dose = med_administration("dox", DOXORUBICIN, start=last)
        pretreated = summary_of(secondary("lung", onset=relapse), dose).anthracycline_pretreated
        return pretreated.value if pretreated else None

    probe.__doc__ = f"Perioperative doxorubicin, last dose {last}; anthracycline-pretreated on the first metastasis?"
    return probe


def recent_when_recorded_days_ago(days: int) -> bool | None:
    recent = summary_of(ecog("e", 1, date=day(-days, TODAY))).performance_status_recent
    return recent.value if recent else None


def ecog_from_karnofsky(score: int) -> int | None:
    found = summary_of(karnofsky("k", score, date="2024-12-01")).ecog
    return found.value if found else None


def ecog_from_score(score: int) -> int | None:
    found = summary_of(ecog("e", score, date="2024-12-01")).ecog
    return found.value if found else None


def metastatic_first_line(born: str, today: str) -> PatientSummary:
    """Undifferentiated pleomorphic sarcoma of the thigh, liver metastasis, no therapy yet, ECOG 1 last month."""
    on = date.fromisoformat(today)
    return summary_of(
        patient(birthDate=born),
        secondary("liver", snomed="94381002", onset="2024-06-01"),
        ecog("e", 1, date=day(-30, on)),
        today=on,
        snomed=None,
        icd10="C49.2",
        morphology="8802/3",
    )


def age_and_adult_cards_on(today: str) -> tuple[int | None, bool, bool]:
    """Born 2007-01-01: G9 (under 18) shows, and doxorubicin (S28) does not (G8), until the 18th birthday."""
    summary = metastatic_first_line("2007-01-01", today)
    cards = shown(summary)
    return (summary.age.value if summary.age else None), "G9" in cards, "S28" in cards


def age_born(born: str) -> Callable[[str], int | None]:
    def probe(today: str) -> int | None:
        age = summarise([patient(birthDate=born), primary()], today=date.fromisoformat(today)).age
        return age.value if age else None

    probe.__doc__ = f"Age on a day, for a patient born {born} (a partial date is read as its last possible day)."
    return probe


def age_and_combination_chemotherapy_on(today: str) -> tuple[int | None, bool]:
    """Born 1950-01-01: doxorubicin + ifosfamide (S29) shows until the 75th birthday (G8)."""
    summary = metastatic_first_line("1950-01-01", today)
    return (summary.age.value if summary.age else None), "S29" in shown(summary)


def nodes_and_stage(n: str | None) -> tuple[str | None, StageGroup | None]:
    """An extremity primary of 4 cm (T1), G1, M0 recorded; N as recorded (``None``: not recorded)."""
    nodes = []
    if n is not None:
        code = concept(SNOMED, TNM_CODES[("N", False)])
        nodes = [observation("n", code, value={"valueCodeableConcept": {"text": n}}, method=AJCC8)]
    summary = summary_of(size("s", 4.0), grade("g", "G1"), tnm("m", "M0"), *nodes)
    return (summary.n.value if summary.n else None), (summary.stage.value if summary.stage else None)


def t_of_size(site_icd10: str) -> Callable[[float], str | None]:
    def probe(cm: float) -> str | None:
        summary = summarise([primary(icd10=site_icd10, morphology="8890/3"), size("s", cm)], today=TODAY)
        return summary.t.value if summary.t else None

    probe.__doc__ = f"T from the greatest dimension of a primary coded {site_icd10}."
    return probe


def growth_of(first_cm: float, later_cm: float, days: int) -> Growth | None:
    """Two sizes of the primary ``days`` apart (no other evidence of growth)."""
    sizes = [
        size("s1", first_cm, date="2024-01-01", focus="Condition/primary"),
        size("s2", later_cm, date=day(days, date(2024, 1, 1)), focus="Condition/primary"),
    ]
    growth = summary_of(*sizes).growth
    return growth.value if growth else None


def past_diagnosis_on(today: str) -> Diagnosis:
    """An active problem "Leiomyosarcoma, s/p TAH 2023": past once 2023 ended 12 months ago."""
    text = condition("lms", {"text": "Leiomyosarcoma, s/p TAH 2023"}, onset="2023-01-10")
    return summarise([text], today=date.fromisoformat(today)).diagnosis.value


# Entered-in-error records: the same record with each status; only the usable ones count.


def ecog_with_status(status: str) -> int | None:
    found = summary_of(ecog("e", 1, date="2024-12-01", status=status)).ecog
    return found.value if found else None


def t_with_status(status: str) -> str | None:
    found = summary_of(tnm("t", "T2", status=status)).t
    return found.value if found else None


def m_with_metastasis_verified(verification: str) -> str | None:
    found = summary_of(secondary("lung", onset="2021-01-01", verification=verification)).m
    return found.value if found else None


def diagnosis_verified(verification: str) -> Diagnosis:
    return summary_of(verification=verification).diagnosis.value


def drugs_with_status(build: Callable[..., dict[str, Any]]) -> Callable[[str], frozenset[str]]:
    def probe(status: str) -> frozenset[str]:
        return summary_of(METASTASIS, build("m", DOXORUBICIN, start="2021-02-01", status=status)).prior_drugs.value

    return probe


def resected_with_status(status: str) -> bool | None:
    surgery = excision("x", performed="2020-02-15", status=status, reason="Condition/primary")
    found = summary_of(surgery).primary_resected
    return found.value if found else None


def adjuvant_chemotherapy_offered_on(today: str) -> bool:
    """A G3 T2 N0 M0 thigh leiomyosarcoma resected on 2020-02-15: S13 (adjuvant chemotherapy in
    selected patients) while the adjuvant decision is open."""
    staged = [tnm("t", "T2"), tnm("n", "N0"), tnm("m", "M0"), grade("g", "G3")]
    surgery = excision("x", performed="2020-02-15", reason="Condition/primary")
    return "S13" in shown(summary_of(*staged, surgery, today=date.fromisoformat(today)))


def local_options_after_clear_margins_on(today: str) -> tuple[bool, bool]:
    """The same tumour resected with clear margins (R0) on 2020-02-15, no radiotherapy: (S08 surgery with
    radiotherapy shown, S04 follow-up shown). Radiotherapy stays open 6 months; then it is surveillance."""
    staged = [tnm("t", "T2"), tnm("n", "N0"), tnm("m", "M0"), grade("g", "G3")]
    surgery = excision("x", performed="2020-02-15", reason="Condition/primary")
    margin_r0 = margin("r", "R0", date="2020-02-20")
    statements = shown(summary_of(*staged, surgery, margin_r0, today=date.fromisoformat(today)))
    return "S08" in statements, "S04" in statements


def status_asked_from_a_note_on(written: str) -> bool:
    """Doxorubicin for lung metastases from 2021-02-01; a progress note says "Progressive disease": the
    disease status is put in doubt for the clinician to confirm (G7)."""
    note = observation("pn", concept(LOINC, "11506-3"), value={"valueString": "Progressive disease."}, date=written)
    summary = summary_of(METASTASIS, med_administration("dox", DOXORUBICIN, start="2021-02-01"), note)
    return any(f.about == "disease_status" and f.sources == ("Observation/pn",) for f in summary.findings)


def status_asked_with_new_disease_coded_days_before(days: int) -> bool:
    """Doxorubicin for lung metastases from 2021-02-01; a liver metastasis coded ``days`` before a progress
    note of 2021-06-01 saying "Progressive disease": the note speaks of what the record codes."""
    written = "2021-06-01"
    note = observation("pn", concept(LOINC, "11506-3"), value={"valueString": "Progressive disease."}, date=written)
    liver = secondary("liver", snomed="94222008", onset=(date(2021, 6, 1) - timedelta(days=days)).isoformat())
    summary = summary_of(METASTASIS, med_administration("dox", DOXORUBICIN, start="2021-02-01"), liver, note)
    return any(f.about == "disease_status" and f.sources == ("Observation/pn",) for f in summary.findings)


def resected_by_unlinked_surgery_days_before_onset(days: int) -> bool | None:
    """An excision naming no Condition, its text naming a tumour, ``days`` before the primary's onset."""
    performed = (ONSET - timedelta(days=days)).isoformat()
    found = summary_of(excision("x", performed=performed, text="Excision of soft tissue tumour")).primary_resected
    return found.value if found else None


# --- The table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """A threshold, where it lives, its probe and the outcome for each value probed."""

    name: str
    where: str
    probe: Callable[[Any], Any]
    outcomes: Mapping[Any, Any]


TABLE = [
    # Synchronous = first metastasis at most 3 months (91.3 days) after the primary's onset.
    Threshold("synchronous-3-months", "summarise(synchronous_months=3.0), dates.months_between",
              timing_of_metastasis_after, {90: SYNC, 91: SYNC, 92: META}),
    # A new drug joins the line when it starts at most 21 days after the line did.
    Threshold("line-window-21-days", "drugs.yaml line_window_days",
              lines_with_a_drug_added_after, {20: 1, 21: 1, 22: 2}),
    # A course begun before the first metastasis and given on for the line window after it is advanced.
    Threshold("course-running-on-21-days", "drugs.yaml line_window_days",
              setting_of_a_course_running_on_after_the_metastasis,
              {20: "perioperative", 21: "advanced", 22: "advanced"}),
    # Doses of one drug at most 42 days apart are one course.
    Threshold("course-gap-42-days", "drugs.yaml course_gap_days", courses_of_two_doses, {41: 1, 42: 1, 43: 2}),
    # A line whose last dose was at most 42 days ago is in progress.
    Threshold("line-in-progress-42-days", "drugs.yaml course_gap_days",
              line_in_progress_after_last_dose, {41: True, 42: True, 43: False}),
    # Relapse at most 12 months after the last perioperative anthracycline dose (2020-03-15): pretreated.
    Threshold("perioperative-relapse-12-months", "drugs.yaml perioperative_relapse_months",
              pretreated_after_last_dose("2020-03-15"), {"2021-03-14": True, "2021-03-15": True, "2021-03-16": False}),
    Threshold("perioperative-relapse-12-months-from-january", "pretreatment.add_months",
              pretreated_after_last_dose("2020-01-15"), {"2021-01-14": True, "2021-01-15": True, "2021-01-16": False}),
    Threshold("perioperative-relapse-12-months-from-29-february", "pretreatment.add_months",
              pretreated_after_last_dose("2020-02-29"), {"2021-02-27": True, "2021-02-28": True, "2021-03-01": False}),
    # A performance status at most 90 days old is recent.
    Threshold("performance-status-90-days", "codes.yaml performance_status_recent_days",
              recent_when_recorded_days_ago, {89: True, 90: True, 91: False}),
    # Karnofsky to ECOG: the lowest score of each band (90, 70, 50, 30, 10), scores 0-100 only.
    Threshold("karnofsky-90", "codes.yaml karnofsky_to_ecog", ecog_from_karnofsky, {89: 1, 90: 0, 100: 0, 101: None}),
    Threshold("karnofsky-70", "codes.yaml karnofsky_to_ecog", ecog_from_karnofsky, {69: 2, 70: 1, 71: 1}),
    Threshold("karnofsky-50", "codes.yaml karnofsky_to_ecog", ecog_from_karnofsky, {49: 3, 50: 2, 51: 2}),
    Threshold("karnofsky-30", "codes.yaml karnofsky_to_ecog", ecog_from_karnofsky, {29: 4, 30: 3, 31: 3}),
    Threshold("karnofsky-10", "codes.yaml karnofsky_to_ecog", ecog_from_karnofsky,
              {-1: None, 0: 5, 9: 5, 10: 4, 11: 4}),
    # ECOG scores 0-5 only.
    Threshold("ecog-0-to-5", "performance._ecog_value", ecog_from_score, {-1: None, 0: 0, 5: 5, 6: None}),
    # Age 18 (G9 shows; G8 keeps adult systemic statements away): the birthday is the first day at 18.
    Threshold("age-18", "person.age_of, cards/G9.yaml and G8.yaml age max 17", age_and_adult_cards_on,
              {"2024-12-31": (17, True, False), "2025-01-01": (18, False, True), "2025-01-02": (18, False, True)}),
    # A partial birth date is read as its last possible day: the age is never overstated.
    Threshold("age-18-born-in-december", "person.age_of", age_born("2007-12"),
              {"2025-12-30": 17, "2025-12-31": 18}),
    Threshold("age-18-born-in-june", "person.age_of", age_born("2007-06"), {"2025-06-29": 17, "2025-06-30": 18}),
    Threshold("age-18-born-in-2007", "person.age_of", age_born("2007"), {"2025-12-30": 17, "2025-12-31": 18}),
    # Age 75 (G8): combination chemotherapy up to the day before the 75th birthday.
    Threshold("age-75", "person.age_of, cards/G8.yaml age min 75", age_and_combination_chemotherapy_on,
              {"2024-12-31": (74, True), "2025-01-01": (75, False), "2025-01-02": (75, False)}),
    # N not recorded and NX read as N0 (AJCC 8 has no NX for soft tissue sarcoma).
    Threshold("nx-reads-as-n0", "extent._nodes_unknown_as_n0, tnm._nodes", nodes_and_stage,
              {None: ("N0", StageGroup.IA), "NX": ("N0", StageGroup.IA), "N0": ("N0", StageGroup.IA),
               "N1": ("N1", StageGroup.IV)}),
    # T from size, trunk and extremity (and retroperitoneum): upper bounds 5, 10 and 15 cm inclusive.
    Threshold("t-5-cm-extremity", "ajcc8.yaml size_to_t", t_of_size("C49.2"), {4.9: "T1", 5.0: "T1", 5.1: "T2"}),
    Threshold("t-10-cm-extremity", "ajcc8.yaml size_to_t", t_of_size("C49.2"), {9.9: "T2", 10.0: "T2", 10.1: "T3"}),
    Threshold("t-15-cm-extremity", "ajcc8.yaml size_to_t", t_of_size("C49.2"), {14.9: "T3", 15.0: "T3", 15.1: "T4"}),
    Threshold("t-5-cm-trunk", "ajcc8.yaml size_to_t", t_of_size("C49.3"), {4.9: "T1", 5.0: "T1", 5.1: "T2"}),
    Threshold("t-10-cm-trunk", "ajcc8.yaml size_to_t", t_of_size("C49.3"), {9.9: "T2", 10.0: "T2", 10.1: "T3"}),
    Threshold("t-15-cm-trunk", "ajcc8.yaml size_to_t", t_of_size("C49.3"), {14.9: "T3", 15.0: "T3", 15.1: "T4"}),
    Threshold("t-15-cm-retroperitoneum", "ajcc8.yaml size_to_t", t_of_size("C48.0"),
              {4.9: "T1", 5.0: "T1", 5.1: "T2", 15.0: "T3", 15.1: "T4"}),
    Threshold("t-2-and-4-cm-head-and-neck", "ajcc8.yaml size_to_t", t_of_size("C49.0"),
              {1.9: "T1", 2.0: "T1", 2.1: "T2", 4.0: "T2", 4.1: "T3"}),
    # Growth, RECIST-like: sizes at least 8 weeks (56 days) apart, at least 20 % and 5 mm larger.
    Threshold("growth-8-weeks", "codes.yaml judgements.recist min_weeks",
              lambda days: growth_of(5.0, 8.0, days), {55: None, 56: GROWING, 57: GROWING}),
    Threshold("growth-20-percent", "codes.yaml judgements.recist min_larger_percent",
              lambda cm: growth_of(5.0, cm, 84), {5.95: NOT_GROWING, 6.0: GROWING, 6.05: GROWING}),
    Threshold("growth-5-mm", "codes.yaml judgements.recist min_larger_mm",
              lambda cm: growth_of(2.0, cm, 84), {2.4: NOT_GROWING, 2.5: GROWING, 2.6: GROWING}),
    # A dated treatment in a problem's text ("s/p TAH 2023") makes it past once that year ended 12 months ago.
    Threshold("past-diagnosis-12-months", "codes.yaml past_diagnosis.dated_treatment_min_months", past_diagnosis_on,
              {"2024-11-30": Diagnosis.STS, "2024-12-01": Diagnosis.NONE, "2025-01-01": Diagnosis.NONE}),
    # Entered-in-error (and cancelled, refuted) records are never used.
    Threshold("entered-in-error-ecog", "observations.NOT_RESULTS", ecog_with_status,
              {"final": 1, "amended": 1, "entered-in-error": None, "cancelled": None}),
    Threshold("entered-in-error-tnm", "observations.NOT_RESULTS", t_with_status,
              {"final": "T2", "preliminary": "T2", "entered-in-error": None}),
    Threshold("entered-in-error-metastasis", "codes.yaml condition.excluded_verification_status",
              m_with_metastasis_verified, {"confirmed": "M1", "entered-in-error": None, "refuted": None}),
    Threshold("entered-in-error-primary", "codes.yaml condition.excluded_verification_status", diagnosis_verified,
              {"confirmed": Diagnosis.STS, "entered-in-error": Diagnosis.NONE, "refuted": Diagnosis.NONE}),
    Threshold("entered-in-error-statement", "drugs.yaml excluded_status", drugs_with_status(med_statement),
              {"completed": frozenset({"doxorubicin"}), "entered-in-error": frozenset()}),
    Threshold("entered-in-error-request", "drugs.yaml excluded_status", drugs_with_status(med_request),
              {"completed": frozenset({"doxorubicin"}), "entered-in-error": frozenset()}),
    Threshold("entered-in-error-administration", "drugs.yaml excluded_status", drugs_with_status(med_administration),
              {"completed": frozenset({"doxorubicin"}), "entered-in-error": frozenset()}),
    Threshold("entered-in-error-procedure", "procedures.yaml counted_status", resected_with_status,
              {"completed": True, "entered-in-error": False}),
    # Surgery naming no Condition counts as the primary's resection up to 90 days before its onset.
    Threshold("unlinked-surgery-90-days", "procedures.yaml unlinked_before_onset_days",
              resected_by_unlinked_surgery_days_before_onset, {89: True, 90: True, 91: False}),
    # Adjuvant chemotherapy (S13) is a decision of the 6 months after resection (2020-02-15).
    Threshold("adjuvant-6-months", "cards/S13.yaml months_since_resection max 6", adjuvant_chemotherapy_offered_on,
              {"2020-08-14": True, "2020-08-17": True, "2020-08-18": False}),  # 5.9, 6.0, 6.1 months
    # Postoperative radiotherapy (S08) is open 6 months after a resection with clear margins, then it is
    # follow-up (S04).
    Threshold("clear-margins-follow-up-6-months", "cards/S08.yaml max 6, cards/S04.yaml min 6.1",
              local_options_after_clear_margins_on,
              {"2020-08-14": (True, False), "2020-08-17": (True, False), "2020-08-18": (False, True)}),
    # A note's progression asks about a line 42 days after it began (2021-02-01), as new disease.
    Threshold("note-progression-42-days", "drugs.yaml new_disease_margin_days", status_asked_from_a_note_on,
              {"2021-03-14": False, "2021-03-15": True, "2021-03-16": True}),
    # A note's progression is no doubt when new disease is coded at most 42 days before it (or since).
    Threshold("note-progression-coded-new-disease-42-days", "drugs.yaml coded_new_disease_days",
              status_asked_with_new_disease_coded_days_before, {41: False, 42: False, 43: True, -5: False}),
]  # fmt: skip


@pytest.mark.parametrize("threshold", TABLE, ids=lambda t: t.name)
def test_each_threshold_sits_exactly_where_the_table_says(threshold: Threshold) -> None:
    assert {value: threshold.probe(value) for value in threshold.outcomes} == dict(threshold.outcomes)


def test_the_table_names_each_threshold_once() -> None:
    names = [t.name for t in TABLE]
    assert len(names) == len(set(names))
