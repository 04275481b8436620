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
