"""From the patient's resources to cards: summarise, then match the knowledge base and render.

Shared by the hook endpoint, the command line and the benchmark, so all three give the same cards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from .knowledge import KnowledgeBase, evaluate
from .protocol.cards import Card
from .summary import summarise
from .summary.validate import shared_elements


def cards_for(
    resources: Iterable[Mapping[str, Any]],
    *,
    knowledge: KnowledgeBase,
    base_url: str,
    today: date,
    synchronous_months: float = 3.0,
    unavailable: Mapping[str, str] | None = None,
) -> list[Card]:
    """``unavailable``: resource types the EHR could not provide, with why (``fhir.gather``)."""
    with shared_elements():
        summary = summarise(resources, today=today, synchronous_months=synchronous_months, unavailable=unavailable)
    return evaluate(summary, knowledge, base_url=base_url)
