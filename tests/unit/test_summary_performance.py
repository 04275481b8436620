"""ECOG performance status, with Karnofsky mapping."""

from __future__ import annotations

from datetime import date

import pytest
from fhir_builders import (
    LOINC,
    SNOMED,
    concept,
    disease_status,
    ecog,
    karnofsky,
    med_request,
    observation,
    primary,
    rxnorm,
)

from cds_service.summary import summarise
from cds_service.summary.model import FindingKind
from cds_service.summary.performance import karnofsky_to_ecog

TODAY = date(2025, 1, 1)
PRIMARY = primary(snomed="443719001")


def test_latest_ecog_wins() -> None:
    summary = summarise([PRIMARY, ecog("e0", 0, date="2020-01-01"), ecog("e2", 2, date="2021-01-01")], today=TODAY)
    assert summary.ecog.value == 2 and summary.ecog.sources == ("Observation/e2",)


def test_later_karnofsky_is_mapped() -> None:
    summary = summarise([PRIMARY, ecog("e", 0, date="2020-01-01"), karnofsky("k", 60, date="2021-01-01")], today=TODAY)
    assert summary.ecog.value == 2 and "Karnofsky 60" in summary.ecog.basis


def test_earlier_karnofsky_is_not_used() -> None:
    summary = summarise([PRIMARY, ecog("e", 1, date="2021-01-01"), karnofsky("k", 40, date="2020-01-01")], today=TODAY)
    assert summary.ecog.value == 1


def test_ecog_from_loinc_answer() -> None:
    obs = observation("e", concept(LOINC, "89247-1"), value={"valueCodeableConcept": concept(LOINC, "LA9624-3")})
    assert summarise([PRIMARY, obs], today=TODAY).ecog.value == 2


MCODE_ECOG = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-ecog-performance-status"


@pytest.mark.parametrize(("profile", "read"), [(MCODE_ECOG, 3), (None, None)])
def test_a_score_coded_by_display_only_is_read_by_the_mcode_profile_it_declares(
    profile: str | None, read: int | None
) -> None:
    code = {"coding": [{"system": LOINC, "display": "Functional assessment"}], "text": "Assessment"}
    obs = observation("e", code, value={"valueInteger": 3}, date="2024-12-01")
    if profile:
        obs["meta"] = {"profile": [profile]}
    found = summarise([PRIMARY, obs], today=TODAY).ecog
    assert (found.value if found else None) == read


LOCAL = "http://ehr.example.org/fhir/CodeSystem/oncology-assessment"


@pytest.mark.parametrize(
    ("name", "value", "read"),
    [
        ("WHO performance status", 3, 3),  # the ECOG scale under another name
        ("ECOG Performance Status (PS)", 2, 2),
        ("Zubrod", 4, 4),
        ("Karnofsky Performance Status", 40, 3),  # mapped as a coded Karnofsky is
        ("KPS", 60, 2),
        ("ECOG discussed with patient", 3, 1),  # not the name of a score: the coded ECOG 1 stands
        ("Performance of daily activities", 3, 1),
    ],
)
def test_a_score_under_a_local_code_is_read_by_the_scale_its_code_names(name: str, value: int, read: int) -> None:
    """A later score kept under a local code ("WHOPS") replaces an older coded ECOG 1."""
    local = observation(
        "local",
        {"coding": [{"system": LOCAL, "code": "X1", "display": name}]},
        value={"valueInteger": value},
        date="2024-12-01",
    )
    summary = summarise([PRIMARY, ecog("e", 1, date="2024-10-01"), local], today=TODAY)
    assert summary.ecog.value == read
    assert ("Observation/local" in summary.ecog.sources) is (read != 1)


@pytest.mark.parametrize("code", [(LOINC, "89247-1"), (SNOMED, "423740007")])
@pytest.mark.parametrize(("answer", "score"), [("425389002", 0), ("422894000", 2), ("423053003", 3), ("423237006", 4)])
def test_ecog_from_a_snomed_grade(code: tuple[str, str], answer: str, score: int) -> None:
    obs = observation("e", concept(*code), value={"valueCodeableConcept": concept(SNOMED, answer)}, date="2024-12-20")
    assert summarise([PRIMARY, obs], today=TODAY).ecog.value == score


@pytest.mark.parametrize(
    "score,expected",
    [(100, 0), (90, 0), (80, 1), (70, 1), (60, 2), (50, 2), (40, 3), (30, 3), (20, 4), (10, 4), (0, 5)],
)
def test_karnofsky_bands(score: int, expected: int) -> None:
    assert karnofsky_to_ecog(score) == expected


def test_out_of_range_ecog_is_invalid() -> None:
    summary = summarise([PRIMARY, ecog("e", 7)], today=TODAY)
    assert summary.ecog is None and summary.findings


@pytest.mark.parametrize("days,recent", [(0, True), (89, True), (90, True), (91, False), (400, False)])
def test_performance_status_is_recent_within_90_days(days: int, recent: bool) -> None:
    when = date.fromordinal(TODAY.toordinal() - days).isoformat()
    summary = summarise([PRIMARY, ecog("e", 1, date=when)], today=TODAY)
    assert summary.ecog.value == 1 and summary.performance_status_recent.value is recent


def test_an_old_performance_status_says_so() -> None:
    summary = summarise([PRIMARY, ecog("e", 0, date="2021-01-01")], today=TODAY)
    assert "not recently recorded" in summary.performance_status_recent.basis


def test_no_performance_status_no_recency() -> None:
    assert summarise([PRIMARY], today=TODAY).performance_status_recent is None


@pytest.mark.parametrize("kps,ecog_value,expected", [(60, 1, 2), (90, 1, 1), (80, 1, 1)])
def test_two_scores_of_one_day_the_worse_counts(kps: int, ecog_value: int, expected: int) -> None:
    day = "2024-12-01"
    summary = summarise([PRIMARY, ecog("e", ecog_value, date=day), karnofsky("k", kps, date=day)], today=TODAY)
    assert summary.ecog.value == expected


# --- Each fact in full, and every score set aside named -------------------------------------------------


def provenance(fact) -> tuple:
    return (fact.value, fact.sources, fact.basis, fact.when)


def invalid(summary) -> set[tuple]:
    return {(f.message, f.sources) for f in summary.findings if f.about == "ecog" and f.kind.value == "invalid"}


def test_ecog_in_full() -> None:
    summary = summarise([PRIMARY, ecog("e", 2, date="2024-12-01")], today=TODAY)
    assert provenance(summary.ecog) == (2, ("Observation/e",), "latest ECOG recorded", date(2024, 12, 1))


def test_a_mapped_karnofsky_in_full() -> None:
    later = summarise([PRIMARY, ecog("e", 0, date="2024-11-01"), karnofsky("k", 60, date="2024-12-01")], today=TODAY)
    assert provenance(later.ecog) == (
        2,
        ("Observation/k",),
        "Karnofsky 60 mapped to ECOG 2 (later than any ECOG)",
        date(2024, 12, 1),
    )
    alone = summarise([PRIMARY, karnofsky("k", 90, date="2024-12-01")], today=TODAY)
    assert alone.ecog.basis == "Karnofsky 90 mapped to ECOG 0 (later than any ECOG)"


def test_unusable_scores_are_named_and_an_older_usable_one_is_used_only_when_they_are_older() -> None:
    ecog_text = observation("e9", concept(LOINC, "89247-1"), value={"valueString": "fit"}, date="2024-11-20")
    kps_text = observation("k9", concept(LOINC, "89243-0"), value={"valueString": "good"}, date="2024-11-20")
    undated = observation("e8", concept(LOINC, "89247-1"), value={"valueString": "1-2"})
    summary = summarise(
        [PRIMARY, ecog_text, ecog("e7", 7, date="2024-11-10"), ecog("e", 1, date="2024-12-01"), kps_text, undated],
        today=TODAY,
    )
    assert summary.ecog.value == 1 and summary.ecog.sources == ("Observation/e",)
    assert invalid(summary) == {("no usable score; ignored", ("Observation/k9",))}  # no usable Karnofsky at all


@pytest.mark.parametrize(
    "written,when,known",
    [
        ({"valueString": "2-3"}, "2024-12-02", False),  # a day after the ECOG 0: the status is unknown
        ({"valueString": "2-3"}, "2024-12-01", True),  # same day: the score recorded that day stands
        ({"valueCodeableConcept": {"text": "ECOG 2 to 3"}}, "2024-12-20", False),
        ({"valueString": "ECOG 7"}, "2024-12-20", False),
    ],
)
def test_a_later_performance_status_that_is_not_one_score_leaves_it_unknown_and_is_quoted(
    written: dict, when: str, known: bool
) -> None:
    latest = observation("ps", concept(LOINC, "89247-1"), value=written, date=when)
    summary = summarise([PRIMARY, ecog("e", 0, date="2024-12-01"), latest], today=TODAY)
    assert (summary.ecog is not None) is known
    missing = [f for f in summary.findings if f.kind is FindingKind.MISSING and f.about == "ecog"]
    text = written.get("valueString") or written["valueCodeableConcept"]["text"]
    expected = [] if known else [f'performance status not known: the latest, on {when}, is written "{text}"']
    assert [f.message for f in missing] == expected
    assert all(f.sources == ("Observation/ps",) for f in missing)


def test_a_later_karnofsky_that_is_not_one_score_leaves_the_ecog_unknown() -> None:
    kps = observation("k", concept(LOINC, "89243-0"), value={"valueString": "40-60"}, date="2024-12-20")
    assert summarise([PRIMARY, ecog("e", 0, date="2024-12-01"), kps], today=TODAY).ecog is None


def test_recency_in_full() -> None:
    recent = summarise([PRIMARY, ecog("e", 1, date="2024-12-01")], today=TODAY).performance_status_recent
    assert provenance(recent) == (
        True,
        ("Observation/e",),
        "recorded 2024-12-01, 31 days ago (within 90)",
        date(2024, 12, 1),
    )
    old = summarise([PRIMARY, ecog("e", 1, date="2024-01-01")], today=TODAY).performance_status_recent
    assert provenance(old) == (
        False,
        ("Observation/e",),
        "not recently recorded: latest on 2024-01-01, 366 days ago (more than 90)",
        date(2024, 1, 1),
    )


def test_an_undated_performance_status_is_not_recent() -> None:
    undated = summarise([PRIMARY, ecog("e", 1, date=None)], today=TODAY)
    assert undated.ecog.value == 1
    assert provenance(undated.performance_status_recent) == (
        False,
        ("Observation/e",),
        "performance status recorded without a date",
        None,
    )


def test_a_karnofsky_no_worse_than_that_days_ecog_leaves_the_ecog() -> None:
    day = "2024-12-01"
    summary = summarise([PRIMARY, ecog("e", 1, date=day), karnofsky("k", 80, date=day)], today=TODAY)
    assert provenance(summary.ecog) == (1, ("Observation/e",), "latest ECOG recorded", date(2024, 12, 1))
    worse = summarise([PRIMARY, ecog("e", 1, date=day), karnofsky("k", 60, date=day)], today=TODAY)
    assert provenance(worse.ecog) == (
        2,
        ("Observation/k",),
        "Karnofsky 60 mapped to ECOG 2 (worse than that day's ECOG)",
        date(2024, 12, 1),
    )


def _written(id: str, kind: str, value: dict[str, object]) -> dict[str, object]:
    """A score Observation with ``value`` as its value[x]."""
    return observation(id, (ecog if kind == "ecog" else karnofsky)(id, 0)["code"], value=value)


@pytest.mark.parametrize(
    "value,expected",
    [
        ({"valueString": "3"}, 3),
        ({"valueString": "ECOG 3"}, 3),
        ({"valueString": " ecog ps: 0 "}, 0),
        ({"valueString": "5"}, 5),
        ({"valueString": "6"}, None),
        ({"valueString": "1-2"}, 2),  # a range: its worse end
        ({"valueString": "ECOG 2 or 3"}, None),
        ({"valueString": "bedbound"}, None),
        ({"valueQuantity": {"value": 2}}, 2),
        ({"valueQuantity": {"value": 2.5}}, None),
    ],
)
def test_an_ecog_written_as_text_or_a_quantity_is_read_only_when_it_is_one_score(
    value: dict[str, object], expected: int | None
) -> None:
    summary = summarise([PRIMARY, _written("e", "ecog", value)], today=TODAY)
    assert (summary.ecog.value if summary.ecog else None) == expected


@pytest.mark.parametrize(
    "value,expected",
    [
        ({"valueString": "40"}, 3),
        ({"valueString": "KPS 40%"}, 3),
        ({"valueString": "50%"}, 2),
        ({"valueString": "110"}, None),
    ],
)
def test_a_karnofsky_written_as_text_is_mapped(value: dict[str, object], expected: int | None) -> None:
    summary = summarise([PRIMARY, _written("k", "karnofsky", value)], today=TODAY)
    assert (summary.ecog.value if summary.ecog else None) == expected


@pytest.mark.parametrize(
    "dated,when",
    [
        ({"effectiveDateTime": "2024-11-01"}, date(2024, 11, 1)),
        ({"effectivePeriod": {"start": "2024-11-01", "end": "2024-11-05"}}, date(2024, 11, 1)),
        ({"effectivePeriod": {"end": "2024-11-05"}}, date(2024, 11, 5)),
        ({"effectiveInstant": "2024-11-01T10:00:00Z"}, date(2024, 11, 1)),
        ({"issued": "2024-11-03T10:00:00Z"}, date(2024, 11, 3)),
        ({"effectiveDateTime": "2024-11-01", "issued": "2024-11-03T10:00:00Z"}, date(2024, 11, 1)),
        ({}, None),
    ],
)
def test_a_score_is_dated_by_when_it_applies_else_when_it_was_issued(dated: dict, when: date | None) -> None:
    score = {**ecog("e", 1, date=None), **dated}
    assert summarise([PRIMARY, score], today=TODAY).ecog.when == when


@pytest.mark.parametrize(
    "code",
    [None, "ECOG", {"coding": "89247-1"}, {"coding": ["89247-1"]}, {"coding": [{"system": LOINC}]}],
)
def test_an_observation_whose_code_cannot_be_read_is_passed_over(code: object) -> None:
    unreadable = {"resourceType": "Observation", "id": "x", "status": "final", "subject": {"reference": "Patient/p1"}}
    if code is not None:
        unreadable["code"] = code
    summary = summarise([PRIMARY, unreadable, ecog("e", 1, date="2024-11-01")], today=TODAY)
    assert summary.ecog.value == 1 and summary.ecog.sources == ("Observation/e",)


@pytest.mark.parametrize(
    "code,value,ecog_value",
    [
        ("89247-1", {"valueString": "3-4"}, 4),
        ("89247-1", {"valueString": "ECOG 0-1"}, 1),
        ("89247-1", {"valueString": "1 to 2"}, 2),  # may be 2: not fit for combination chemotherapy
        ("89247-1", {"valueRange": {"low": {"value": 3}, "high": {"value": 4}}}, 4),
        ("89247-1", {"valueString": "4-5"}, 4),  # a living patient
        ("89247-1", {"valueString": "2-3"}, None),  # straddles ECOG 3: not known
        ("89243-0", {"valueString": "KPS 30-40%"}, 3),
        ("89243-0", {"valueString": "60-70"}, 2),
        ("89243-0", {"valueString": "40-60"}, None),  # ECOG 3 or 2
    ],
)
def test_a_performance_status_written_as_a_range_is_read_by_its_worse_end(
    code: str, value: dict, ecog_value: int | None
) -> None:
    reading = observation("ps", concept(LOINC, code), value=value, date="2024-12-20")
    fact = summarise([PRIMARY, reading], today=TODAY).ecog
    assert (fact.value if fact else None) == ecog_value


def _progress_note(text: str, date: str) -> dict:
    return observation("pn", concept(LOINC, "11506-3"), value={"valueString": text}, date=date)


@pytest.mark.parametrize(
    ("text", "ecog_value"),
    [
        ("Clinic: deteriorated, mostly in bed or chair, ECOG 3. Discuss best supportive care.", 3),
        ("WHO PS 2 today.", 2),
        ("KPS 40%.", 3),
        ("ECOG 3-4, bedbound most of the day.", 4),  # a range by its worse end
        ("ECOG 2 or 3.", None),  # not one score: not known
        ("ECOG 0 in January, ECOG 2 today.", None),  # two current scores in one note: not known
        ("Baseline ECOG 0, now ECOG 2.", 2),  # a score placed in the past is passed over
        ("Was ECOG 3 in November after surgery; now walking, ECOG 1.", 1),
        ("Today ECOG 3, mostly in bed since a fall; ECOG 1 at the November visit.", 3),  # today's counts
        ("Now ECOG 1 (ECOG 3 in December).", 1),
        ("Reviewed in clinic, stable on treatment.", 0),  # no performance status: the coded one stands
        ("Combination reserved for ECOG 0-1; single agent.", 0),  # a rule, not the patient's status
        ("Trial requires ECOG 0-1. ECOG 2 today.", 2),
        ("ECOG now 3, in bed most of the day.", 3),
        ("PS 3.", 3),
        ("ECOG of 2.", 2),
        ("ECOG deteriorated from 1 to 3.", 3),  # a change, by where it ended
        ("ECOG improved from 3 to 1.", 1),
        ("ECOG 1 -> 3 since the last cycle.", 3),
    ],
)
def test_a_later_clinician_note_that_gives_a_performance_status_counts(text: str, ecog_value: int | None) -> None:
    coded = ecog("e", 0, date="2024-12-01")
    fact = summarise([PRIMARY, coded, _progress_note(text, "2024-12-20")], today=TODAY).ecog
    assert (fact.value if fact else None) == ecog_value


@pytest.mark.parametrize(("coded_score", "noted_score", "expected"), [(1, 3, 3), (3, 1, 3), (2, 2, 2)])
def test_a_note_and_a_coded_score_of_one_day_the_worse_counts(
    coded_score: int, noted_score: int, expected: int
) -> None:
    """A nurse's coded ECOG 1 and the physician's note "ECOG 3" of the same day: the worse one (R3)."""
    coded = ecog("e", coded_score, date="2024-12-20")
    fact = summarise([PRIMARY, coded, _progress_note(f"ECOG {noted_score}.", "2024-12-20")], today=TODAY).ecog
    assert fact is not None and fact.value == expected


def test_an_earlier_note_does_not_override_a_later_coded_score() -> None:
    note = _progress_note("ECOG 3.", "2024-11-01")
    fact = summarise([PRIMARY, note, ecog("e", 1, date="2024-12-01")], today=TODAY).ecog
    assert fact.value == 1 and fact.sources == ("Observation/e",)


@pytest.mark.parametrize(
    ("text", "basis"),
    [
        ("ECOG 3.", "ECOG 3 written in a clinician note on 2024-12-20"),
        ("KPS 40%, mostly in bed.", "Karnofsky 40% written in a clinician note on 2024-12-20, read as ECOG 3"),
        ("KPS 40%, ECOG 3.", "ECOG 3 written in a clinician note on 2024-12-20"),
    ],
)
def test_a_performance_status_from_a_note_names_the_note_and_the_scale_written(text: str, basis: str) -> None:
    fact = summarise([PRIMARY, _progress_note(text, "2024-12-20")], today=TODAY).ecog
    assert fact.value == 3 and fact.sources == ("Observation/pn",) and fact.basis == basis


def _on_disease_status(text: str) -> dict:
    status = disease_status("ds", "worsened", date="2024-12-20")
    status["note"] = [{"text": text}]
    return status


def _on_the_tumour(text: str) -> dict:
    return primary(snomed="443719001", body_site="61685007", recordedDate="2024-12-20", note=[{"text": text}])


@pytest.mark.parametrize("written_on", [_on_disease_status, _on_the_tumour])
@pytest.mark.parametrize(
    ("text", "ecog_value"),
    [
        ("Progression in both lungs; now ECOG 3, spends most of the day in bed.", 3),
        ("Progression in both lungs; was ECOG 3 after surgery in 2023.", 1),  # placed in the past: the coded one stands
        ("Progression in both lungs.", 1),
    ],
)
def test_a_performance_status_written_on_a_disease_record_counts_as_a_note_does(
    written_on, text: str, ecog_value: int
) -> None:
    resources = [written_on(text), ecog("e", 1, date="2024-10-01")]
    if written_on is _on_disease_status:
        resources.append(PRIMARY)
    fact = summarise(resources, today=TODAY).ecog
    assert fact.value == ecog_value
    assert ("clinician note" in fact.basis) is (ecog_value == 3)


@pytest.mark.parametrize(
    ("authored", "ecog_value"),
    [("2024-12-20", 3), ("2024-09-20", 1)],  # after the coded ECOG 1 of 2024-10-01, or before it
)
def test_a_performance_status_written_on_a_cancelled_order_counts_when_it_is_the_latest(
    authored: str, ecog_value: int
) -> None:
    order = med_request(
        "dox",
        rxnorm("3639", "doxorubicin"),
        start=None,
        authored=authored,
        status="cancelled",
        note=[{"text": "Not given: now ECOG 3, in bed more than 50% of the day. Refer to palliative care."}],
    )
    fact = summarise([PRIMARY, ecog("e", 1, date="2024-10-01"), order], today=TODAY).ecog
    assert fact.value == ecog_value
    assert (fact.sources == ("MedicationRequest/dox",)) is (ecog_value == 3)


def test_a_later_performance_status_recorded_as_absent_leaves_the_earlier_score() -> None:
    absent = observation("absent", concept(LOINC, "89247-1"), value={}, date="2024-12-20")
    absent["dataAbsentReason"] = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "asked-declined"}]
    }
    fact = summarise([PRIMARY, ecog("e", 1, date="2024-12-01"), absent], today=TODAY).ecog
    assert fact.value == 1 and fact.sources == ("Observation/e",)


@pytest.mark.parametrize(
    ("value", "score"),
    [
        ({"valueCodeableConcept": {"text": "3 - Capable of only limited selfcare"}}, 3),
        ({"valueString": "1: Restricted in physically strenuous activity"}, 1),
        ({"valueCodeableConcept": {"text": "3 or 4"}}, None),  # not one score
    ],
)
def test_a_score_written_with_its_description_is_read(value: dict, score: int | None) -> None:
    reading = observation("ps", concept(LOINC, "89247-1"), value=value, date="2024-12-20")
    fact = summarise([PRIMARY, reading], today=TODAY).ecog
    assert (fact.value if fact else None) == score


def test_a_performance_status_coded_with_the_loinc_oid_is_read() -> None:
    reading = observation("ps", concept("urn:oid:2.16.840.1.113883.6.1", "89247-1"), value={"valueInteger": 3})
    assert summarise([PRIMARY, reading], today=TODAY).ecog.value == 3


@pytest.mark.parametrize(("component", "read"), [((LOINC, "89247-1"), 3), ((LOINC, "72514-3"), 1)])
def test_a_score_recorded_as_a_component_of_a_local_assessment_panel_is_read(
    component: tuple[str, str], read: int
) -> None:
    """An oncology nursing pre-assessment under a local code: its ECOG component counts (a pain score does not)."""
    panel = observation(
        "panel",
        {"coding": [{"system": LOCAL, "code": "ONCPREASSESS", "display": "Oncology nursing pre-assessment"}]},
        date="2024-12-01",
        component=[{"code": concept(*component), "valueInteger": 3}],
    )
    summary = summarise([PRIMARY, ecog("e", 1, date="2024-10-01"), panel], today=TODAY)
    assert summary.ecog.value == read
