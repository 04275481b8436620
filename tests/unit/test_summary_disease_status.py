"""Disease status and progression (S38)."""

from __future__ import annotations

from datetime import date

from fhir_builders import disease_status, med_administration, med_request, primary, rxnorm, secondary

from cds_service.summary import summarise
from cds_service.summary.model import DiseaseStatus

TODAY = date(2025, 1, 1)
BASE = [primary(snomed="443719001", onset="2020-01-01"), secondary("lung", onset="2021-01-01")]
DOXORUBICIN = rxnorm("1790099")


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
