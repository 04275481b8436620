"""The fact table: each fact declared once, with what feeds it (G6, G7)."""

from __future__ import annotations

from datetime import date

import pytest
from fhir_builders import primary

from cds_service.summary import summarise
from cds_service.summary.model import FactSpec, FindingKind, ValueKind, fact, facts_fed_by

TODAY = date(2025, 1, 1)
EVERY_OBSERVATION_FED_FACT = {
    *("histology", "histology_detail", "t", "n", "m", "grade", "tumour_size_cm"),
    *("stage", "stage_recorded", "stage_computed", "extent", "disease_status"),
    *("ecog", "performance_status_recent", "progression", "current_line", "line_ongoing"),
    *(
        "resection_margin",
        "resectability",
        "symptomatic",
        "growth",
        "pregnant",
        "deceased",
        "death_noted",
        "progression_noted",
        "progression_disputed",
    ),
}


def test_a_declared_fact_carries_its_card_name_values_bounds_feeds_and_quoting() -> None:
    declared = fact(
        "ECOG", ValueKind.NUMBER, codes=[0, 1], low=0, high=5, fed_by=("Observation:ecog",), default=(), quote=True
    )
    assert declared.metadata["fact"] == FactSpec(
        "ECOG", ValueKind.NUMBER, frozenset({"0", "1"}), 0, 5, ("Observation:ecog",), True
    )
    assert declared.default_factory() == ()
    plain = fact("histology", ValueKind.CODE)
    assert plain.metadata["fact"] == FactSpec("histology", ValueKind.CODE)
    assert plain.default is None


@pytest.mark.parametrize(
    "record,facts",
    [
        ("Observation", EVERY_OBSERVATION_FED_FACT),
        ("Observation:ecog", {"ecog", "performance_status_recent"}),
    ],
)
def test_the_facts_a_record_feeds(record: str, facts: set[str]) -> None:
    assert set(facts_fed_by(record)) == facts


def test_observations_the_ehr_could_not_provide_leave_every_fact_they_feed_incomplete() -> None:
    summary = summarise(
        [primary(snomed="443719001", body_site="61685007", onset="2020-01-01")],
        today=TODAY,
        unavailable={"Observation": "its query answered with an error"},
    )
    incomplete = {f.about for f in summary.findings if f.kind is FindingKind.INCOMPLETE}
    assert incomplete == EVERY_OBSERVATION_FED_FACT
