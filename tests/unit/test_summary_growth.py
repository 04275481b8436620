"""Growth of the same lesion from serial sizes, RECIST-like: at least 8 weeks apart, at least 20 % and
5 mm larger is growing; each threshold tested on it and one unit either side."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fhir_builders import SNOMED, concept, size

from cds_service.summary.context import Context
from cds_service.summary.growth import lesion_growth, lesion_series
from cds_service.summary.model import Growth
from cds_service.summary.observations import by_kind
from cds_service.summary.parse import Entry

START = date(2025, 1, 6)


def read(*sizes: dict[str, Any]) -> list[Any]:
    ctx = Context(date(2026, 1, 1))
    return lesion_growth(lesion_series(by_kind([Entry(f"Observation/{s['id']}", s) for s in sizes], ctx)["size"]))


def pair(first_cm: float, later_cm: float, days: int = 84, **kwargs: Any) -> list[Any]:
    later = (START + timedelta(days=days)).isoformat()
    return read(
        size("a", first_cm, date=START.isoformat(), focus="BodyStructure/t1", **kwargs),
        size("b", later_cm, date=later, focus="BodyStructure/t1", **kwargs),
    )


@pytest.mark.parametrize("days, compared", [(55, False), (56, True), (57, True)])
def test_sizes_are_compared_only_at_least_8_weeks_apart(days: int, compared: bool) -> None:
    assert bool(pair(5.0, 8.0, days)) is compared


@pytest.mark.parametrize("later_cm, value", [(5.95, Growth.NOT_GROWING), (6.0, Growth.GROWING), (6.05, Growth.GROWING)])
def test_growing_needs_at_least_20_percent(later_cm: float, value: Growth) -> None:
    assert pair(5.0, later_cm)[0].value is value  # 19 %, 20 %, 21 % (all at least 5 mm)


@pytest.mark.parametrize("later_cm, value", [(2.4, Growth.NOT_GROWING), (2.5, Growth.GROWING), (2.6, Growth.GROWING)])
def test_growing_needs_at_least_5_mm(later_cm: float, value: Growth) -> None:
    assert pair(2.0, later_cm)[0].value is value  # 4, 5, 6 mm (all at least 20 %)


def test_millimetres_are_read_as_centimetres() -> None:
    assert pair(25, 30, unit="mm")[0].value is Growth.GROWING  # 5 mm and 20 %, exactly


def test_shrinking_or_stable_is_not_growing() -> None:
    assert pair(5.0, 4.0)[0].value is Growth.NOT_GROWING
    assert pair(5.0, 5.0)[0].value is Growth.NOT_GROWING


def test_the_latest_size_is_compared_with_the_smallest_earlier_one() -> None:
    dated = [(START + timedelta(days=d)).isoformat() for d in (0, 70, 140)]
    found = read(
        *(size(i, cm, date=d, focus="BodyStructure/t1") for i, cm, d in zip("abc", (5.0, 3.0, 4.0), dated, strict=True))
    )
    assert found[0].value is Growth.GROWING  # 3 -> 4 cm, not 5 -> 4 cm
    assert found[0].sources == ("Observation/b", "Observation/c") and found[0].when == date(2025, 5, 26)


def test_the_threshold_is_written_in_the_basis() -> None:
    basis = pair(5.0, 6.0)[0].basis
    assert "5 cm on 2025-01-06 and 6 cm on 2025-03-31 (+20 %, +10 mm)" in basis
    assert "at least 20 % and 5 mm larger over at least 8 weeks" in basis


def test_sizes_of_different_lesions_are_not_compared() -> None:
    assert (
        read(
            size("a", 2.0, date="2025-01-06", focus="BodyStructure/t1"),
            size("b", 6.0, date="2025-06-01", focus="BodyStructure/t2"),
        )
        == []
    )


def test_sizes_of_no_named_lesion_are_not_compared() -> None:
    assert read(size("a", 2.0, date="2025-01-06"), size("b", 6.0, date="2025-06-01")) == []


def test_sizes_of_the_same_body_site_are_compared() -> None:
    site = [concept(SNOMED, "39607008", "Lung structure")]
    found = read(
        size("a", 2.0, date="2025-01-06", bodySite=site[0]), size("b", 3.0, date="2025-06-01", bodySite=site[0])
    )
    assert [f.value for f in found] == [Growth.GROWING]


def test_each_lesion_is_read_on_its_own() -> None:
    found = read(
        size("a", 2.0, date="2025-01-06", focus="BodyStructure/t1"),
        size("b", 3.0, date="2025-06-01", focus="BodyStructure/t1"),
        size("c", 4.0, date="2025-01-06", focus="BodyStructure/t2"),
        size("d", 4.0, date="2025-06-01", focus="BodyStructure/t2"),
    )
    assert sorted(f.value for f in found) == [Growth.GROWING, Growth.NOT_GROWING]


@pytest.mark.parametrize(
    "later_cm,value",
    [(2.46, Growth.NOT_GROWING), (2.49, Growth.NOT_GROWING)],  # 4.6 and 4.9 mm: not rounded up to 5 mm
)
def test_a_fraction_of_a_millimetre_short_of_5_mm_is_not_growing(later_cm: float, value: Growth) -> None:
    assert pair(2.0, later_cm)[0].value is value


@pytest.mark.parametrize("later_cm", [5.98, 5.99])  # 19.6 and 19.8 %: not rounded up to 20 %
def test_a_fraction_of_a_percent_short_of_20_percent_is_not_growing(later_cm: float) -> None:
    assert pair(5.0, later_cm)[0].value is Growth.NOT_GROWING


def test_the_change_is_written_to_a_hundredth() -> None:
    assert "3 cm on 2025-01-06 and 3.75 cm on 2025-03-31 (+25 %, +7.5 mm)" in pair(3.0, 3.75)[0].basis
    assert "(+23.33 %, +7 mm)" in pair(3.0, 3.7)[0].basis


def test_sizes_are_kept_to_a_hundredth_of_a_millimetre() -> None:
    assert "2.0004 cm" not in pair(2.0004, 3.0)[0].basis and "2 cm on 2025-01-06" in pair(2.0004, 3.0)[0].basis


def test_sizes_under_1_cm_are_compared_and_a_zero_size_is_not() -> None:
    dated = [(START + timedelta(days=d)).isoformat() for d in (0, 28, 84)]
    found = read(
        size("a", 0.6, date=dated[0], focus="BodyStructure/t1"),
        size("z", 0.0, date=dated[1], focus="BodyStructure/t1"),
        size("b", 1.2, date=dated[2], focus="BodyStructure/t1"),
    )
    assert [(f.value, f.sources) for f in found] == [(Growth.GROWING, ("Observation/a", "Observation/b"))]


@pytest.mark.parametrize(
    "first,later",
    [
        (concept(SNOMED, "39607008", "Lung structure"), concept(SNOMED, "39607008", "Right lung structure")),
        (concept(SNOMED, "39607008", "Lung structure"), concept(SNOMED, "3341006", "Lung structure")),
    ],
)
def test_body_sites_name_the_same_lesion_only_when_code_and_words_agree(first, later) -> None:
    assert (
        read(size("a", 2.0, date="2025-01-06", bodySite=first), size("b", 3.0, date="2025-06-01", bodySite=later)) == []
    )
