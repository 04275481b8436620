"""From the patient's resources to cards: summarise, then match the knowledge base and render.

Shared by the hook endpoint, the command line and the benchmark, so all three give the same cards.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any, Iterable, Mapping

from .knowledge import KnowledgeBase, evaluate
from .protocol.cards import Card
from .summary import summarise
from .summary.model import Finding, FindingKind, PatientSummary


def summarise_with_gaps(
    resources: Iterable[Mapping[str, Any]],
    *,
    today: date,
    synchronous_months: float,
    unavailable: Mapping[str, str] | None = None,
) -> PatientSummary:
    """The summary, plus a finding for each prefetch key the EHR reported it could not give."""
    summary = summarise(resources, today=today, synchronous_months=synchronous_months)
    if not unavailable:
        return summary
    gaps = tuple(
        Finding(FindingKind.MISSING, key, f"The EHR could not provide '{key}': {why}.")
        for key, why in sorted(unavailable.items())
    )
    return replace(summary, findings=summary.findings + gaps)


def cards_for(
    resources: Iterable[Mapping[str, Any]],
    *,
    knowledge: KnowledgeBase,
    base_url: str,
    today: date,
    synchronous_months: float = 3.0,
    unavailable: Mapping[str, str] | None = None,
) -> list[Card]:
    summary = summarise_with_gaps(
        resources, today=today, synchronous_months=synchronous_months, unavailable=unavailable
    )
    return evaluate(summary, knowledge, base_url=base_url)
