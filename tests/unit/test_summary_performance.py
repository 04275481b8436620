"""ECOG performance status, with Karnofsky mapping."""

from __future__ import annotations

from datetime import date

import pytest
from fhir_builders import LOINC, concept, ecog, karnofsky, observation, primary

from cds_service.summary import summarise
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
