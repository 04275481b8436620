"""From the patient's resources to cards: summarise, then match the knowledge base and render.

Shared by the hook endpoint, the command line and the benchmark, so all three give the same cards.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any, Iterable, Mapping

from .knowledge import KnowledgeBase, evaluate
from .protocol.cards import Card
from .protocol.services import SARCOMA_PATIENT_VIEW, Query
from .summary import summarise
from .summary.completeness import facts_fed_by, incomplete
from .summary.model import Diagnosis, Fact, Finding, FindingKind, PatientSummary


def summarise_with_gaps(
    resources: Iterable[Mapping[str, Any]],
    *,
    today: date,
    synchronous_months: float,
    unavailable: Mapping[str, str] | None = None,
) -> PatientSummary:
    """The summary; facts fed by a prefetch key the EHR could not give are marked incomplete.

    Without the patient's Conditions no diagnosis can be read, so the diagnosis is then
    "unreadable" rather than "none": the data-quality card (G7) speaks instead of silence.
    """
    summary = summarise(resources, today=today, synchronous_months=synchronous_months)
    if not unavailable:
        return summary
    gaps: list[Finding] = []
    for key, why in sorted(unavailable.items()):
        resource_type = Query.parse(SARCOMA_PATIENT_VIEW.prefetch[key]).resource_type
        gaps += incomplete(facts_fed_by(resource_type), f"The EHR could not provide '{key}' ({why}); "
                           "this may rest on partial data.")
        gaps.append(Finding(FindingKind.MISSING, key, f"The EHR could not provide '{key}': {why}."))
    diagnosis = summary.diagnosis
    if "conditions" in unavailable and diagnosis.value is Diagnosis.NONE:
        diagnosis = Fact(Diagnosis.UNREADABLE, (), "the EHR could not provide the patient's Conditions")
    return replace(summary, diagnosis=diagnosis, findings=summary.findings + tuple(gaps))


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
