"""Clinician free text: each phrase class read plainly, and its negated, answered and hedged forms."""

from __future__ import annotations

from datetime import date

import pytest
from fhir.resources.R4B.condition import Condition
from fhir_builders import ICD10, LOINC, concept, condition, disease_status, observation, primary
from pydantic import ValidationError

from cds_service.summary import summarise
from cds_service.summary.notes import (
    QUOTE_MAX,
    Note,
    PhraseTable,
    names_tumour,
    notes_of,
    phrase_table,
    raw_notes,
    says,
)


def said(text: str) -> dict[str, str]:
    return {s.judgement: s.value for s in says(Note("Condition/x", date(2025, 5, 10), text))}


@pytest.mark.parametrize(
    "text, value",
    [
        ("Judged unresectable at MDT.", "unresectable"),
        ("Plan re-excision with 2 cm margins and reconstruction.", "resectable"),
        ("Plan: wide re-excision with 2-3 cm margins and flap reconstruction, booked 20/03/2026.", "resectable"),
        ("Plan: re-excision with 2 cm margins", "resectable"),
        ("No re-excision planned; unresectable.", "unresectable"),
        ("Tumour is unresectable", "unresectable"),
        ("Not resectable", "unresectable"),
        ("Non-resectable disease", "unresectable"),
        ("Tumour is not thought to be resectable", "unresectable"),
        ("Not amenable to surgery", "unresectable"),
        ("Not amenable to metastasectomy.", "unresectable"),
        ("Resectable? no", "unresectable"),
        ("Resectable: yes", "resectable"),
        ("Resectable", "resectable"),
        ("Not unresectable", "resectable"),
    ],
)
def test_resectability_is_read_through_negations_and_answers(text: str, value: str) -> None:
    assert said(text) == {"resectability": value}


@pytest.mark.parametrize(
    "text",
    [
        "Possibly unresectable",
        "?unresectable",
        "? unresectable",
        "May be resectable",
        "Likely inoperable",
        "Resectable, to be confirmed at MDT",
        "Resectable?",
        "Resectable or borderline",
        "Previously unresectable",
        "Chemotherapy to make it resectable",
        "Resectable if it shrinks",
    ],
)
def test_hedged_or_past_resectability_gives_no_conclusion(text: str) -> None:
    assert said(text) == {}


def test_a_later_clause_is_read_apart_from_an_earlier_past_one() -> None:
    assert said("Previously unresectable, now resectable after chemotherapy") == {"resectability": "resectable"}


@pytest.mark.parametrize(
    "text, value",
    [
        ("Patient asymptomatic", "false"),
        ("No symptoms", "false"),
        ("Symptom-free", "false"),
        ("Symptomatic from the lung lesions", "true"),
        ("No longer asymptomatic", "true"),
        ("Not symptomatic", "false"),
        ("No tumour-related pain", "false"),
        ("Tumour-related pain", "true"),
        ("Asymptomatic: no cough, no breathlessness.", "false"),  # findings after the colon, not an answer
        ("Asymptomatic: no", "true"),  # a form's answer
        ("Symptomatic: no.", "false"),
    ],
)
def test_symptoms_are_read_through_negations(text: str, value: str) -> None:
    assert said(text) == {"symptomatic": value}


@pytest.mark.parametrize("text", ["Possibly symptomatic", "?symptomatic", "Symptomatic? unclear"])
def test_hedged_symptoms_give_no_conclusion(text: str) -> None:
    assert said(text) == {}


@pytest.mark.parametrize(
    "text, value",
    [
        ("Slow growth over 6 months", "slow"),
        ("Slow-growing lesions", "slow"),
        ("Indolent disease", "slow"),
        ("Rapidly growing mass", "rapid"),
        ("Rapid progression in lung", "rapid"),
        ("Stable disease", "not-growing"),
    ],
)
def test_growth_rate_is_read(text: str, value: str) -> None:
    assert said(text).get("growth") == value


def test_a_phrase_may_speak_to_two_judgements() -> None:
    assert said("Stable disease") == {"growth": "not-growing", "disease_status": "stable"}


@pytest.mark.parametrize(
    "text", ["Not rapidly growing", "Not slow-growing", "Possibly slow growth", "Maybe rapidly growing"]
)
def test_negated_or_hedged_growth_rate_gives_no_conclusion(text: str) -> None:
    assert said(text) == {}


@pytest.mark.parametrize(
    "text, value",
    [
        ("Neoadjuvant chemotherapy for downsizing", "true"),
        ("Aim: tumour reduction needed to allow surgery", "true"),
        ("Chemotherapy to allow resection", "true"),
        ("Aim of chemotherapy: tumour shrinkage to relieve pain", "true"),
        ("No need for downsizing", "false"),
        ("Response not needed", "false"),
    ],
)
def test_the_aim_of_a_response_is_read(text: str, value: str) -> None:
    assert said(text) == {"response_needed": value}


@pytest.mark.parametrize("text", ["Downsizing if possible", "Possibly downsizing", "Tumour shrinkage of 30 %"])
def test_a_hedged_aim_or_a_measured_response_gives_no_conclusion(text: str) -> None:
    assert said(text) == {}


@pytest.mark.parametrize(
    "text, value",
    [
        ("Wide local excision, right thigh, R0", "R0"),
        ("R1 resection", "R1"),
        ("Margins clear", "R0"),
        ("Margins not involved", "R0"),
        ("Close margins at the deep edge", "close"),
        ("Excised with close deep margin (0.5 mm) at the fascia", "close"),
        ("The deep margin is close", "close"),
        ("Positive margin", "R1"),
        ("Gross residual disease", "R2"),
    ],
)
def test_margins_are_read(text: str, value: str) -> None:
    assert said(text) == {"margin_from_note": value}


@pytest.mark.parametrize(
    "text",
    [
        "?R1",
        "Not R0",
        "No close margins",
        "Possibly close margins",
        "Wide excision with clear margins planned",
        "Aim for an R0 resection",
    ],
)
def test_negated_or_hedged_margins_give_no_conclusion(text: str) -> None:
    assert said(text) == {}


def test_phrases_of_one_sentence_that_disagree_give_no_conclusion() -> None:
    assert said("Unresectable but resectable") == {}


def test_each_judgement_of_a_sentence_is_read() -> None:
    assert said("Asymptomatic; small lung and liver lesions, minimal growth") == {
        "symptomatic": "false",
        "growth": "slow",
    }


def test_the_sentence_is_quoted_and_a_long_one_cut() -> None:
    short = says(Note("Condition/x", None, "Seen today. Judged unresectable at MDT. Plan RT."))
    assert [s.sentence for s in short] == ["Judged unresectable at MDT."]
    text = "Judged unresectable " + "because of encasement " * 20
    quoted = says(Note("Condition/x", None, text))[0].sentence
    kept = quoted.removesuffix("…")
    assert len(quoted) <= QUOTE_MAX and quoted != kept and text.startswith(kept + " ")  # cut after a whole word


def test_a_decimal_point_does_not_end_a_sentence() -> None:
    assert [s.sentence for s in says(Note("O/x", None, "Lesion 4.5 cm, unresectable."))] == [
        "Lesion 4.5 cm, unresectable."
    ]


def test_notes_are_dated_by_their_own_time_else_by_the_resource() -> None:
    resource = Condition.model_validate(
        primary("p", note=[{"text": "Unresectable", "time": "2025-05-10T09:00:00Z"}, {"text": "Asymptomatic"}])
    )
    notes = notes_of("Condition/p", resource, date(2020, 1, 1))
    assert [(n.when, n.text) for n in notes] == [
        (date(2025, 5, 10), "Unresectable"),
        (date(2020, 1, 1), "Asymptomatic"),
    ]


def test_a_text_only_code_is_read_as_a_note_and_a_coded_one_is_not() -> None:
    text_only = Condition.model_validate(condition("p", {"text": "Unresectable sarcoma"}))
    coded = Condition.model_validate(condition("p", concept(ICD10, "C49.22", text="Unresectable sarcoma")))
    assert [n.text for n in notes_of("Condition/p", text_only, None)] == ["Unresectable sarcoma"]
    assert notes_of("Condition/p", coded, None) == []


def test_raw_observation_notes_and_value_string_are_read() -> None:
    raw = disease_status("ds", "stable", date="2025-04-15", note=[{"text": "Asymptomatic"}, "not a note"])
    assert raw_notes("Observation/ds", raw, date(2025, 4, 15)) == [
        Note("Observation/ds", date(2025, 4, 15), "Asymptomatic")
    ]
    assert raw_notes("Observation/x", {"valueString": "slow growth"}, None) == [
        Note("Observation/x", None, "slow growth")
    ]


@pytest.mark.parametrize("raw", [{"note": 5}, {"note": "Unresectable"}, {"note": [{"text": 5}]}, {"valueString": 3}])
def test_damaged_raw_notes_are_skipped(raw: dict[str, object]) -> None:
    assert raw_notes("Observation/x", raw, None) == []


def test_tumour_words_are_whole_words() -> None:
    assert names_tumour("Tumour judged unresectable") and names_tumour("lung lesions")
    assert not names_tumour("Asymptomatic HIV infection") and not names_tumour("massage therapy")


def test_a_phrase_table_value_the_fact_does_not_take_is_refused() -> None:
    data = phrase_table().model_dump()
    data["judgements"]["growth"]["values"]["fast"] = ["very fast"]
    with pytest.raises(ValidationError, match="not a value of this fact"):
        PhraseTable.model_validate(data)


def test_a_phrase_table_judgement_that_is_not_a_fact_is_refused() -> None:
    data = phrase_table().model_dump()
    data["judgements"]["fitness"] = {"values": {"fit": ["fit"]}, "negated": {}}
    with pytest.raises(ValidationError, match="not a fact"):
        PhraseTable.model_validate(data)


def test_an_unquoted_yes_or_no_in_the_phrase_table_is_refused() -> None:
    data = phrase_table().model_dump()
    data["answers_no"] = [False]
    with pytest.raises(ValidationError):
        PhraseTable.model_validate(data)


@pytest.mark.parametrize(
    "text, value",
    [
        ("Clear margins are the planned outcome.", None),  # the hedge one word after
        ("Clear margins at surgery were planned.", None),  # the fourth word after
        ("Clear margins at the deep edge planned.", "R0"),  # the fifth word after: too far to hedge it
        ("Clear margins at the deep edge, as planned.", "R0"),  # another clause
        ("As planned, clear margins.", "R0"),
    ],
)
def test_a_margin_is_hedged_by_an_aim_up_to_four_words_after_it(text: str, value: str | None) -> None:
    assert said(text) == ({"margin_from_note": value} if value else {})


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Two hepatic lesions compatible with metastases.", "few"),
        ("Two new hepatic lesions compatible with metastases.", None),  # added to those there: at least two
        ("Three additional pulmonary nodules.", None),
        ("Six new pulmonary nodules.", "many"),
    ],
)
def test_a_count_of_new_lesions_is_a_least_number_never_few(text: str, value: str | None) -> None:
    assert said(text).get("metastatic_lesions") == value


@pytest.mark.parametrize("text", ["Lung mets since 3/2024 with lung mets", "Relapse 2024 lung nodules"])
def test_a_date_or_a_year_counts_no_lesions(text: str) -> None:
    assert "metastatic_lesions" not in said(text)


def test_a_discharge_note_is_read_like_a_progress_note() -> None:
    note = observation(
        "d", concept(LOINC, "28574-2"), value={"valueString": "Patient expired at 03:40."}, date="2025-05-01"
    )
    summary = summarise([primary(snomed="443719001", onset="2020-01-01"), note], today=date(2025, 6, 1))
    assert summary.death_noted is not None and summary.death_noted.value


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Multiple (at least 8) bilateral pulmonary nodules up to 2.4 cm, in keeping with metastases.", "many"),
        ("Bilateral pulmonary metastases (multiple, up to 2.4 cm).", "many"),
        ("Two lung metastases (right lower lobe 12 mm, left upper lobe 8 mm).", "few"),
        ("Lung metastases (multiple) in the right lung only.", None),  # several, not both sides
        ("Restaging CT: new bilateral pulmonary nodules (at least 8) consistent with relapse.", "many"),
        ("Lung metastases (2) both in the right lower lobe.", "few"),
        ("Pulmonary nodules (4 mm) unchanged.", None),  # a size, not a count
    ],
)
def test_a_count_of_lesions_is_read_through_parentheses(text: str, count: str | None) -> None:
    assert said(text).get("metastatic_lesions") == count
