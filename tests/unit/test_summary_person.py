"""Age and death from the Patient resource (R3 gates: under 18, 75 or older, deceased)."""

from __future__ import annotations

from datetime import date

import pytest
from fhir_builders import LOINC, concept, observation, patient, primary

from cds_service.summary import summarise

TODAY = date(2026, 3, 1)


def summary_of(**fields: object):
    return summarise([patient("p1", **fields), primary(snomed="443719001")], today=TODAY)


@pytest.mark.parametrize(
    "born,age",
    [
        ("2008-03-01", 18),  # 18th birthday today
        ("2008-03-02", 17),  # tomorrow
        ("1951-03-01", 75),
        ("1951-03-02", 74),
        ("1951-02-28", 75),
    ],
)
def test_age_in_completed_years_on_each_side_of_a_birthday(born: str, age: int) -> None:
    assert summary_of(birthDate=born).age.value == age


@pytest.mark.parametrize("born,age", [("2008", 17), ("2008-03", 17), ("2008-02", 18)])
def test_a_partial_birth_date_never_overstates_the_age(born: str, age: int) -> None:
    assert summary_of(birthDate=born).age.value == age


@pytest.mark.parametrize(
    "born,youngest,oldest,basis",
    [
        ("1951", 74, 75, "birth year only"),  # 75 if born by 1 March 1951
        ("1951-03", 74, 75, "birth month only"),
        ("1951-02", 75, 75, "from the birth date"),  # 75 whatever the day
        ("1951-03-01", 75, 75, "from the birth date"),
        ("1951-03-02", 74, 74, "from the birth date"),
    ],
)
def test_the_oldest_possible_age_of_a_partial_birth_date(born: str, youngest: int, oldest: int, basis: str) -> None:
    summary = summary_of(birthDate=born)
    assert (summary.age.value, summary.age_oldest.value, summary.age_oldest.basis) == (youngest, oldest, basis)
    assert summary.age_oldest.sources == ("Patient/p1",)


def test_no_birth_date_no_age() -> None:
    assert summary_of().age is None


def test_a_birth_date_in_the_future_is_ignored() -> None:
    summary = summary_of(birthDate="2027-01-01")
    assert summary.age is None and any(f.about == "age" for f in summary.findings)


@pytest.mark.parametrize(
    "fields,deceased",
    [
        ({"deceasedBoolean": True}, True),
        ({"deceasedDateTime": "2026-01-10"}, True),
        ({"deceasedBoolean": False}, False),
        ({}, None),
    ],
)
def test_death_is_read_from_deceased_boolean_or_date(fields: dict[str, object], deceased: bool | None) -> None:
    fact = summary_of(**fields).deceased
    assert (fact.value if fact else None) is deceased


# --- Each fact in full: value, the Patient it comes from, how it was read, and its date -------------------


def provenance(fact) -> tuple:
    return (fact.value, fact.sources, fact.basis, fact.when)


def test_age_in_full() -> None:
    assert provenance(summary_of(birthDate="1970-05-10").age) == (
        55,
        ("Patient/p1",),
        "from the birth date",
        date(1970, 5, 10),
    )


def test_born_today_is_age_0_and_a_future_birth_date_is_named_invalid() -> None:
    assert summary_of(birthDate="2026-03-01").age.value == 0
    future = summary_of(birthDate="2026-03-02")
    assert {(f.kind.value, f.message, f.sources) for f in future.findings if f.about == "age"} == {
        ("invalid", "birth date in the future; ignored", ("Patient/p1",))
    }


@pytest.mark.parametrize(
    "fields,expected",
    [
        (
            {"deceasedDateTime": "2026-01-10T08:30:00+01:00"},
            (True, ("Patient/p1",), "deceased 2026-01-10", date(2026, 1, 10)),
        ),
        ({"deceasedBoolean": True}, (True, ("Patient/p1",), "recorded deceased", None)),
        ({"deceasedBoolean": False}, (False, ("Patient/p1",), "recorded as living", None)),
    ],
)
def test_death_in_full(fields: dict[str, object], expected: tuple) -> None:
    assert provenance(summary_of(**fields).deceased) == expected


def _pregnancy(code: dict, **fields: object) -> dict:
    from fhir_builders import condition

    return condition("preg", code, **fields)


def pregnant(*resources: dict) -> bool | None:
    summary = summarise([patient("p1"), primary(snomed="443719001"), *resources], today=TODAY)
    return summary.pregnant.value if summary.pregnant else None


@pytest.mark.parametrize(
    "fields,expected",
    [
        ({"onset": "2025-12-01"}, True),
        ({"onset": "2025-05-11"}, True),  # 294 days before today: the last day that counts
        ({"onset": "2025-05-10"}, None),  # 295 days: an old pregnancy left open on the problem list
        ({"onset": None}, True),  # undated: the caution errs on showing
        ({"onset": "2025-12-01", "clinical": "resolved"}, None),
        ({"onset": "2025-12-01", "clinical": None, "abatementDateTime": "2026-01-20"}, None),
        ({"onset": "2025-12-01", "verification": "entered-in-error"}, None),
        ({"onset": "2025-12-01", "verification": "refuted"}, None),
    ],
)
def test_a_pregnancy_condition_counts_while_active_and_recent(fields: dict, expected: bool | None) -> None:
    from fhir_builders import SNOMED, concept

    assert pregnant(_pregnancy(concept(SNOMED, "77386006"), **fields)) is expected


@pytest.mark.parametrize(
    "code,expected",
    [
        ("Z33.1", True),
        ("Z34.02", True),
        ("O09.891", True),
        ("Z3A.24", True),
        ("O21.0", True),
        ("O03.9", None),
        ("Z32.01", None),
    ],
)
def test_pregnancy_coded_in_icd10(code: str, expected: bool | None) -> None:
    from fhir_builders import ICD10, concept

    assert pregnant(_pregnancy(concept(ICD10, code), onset="2025-12-01")) is expected


def _status(id: str, value: str, on: str) -> dict:
    from fhir_builders import LOINC, SNOMED, concept, observation

    return observation(id, concept(LOINC, "82810-3"), value={"valueCodeableConcept": concept(SNOMED, value)}, date=on)


@pytest.mark.parametrize(
    "resources,expected",
    [
        ([("77386006", "2026-02-01")], True),
        ([("60001007", "2026-02-01")], False),
        ([("77386006", "2025-05-10")], None),  # older than 294 days
        ([("77386006", "2025-12-01"), ("60001007", "2026-02-01")], False),  # the latest decides
    ],
)
def test_a_pregnancy_status_observation(resources: list[tuple[str, str]], expected: bool | None) -> None:
    observations = [_status(f"ps{i}", value, on) for i, (value, on) in enumerate(resources)]
    assert pregnant(*observations) is expected


def test_a_later_not_pregnant_status_outweighs_an_earlier_pregnancy_condition_and_not_the_reverse() -> None:
    from fhir_builders import SNOMED, concept

    condition = _pregnancy(concept(SNOMED, "77386006"), onset="2025-12-01")
    assert pregnant(condition, _status("ps", "60001007", "2026-02-01")) is False
    assert pregnant(condition, _status("ps", "60001007", "2025-11-01")) is True


@pytest.mark.parametrize("answer,expected", [("LA15173-0", True), ("LA26683-5", False), ("LA4489-6", None)])
def test_a_pregnancy_status_in_the_loinc_answer_list(answer: str, expected: bool | None) -> None:
    from fhir_builders import LOINC, concept, observation

    value = {"valueCodeableConcept": concept(LOINC, answer)}
    assert pregnant(observation("ps", concept(LOINC, "82810-3"), value=value, date="2026-02-20")) is expected


def test_the_latest_of_several_pregnancy_conditions_is_weighed_against_the_status() -> None:
    from fhir_builders import SNOMED, concept, condition

    older = condition("pz", concept(SNOMED, "77386006"), onset="2025-06-01")
    newer = condition("pa", concept(SNOMED, "77386006"), onset="2025-12-01")
    assert pregnant(older, newer, _status("ps", "60001007", "2025-09-01")) is True


@pytest.mark.parametrize(
    ("code", "status", "day", "deceased"),
    [
        ("81956-5", "final", "2026-02-18", True),  # date and time of death
        ("69453-9", "final", "2026-02-18", True),  # cause of death
        ("81956-5", "entered-in-error", "2026-02-18", None),
        ("81956-5", "final", "2026-03-02", None),  # dated after today: set aside
        ("11506-3", "final", "2026-02-18", None),  # a progress note saying nothing of death
    ],
)
def test_death_recorded_as_an_observation_is_death(code: str, status: str, day: str, deceased: bool | None) -> None:
    died = observation("d", concept(LOINC, code), value={"valueDateTime": day}, date=day, status=status)
    fact = summarise([patient("p1"), primary(snomed="443719001"), died], today=TODAY).deceased
    assert (fact.value if fact else None) is deceased


@pytest.mark.parametrize(
    ("test", "result", "gender", "expected"),
    [
        ("2106-3", "10828004", "female", True),  # urine hCG positive
        ("2118-8", "260385009", "female", False),  # serum hCG negative
        ("11449-6", "77386006", "female", True),  # pregnancy status, reported
        ("2118-8", "10828004", "male", None),  # a man's hCG is a tumour marker
    ],
)
def test_a_pregnancy_test_or_reported_status_is_read_for_women_only(
    test: str, result: str, gender: str, expected: bool | None
) -> None:
    from fhir_builders import LOINC, SNOMED, concept, observation

    value = {"valueCodeableConcept": concept(SNOMED, result)}
    found = observation("hcg", concept(LOINC, test), value=value, date="2026-02-20")
    summary = summarise([{**patient("p1"), "gender": gender}, primary(snomed="443719001"), found], today=TODAY)
    assert (summary.pregnant.value if summary.pregnant else None) is expected


@pytest.mark.parametrize(("ended", "expected"), [("2026-01-05", False), ("2025-06-01", True)])
def test_a_positive_test_before_the_pregnancy_was_recorded_as_ended_no_longer_counts(
    ended: str, expected: bool
) -> None:
    from fhir_builders import LOINC, SNOMED, concept, observation

    test = observation(
        "hcg", concept(LOINC, "2106-3"), value={"valueCodeableConcept": concept(SNOMED, "10828004")}, date="2025-06-15"
    )
    over = _pregnancy(concept(SNOMED, "77386006"), onset="2025-05-01", clinical="resolved", abatementDateTime=ended)
    assert pregnant(test, over) is expected


@pytest.mark.parametrize(
    ("code", "value", "expected"),
    [
        ("11778-8", {"valueDateTime": "2026-06-19"}, True),  # estimated delivery in June
        ("11778-8", {"valueDateTime": "2025-06-19"}, None),  # delivered last June
        ("18185-9", {"valueQuantity": {"value": 23, "unit": "wk", "code": "wk"}}, True),  # 23 weeks on 2026-02-20
        (
            "18185-9",
            {"valueQuantity": {"value": 39, "unit": "wk", "code": "wk"}},
            None,
        ),  # term fell on 2026-02-27: delivered
    ],
)
def test_a_delivery_still_to_come_is_a_current_pregnancy(code: str, value: dict, expected: bool | None) -> None:
    from fhir_builders import LOINC, concept, observation

    dated = observation("edd", concept(LOINC, code), value=value, date="2026-02-20")
    assert pregnant(dated) is expected


@pytest.mark.parametrize(("code", "noted"), [("419620001", True), ("Z63.4", False)])
def test_a_diagnosis_coded_as_the_patients_death_is_noted_for_confirmation(code: str, noted: bool) -> None:
    """SNOMED "Death (event)" as a visit's diagnosis; "Death of family member" (Z63.4) is not the patient's."""
    from fhir_builders import ICD10, SNOMED, condition

    system = SNOMED if code[0].isdigit() else ICD10
    death = condition("dx", concept(system, code), onset="2026-02-22")
    summary = summarise([primary(snomed="443719001"), death], today=TODAY)
    assert (summary.death_noted is not None and summary.death_noted.value) is noted


@pytest.mark.parametrize(("lost", "expected"), [("2026-02-03", False), ("2025-10-01", True)])
def test_a_miscarriage_coded_after_the_dating_ends_the_pregnancy(lost: str, expected: bool) -> None:
    """Dated on 2026-01-10 with delivery due in July; a miscarriage (O03.9) coded since ends it, one before does not."""
    from fhir_builders import ICD10, LOINC, concept, condition, observation

    dating = observation("edd", concept(LOINC, "11778-8"), value={"valueDateTime": "2026-07-20"}, date="2026-01-10")
    miscarriage = condition("loss", concept(ICD10, "O03.9"), onset=lost)
    assert pregnant(dating, miscarriage) is expected


@pytest.mark.parametrize(
    ("text", "dose_after", "noted"),
    [
        ("Death (event)", False, True),
        ("Grief reaction following death of husband", False, False),  # another person's death
        ("Death (event)", True, False),  # treated after it: not the patient's death
    ],
)
def test_a_death_diagnosis_is_the_patients_only_when_nothing_says_otherwise(
    text: str, dose_after: bool, noted: bool
) -> None:
    from fhir_builders import SNOMED, condition, med_administration, rxnorm

    death = condition("dx", {**concept(SNOMED, "419620001"), "text": text}, onset="2026-01-10")
    later = [med_administration("dose", rxnorm("1790099"), start="2026-02-01")] if dose_after else []
    summary = summarise([primary(snomed="443719001"), death, *later], today=TODAY)
    assert (summary.death_noted is not None and summary.death_noted.value) is noted
