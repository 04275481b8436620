"""Which statements apply to a patient, and on which facts. All clinical logic is in ``cards/``.

The matcher only applies generic rules, each from a guardrail:

- G7: a fact a data-quality guardrail watches is unusable when it is unknown or a finding of a listed
  kind (e.g. a contradiction) is about it. Unusable facts are withheld from every statement, so a
  statement that depends on them does not match; a group's ``requires`` facts must be usable for
  any of its statements to show. The guardrail itself matches and names them.
- G4: ``forbid`` rules veto statements (pazopanib never for liposarcoma), and a matched statement
  hides the statements it ``overrides`` (histology-specific first lines over doxorubicin).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..summary.model import Fact, Finding, PatientSummary
from .model import Forbid, KnowledgeBase, Statement


@dataclass(frozen=True)
class Gap:
    """A fact a data-quality guardrail found unusable, with the findings that explain why."""

    key: str
    fact: Fact[Any] | None
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class Match:
    """A statement that applies, with the facts it was matched on (the card's "why")."""

    statement: Statement
    facts: Mapping[str, Fact[Any]]
    gaps: tuple[Gap, ...] = ()


def match(summary: PatientSummary, kb: KnowledgeBase) -> list[Match]:
    """The statements that apply to ``summary``, after vetoes and precedence, in id order."""
    return match_with_vetoes(summary, kb)[0]


def match_with_vetoes(summary: PatientSummary, kb: KnowledgeBase) -> tuple[list[Match], tuple[Forbid, ...]]:
    """The statements that apply, and the vetoes that removed one that would otherwise have shown
    (so the card can say why, R3)."""
    facts = summary.facts()
    gaps = _gaps(summary, kb, facts)
    withheld = {gap.key for found in gaps.values() for gap in found}
    usable = {key: fact for key, fact in facts.items() if key not in withheld}
    waiting = _waiting_groups(kb, usable)
    matches = [m for s in kb.matchable() if (m := _match_one(s, waiting, usable, gaps.get(s.id, ()))) is not None]
    holding = [rule for rule in kb.forbids() if rule.predicate.holds(usable)]
    if any(rule.every for rule in holding):
        return [], ()
    matched = {m.statement.id for m in matches}
    applied = tuple(rule for rule in holding if matched & set(rule.statements))
    vetoed = {sid for rule in holding for sid in rule.statements}
    matches = [m for m in matches if m.statement.id not in vetoed]
    overridden = {sid for m in matches for sid in m.statement.overrides}
    return [m for m in matches if m.statement.id not in overridden], applied


def _waiting_groups(kb: KnowledgeBase, usable: Mapping[str, Fact[Any]]) -> frozenset[str]:
    """The groups none of whose statements may show: a fact they ``require`` is not usable (G7)."""
    return frozenset(gid for gid, group in kb.groups.items() if any(key not in usable for key in group.requires))


def _match_one(
    statement: Statement, waiting: frozenset[str], usable: Mapping[str, Fact[Any]], gaps: tuple[Gap, ...]
) -> Match | None:
    assert statement.predicate is not None
    if statement.data_quality is not None and not gaps:
        return None
    if statement.group and statement.group in waiting:
        return None
    if not statement.predicate.holds(usable):
        return None
    keys = statement.predicate.used(usable) | set(statement.context_facts)
    used = {key: usable[key] for key in keys if key in usable}
    return Match(statement, used, gaps)


def _gaps(summary: PatientSummary, kb: KnowledgeBase, facts: Mapping[str, Fact[Any]]) -> dict[str, tuple[Gap, ...]]:
    """For each data-quality guardrail, the watched facts that are unknown or in doubt (G7)."""
    out: dict[str, tuple[Gap, ...]] = {}
    for statement in kb.matchable():
        dq = statement.data_quality
        if dq is None or statement.predicate is None or not statement.predicate.holds(facts):
            continue
        found = []
        for key in dq.facts:
            if key in dq.not_expected and dq.not_expected[key].holds(facts):
                continue  # e.g. no AJCC 8 stage group exists for this site: nothing is missing
            about = tuple(f for f in summary.findings if f.about == key)
            doubtful = any(f.kind in dq.unusable_when for f in about)
            if key not in facts or doubtful:
                found.append(Gap(key, facts.get(key), about))
        if found:
            out[statement.id] = tuple(found)
    return out
