"""The guideline knowledge base: load and validate ``cards/``, match a patient summary, render cards.

``load_knowledge(path)`` once at start-up, then ``evaluate(summary, kb, base_url=...)`` per hook call.
"""

from __future__ import annotations

from ..protocol.cards import Card
from ..summary.model import PatientSummary
from .loader import KnowledgeError, load_knowledge
from .matcher import Gap, Match, match, match_with_vetoes
from .model import KnowledgeBase, Statement
from .render import render

__all__ = [
    "Gap",
    "KnowledgeBase",
    "KnowledgeError",
    "Match",
    "Statement",
    "evaluate",
    "load_knowledge",
    "match",
    "render",
]


def evaluate(summary: PatientSummary, kb: KnowledgeBase, *, base_url: str) -> list[Card]:
    """The cards for one patient: ``render(match(summary, kb))``, saying which vetoes applied."""
    matches, vetoes = match_with_vetoes(summary, kb)
    return render(matches, summary, base_url=base_url, knowledge=kb, vetoes=vetoes)
