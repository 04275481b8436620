"""Disease status and progression (S38)."""

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
    med_request,
    observation,
    patient,
    primary,
    rxnorm,
    secondary,
    size,
)

from cds_service.summary import summarise
from cds_service.summary.model import DiseaseStatus, FindingKind

TODAY = date(2025, 1, 1)
BASE = [primary(snomed="443719001", onset="2020-01-01"), secondary("lung", onset="2021-01-01")]
DOXORUBICIN = rxnorm("1790099")
TRABECTEDIN = {"text": "trabectedin"}


def test_latest_status_wins() -> None:
    summary = summarise(
        [*BASE, disease_status("a", "worsened", date="2021-01-01"), disease_status("b", "stable", date="2021-06-01")],
        today=TODAY,
    )
    assert summary.disease_status.value is DiseaseStatus.STABLE


def test_worsening_after_line_start_is_progression() -> None:
    summary = summarise(
        [
            *BASE,
            med_administration("d", DOXORUBICIN, start="2021-02-01"),
            disease_status("s", "worsened", date="2021-08-01"),
        ],
        today=TODAY,
    )
    assert summary.progression.value is True and summary.progression.sources == ("Observation/s",)


def test_worsening_before_latest_line_is_not_progression() -> None:
    summary = summarise(
        [
            *BASE,
            disease_status("s", "worsened", date="2021-01-15"),
            med_administration("d", DOXORUBICIN, start="2021-02-01"),
        ],
        today=TODAY,
    )
    assert summary.progression.value is False


def test_stop_for_no_response_is_progression() -> None:
    summary = summarise(
        [*BASE, med_request("d", DOXORUBICIN, start="2021-02-01", status="stopped", stop_reason="266721009")],
        today=TODAY,
    )
    assert summary.progression.value is True


def test_no_status_and_no_stop_is_unknown() -> None:
    assert summarise(BASE, today=TODAY).progression is None


def test_the_disease_status_and_the_progression_it_rules_out_in_full() -> None:
    chart = [primary(snomed="443719001", body_site="61685007", onset="2020-01-01")]
    summary = summarise([*chart, disease_status("ds", "stable", date="2024-06-01")], today=TODAY)
    status, progression = summary.disease_status, summary.progression
    assert (status.value.value, status.sources, status.basis, status.when) == (
        "stable",
        ("Observation/ds",),
        "latest cancer disease status",
        date(2024, 6, 1),
    )
    assert (progression.value, progression.sources, progression.basis, progression.when) == (
        False,
        ("Observation/ds",),
        "latest disease status stable",
        date(2024, 6, 1),
    )


# --- Progression and death a clinician's note records ------------------------------------------------


def progress_note(id: str, text: str, date: str) -> dict[str, Any]:
    return observation(id, concept(LOINC, "11506-3"), value={"valueString": text}, date=date)


ON_LINE = [*BASE, med_administration("d", DOXORUBICIN, start="2021-02-01")]  # line 1 began 2021-02-01


def in_doubt(summary: Any) -> bool:
    """The disease status and the progression both put in doubt for the clinician to confirm (G7)."""
    found = {f.about for f in summary.findings if f.kind is FindingKind.AMBIGUOUS}
    return {"disease_status", "progression"} <= found


@pytest.mark.parametrize(
    "text",
    [
        "CT reviewed: clear progression of lung metastases (RECIST PD).",
        "Progressive disease on doxorubicin.",
        "Disease progression in both lungs.",
        "Has progressed after 4 cycles.",
        "Interval increase in size of bilateral pulmonary nodules; new hepatic lesions.",
        # a comparison with an earlier scan is no past event; nor is the date the present course began
        "Compared with prior CT of 12/2020, interval increase in size and number of pulmonary metastases.",
        "Interval enlargement of pulmonary metastases, largest now 3.1 cm, previously 1.8 cm.",
        "Since starting doxorubicin in 12/2020 there has been disease progression.",
        "Overall response (RECIST 1.1): PD.",
    ],
)
def test_progression_a_note_speaks_of_asks_to_confirm_the_status_and_opens_no_line(text: str) -> None:
    """Free text is too easily about something else to open later-line options by itself (G7 asks)."""
    summary = summarise([*ON_LINE, progress_note("n", text, "2021-06-01")], today=TODAY)
    assert in_doubt(summary)
    assert summary.progression is None or summary.progression.value is not True
    assert summary.lines_of_therapy is not None and summary.lines_of_therapy.value == 1
    assert summary.disease_status is not None and summary.disease_status.sources == ("Observation/n",)
    assert summary.progression_noted is not None and summary.progression_noted.sources == ("Observation/n",)


@pytest.mark.parametrize(
    "text",
    [
        "No evidence of disease progression.",
        "Possible progression of lung metastases, to be confirmed.",
        "Findings suspicious for progression.",
        "Previously progressed on ifosfamide.",
        "Pseudoprogression after radiotherapy.",
        "Progressed on doxorubicin in 2019; now stable disease.",  # the same note says stable: no conclusion
        "Progression-free since surgery.",
        "Disease progression in 2019.",
        "Lesion previously 1.8 cm; progressed on ifosfamide previously.",
        "Overall response (RECIST 1.1): SD.",
    ],
)
def test_a_note_that_does_not_speak_of_progression_plainly_asks_nothing(text: str) -> None:
    summary = summarise([*ON_LINE, progress_note("n", text, "2021-06-01")], today=TODAY)
    assert summary.progression is None and not in_doubt(summary) and summary.progression_noted is None


@pytest.mark.parametrize(("written", "asked"), [("2021-03-14", False), ("2021-03-15", True)])
def test_a_note_asks_about_a_line_only_six_weeks_after_it_began(written: str, asked: bool) -> None:
    """A note written as the line starts tells of the disease it was started for (42 days, as new disease)."""
    summary = summarise([*ON_LINE, progress_note("n", "Progressive disease.", written)], today=TODAY)
    assert in_doubt(summary) is asked


def test_a_coded_status_of_the_same_or_a_later_date_leaves_the_note_unasked() -> None:
    summary = summarise(
        [
            *ON_LINE,
            progress_note("n", "Progressive disease.", "2021-06-01"),
            disease_status("s", "stable", date="2021-06-01"),
        ],
        today=TODAY,
    )
    assert summary.disease_status is not None and summary.disease_status.value is DiseaseStatus.STABLE
    assert summary.progression is not None and summary.progression.value is False and not in_doubt(summary)


def test_a_note_never_takes_away_a_coded_progression() -> None:
    summary = summarise(
        [
            *ON_LINE,
            disease_status("s", "worsened", date="2021-06-01"),
            progress_note("n", "Stable disease.", "2021-07-01"),
        ],
        today=TODAY,
    )
    assert summary.progression is not None and summary.progression.value is True


def test_a_coded_progression_needs_no_confirmation_from_a_note() -> None:
    summary = summarise(
        [
            *ON_LINE,
            disease_status("s", "worsened", date="2021-06-01"),
            progress_note("n", "Progressive disease.", "2021-07-01"),
        ],
        today=TODAY,
    )
    assert summary.progression is not None and summary.progression.value is True and not in_doubt(summary)


@pytest.mark.parametrize(
    ("text", "noted"),
    [
        ("Patient died at home on 21/02/2021.", True),
        ("Time of death 03:10, pronounced dead by the night registrar.", True),
        ("Telephone call from daughter: patient died at home.", True),  # the patient, whoever called
        ("Father died of colon cancer aged 60.", False),  # family history: not the patient
        ("His brother was pronounced dead at the scene.", False),
        ("Patient wishes to be at home at the time of death.", False),  # a wish, not a death
        ("Patient died in 2019 according to the old chart.", False),  # a year before the note's: not now
        ("Patient was seen today, alive and well.", False),
    ],
)
def test_death_a_note_records_plainly_is_noted_for_confirmation_not_taken_as_death(text: str, noted: bool) -> None:
    summary = summarise([*BASE, progress_note("n", text, "2021-06-01")], today=TODAY)
    assert summary.deceased is None
    assert (summary.death_noted is not None and summary.death_noted.value) is noted


@pytest.mark.parametrize(("reason", "noted"), [("419099009", True), ("397709008", True), ("266721009", False)])
def test_an_order_stopped_because_the_patient_died_is_noted_for_confirmation(reason: str, noted: bool) -> None:
    """SNOMED "Dead" or "Patient died" as the stop reason of an order; "no response" is not a death."""
    order = med_request("o", rxnorm("1790099"), start="2021-02-01", status="stopped", stop_reason=reason)
    summary = summarise([*BASE, order], today=TODAY)
    assert summary.deceased is None
    assert (summary.death_noted is not None and summary.death_noted.value) is noted


@pytest.mark.parametrize(
    ("reason", "noted"),
    [("Patient passed away at home on 20/02/2026", True), ("Cycle deferred: death in family (husband)", False)],
)
def test_a_death_written_as_a_status_reason_is_read_as_a_note_is(reason: str, noted: bool) -> None:
    order = {
        **med_request("o", rxnorm("1790099"), start="2021-02-01", status="stopped"),
        "statusReason": {"text": reason},
    }
    summary = summarise([*BASE, order], today=TODAY)
    assert (summary.death_noted is not None) is noted


def test_a_dose_not_given_or_an_order_cancelled_because_the_patient_died_is_noted_too() -> None:
    not_given = {
        **med_administration("a", rxnorm("1790099"), start="2021-02-01", status="not-done"),
        "statusReason": [{"text": "Patient died at home"}],
    }
    summary = summarise([*BASE, not_given], today=TODAY)
    assert summary.death_noted is not None and summary.death_noted.sources == ("MedicationAdministration/a",)


def test_death_the_record_holds_leaves_nothing_to_confirm() -> None:
    died = progress_note("n", "Patient died at home.", "2021-06-01")
    summary = summarise([*BASE, patient("p1", deceasedDateTime="2021-05-30"), died], today=TODAY)
    assert summary.deceased is not None and summary.deceased.value and summary.death_noted is None


BREAST = condition("breast", concept(SNOMED, "353431000119107"), onset="2020-06-01")  # active breast cancer


@pytest.mark.parametrize(("focus", "asked"), [(None, False), ("Condition/primary", True)])
def test_beside_another_active_cancer_only_a_note_on_the_sarcoma_asks_about_its_course(
    focus: str | None, asked: bool
) -> None:
    note = progress_note("n", "Progressive disease.", "2021-06-01")
    if focus:
        note["focus"] = [{"reference": focus}]
    summary = summarise([*ON_LINE, BREAST, note], today=TODAY)
    assert in_doubt(summary) is asked


@pytest.mark.parametrize(
    "text",
    [
        "Evidence of progression (Y/N): N",  # a form's answer
        "Disease progression - no; lung nodules smaller.",
        "CT negative for disease progression.",
        "Her mother's breast cancer has progressed.",  # another person's, another cancer's
        "PSMA PET shows metastatic progression of the prostate cancer.",
        "MRI knee: degenerative disease progression.",  # another disease
        "Mixed response: progression of lung metastases, others smaller.",
        "Oncology history: progressive disease on first-line doxorubicin.",
        "Progressive disease on doxorubicin in 2020.",  # a year before the note's own
        "11/14/20 CT showed progressive disease on doxorubicin.",  # a date with a two-digit year
        "He progressed on doxorubicin last year and was switched to the current drug.",
        "Disease progression: [ ] Yes [X] No",  # which box is ticked is not read
        "IPF: radiological progression on HRCT.",  # another disease of the lung
        "Slight interval increase of a 6 mm liver lesion, within measurement variability.",
    ],
)
def test_a_note_about_someone_or_something_else_or_saying_no_asks_nothing(text: str) -> None:
    summary = summarise([*ON_LINE, progress_note("n", text, "2021-06-01")], today=TODAY)
    assert not in_doubt(summary) and (summary.progression is None or summary.progression.value is False)


def test_a_worsening_after_the_line_began_stands_though_a_later_status_says_stable() -> None:
    summary = summarise(
        [
            *ON_LINE,
            disease_status("w", "worsened", date="2021-06-01"),
            disease_status("s", "stable", date="2021-09-01"),
        ],
        today=TODAY,
    )
    assert summary.disease_status is not None and summary.disease_status.value is DiseaseStatus.STABLE
    assert summary.progression is not None and summary.progression.value is True
    assert summary.progression.sources == ("Observation/w",)


@pytest.mark.parametrize(
    ("resources", "disputed"),
    [
        ([progress_note("n", "CT reviewed at MDT: no convincing progression.", "2021-06-20")], True),
        ([progress_note("n", "Stable disease.", "2021-05-20")], False),  # the note predates the coded worsening
        ([progress_note("n", "Radiology report reviewed.", "2021-06-20")], False),  # says nothing of the status
        (  # a line begun after the worsening: the note speaks of that line
            [
                med_administration("t", TRABECTEDIN, start="2021-06-10"),
                progress_note("n", "Stable disease.", "2021-08-20"),
            ],
            False,
        ),
    ],
)
def test_a_later_note_saying_no_progression_is_named_and_the_coded_progression_stands(
    resources: list[dict[str, Any]], disputed: bool
) -> None:
    worsened = disease_status("s", "worsened", date="2021-06-01")
    summary = summarise([*ON_LINE, worsened, *resources], today=TODAY)
    assert (summary.progression_disputed is not None) is disputed
    assert not in_doubt(summary)
    if not any(r["resourceType"] == "MedicationAdministration" for r in resources):
        assert summary.progression is not None and summary.progression.value is True


@pytest.mark.parametrize(("onset", "doubt"), [("2021-01-01", True), ("2021-06-02", False)])
def test_a_metastasis_recorded_as_recurred_without_its_date_puts_progression_in_doubt(onset: str, doubt: bool) -> None:
    """Its clinical status says it came back, its onset is still the first one (before the line): when it
    came back, and so whether the disease progressed on the line, is not recorded. Recorded as a new
    onset after the line began, it is the progression itself."""
    recurred = secondary("lung", onset=onset, clinical="recurrence")
    line = med_administration("dox", rxnorm("1790099"), start="2021-06-01")
    summary = summarise([BASE[0], recurred, line], today=TODAY)
    found = [f for f in summary.findings if f.about == "progression" and f.kind is FindingKind.AMBIGUOUS]
    assert bool(found) is doubt


@pytest.mark.parametrize(("drug", "doubt"), [(False, True), (True, False)])
def test_a_response_recorded_with_no_anticancer_drug_on_record_leaves_the_lines_unknown(
    drug: bool, doubt: bool
) -> None:
    """A patient transferred with the treatment given elsewhere: "no prior line" would be read from a gap."""
    given = [med_administration("dox", rxnorm("1790099"), start="2021-02-01")] if drug else []
    summary = summarise([*BASE, *given, disease_status("ds", "improved", date="2021-06-01")], today=TODAY)
    gaps = [f for f in summary.findings if f.about == "lines_of_therapy" and f.kind is FindingKind.INCOMPLETE]
    assert bool(gaps) is doubt


@pytest.mark.parametrize(
    ("reason", "progressed"),
    [
        ("Disease progression on CT 18/02/2026 - discontinued", True),
        ("Progressive disease", True),
        ("Toxicity: grade 3 neutropenia", False),
        ("Suspected progression, CT to confirm", False),  # a hedge is not a finding
        ("No progression; stopped for fatigue", False),
        ("Progression", True),  # the whole reason
        ("PD", True),
        ("Progression of knee arthritis", False),  # another disease
    ],
)
def test_an_order_stopped_for_progression_in_words_is_progression_on_its_line(reason: str, progressed: bool) -> None:
    """The stop reason's words are read as a note is; only plain progression ends the line for no response."""
    order = {
        **med_request("o", rxnorm("1790099"), start="2021-02-01", end="2021-05-01", status="stopped"),
        "statusReason": {"text": reason},
    }
    summary = summarise([*BASE, order], today=TODAY)
    assert summary.therapies[0].stop_reason == ("266721009" if progressed else None)
    assert (summary.progression is not None and summary.progression.value is True) is progressed


@pytest.mark.parametrize(
    ("drug", "reason", "dose_after", "declines"),
    [
        (DOXORUBICIN, "105480006", False, True),  # chemotherapy refused by the patient (coded)
        (DOXORUBICIN, "407563006", False, False),  # not tolerated: no wish recorded
        (rxnorm("338036"), "105480006", False, False),  # pegfilgrastim refused: not an anticancer drug
        (DOXORUBICIN, "105480006", True, False),  # a dose given since: the refusal is past
    ],
)
def test_an_anticancer_order_the_patient_refused_is_no_line_and_records_the_wish(
    drug: dict[str, Any], reason: str, dose_after: bool, declines: bool
) -> None:
    order = med_request("o", drug, start="2021-02-01", status="stopped", stop_reason=reason)
    later = [med_administration("a", rxnorm("1719003"), start="2021-04-01")] if dose_after else []
    summary = summarise([*BASE, order, *later], today=TODAY)
    wish = summary.treatment_wish
    assert (
        wish is not None and wish.value == "no-chemotherapy" and wish.sources == ("MedicationRequest/o",)
    ) is declines
    if reason == "105480006" and drug is DOXORUBICIN:
        assert "doxorubicin" not in summary.prior_drugs.value  # refused before a dose: never given


LUNG_MET = "Condition/lung"


@pytest.mark.parametrize(
    ("sizes", "progressed"),
    [
        ([("2024-09-20", 2.0), ("2024-12-20", 3.4)], True),  # +70 %, +14 mm since the baseline before the line
        ([("2024-09-20", 2.0), ("2024-12-20", 2.3)], False),  # +15 %: not growing
        ([("2024-01-01", 1.0), ("2024-09-20", 3.0), ("2024-12-20", 2.5)], False),  # grew before the line, shrinks on it
        ([("2024-09-20", 2.0), ("2024-11-01", 1.5), ("2024-12-20", 2.1)], True),  # +40 % and +6 mm from the nadir
    ],
)
def test_a_lesion_measured_larger_since_the_line_began_is_progression_on_it(
    sizes: list[tuple[str, float]], progressed: bool
) -> None:
    """RECIST-like (R2): at least 20 % and 5 mm larger than its smallest size since the line's baseline."""
    measured = [size(f"s{i}", cm, date=when, focus=LUNG_MET) for i, (when, cm) in enumerate(sizes)]
    line = [
        med_administration(f"d{i}", DOXORUBICIN, start=day)
        for i, day in enumerate(["2024-10-01", "2024-10-22", "2024-11-12", "2024-12-03"])
    ]
    summary = summarise([*BASE, *line, *measured], today=TODAY)
    assert (summary.progression is not None and summary.progression.value is True) is progressed
    assert summary.line_ongoing.value is not progressed


@pytest.mark.parametrize(("irradiated", "progressed"), [(True, False), (False, True)])
def test_an_irradiated_primary_measured_larger_is_not_progression_on_the_line(
    irradiated: bool, progressed: bool
) -> None:
    """Palliative radiotherapy to the primary in November: swelling and necrosis enlarge it."""
    from fhir_builders import radiotherapy

    measured = [
        size(f"p{i}", cm, date=when, focus="Condition/primary")
        for i, (when, cm) in enumerate([("2024-09-20", 9.0), ("2024-12-20", 11.0)])
    ]
    line = [med_administration(f"d{i}", DOXORUBICIN, start=day) for i, day in enumerate(["2024-10-01", "2024-12-03"])]
    rt = [radiotherapy("rt", start="2024-11-04", end="2024-11-15", reason="Condition/primary")] if irradiated else []
    summary = summarise([*BASE, *line, *measured, *rt], today=TODAY)
    assert (summary.progression is not None and summary.progression.value is True) is progressed
