"""Age and death from the Patient resource (R3 gates: under 18, 75 or older, deceased)."""

from __future__ import annotations

from datetime import date

import pytest
from fhir_builders import patient, primary

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
