"""Matched statements to CDS Hooks cards: one card per group, each saying what, from where, and why.

Card fields follow https://cds-hooks.hl7.org/2.0/#card-attributes: ``summary`` under 140
characters, ``detail`` in GitHub-flavoured markdown, ``source`` naming the guideline source,
absolute ``links`` to the statement pages, suggestions with ``selectionBehavior`` "any", and
override reasons on treatment cards. The statement ids and their evidence also travel in
``extension`` so a client can act on them without parsing text.
"""

from __future__ import annotations

import copy
import re
import string
from collections import defaultdict
from enum import Enum
from typing import Any, Iterable, Mapping, Sequence

from ..protocol.cards import (
    OVERRIDE_REASONS,
    SUMMARY_MAX,
    Action,
    ActionType,
    Card,
    Link,
    LinkType,
    SelectionBehavior,
    Source,
    Suggestion,
)
from ..summary.model import FACTS, Fact, PatientSummary
from .matcher import Gap, Match
from .model import Group, KnowledgeBase, Statement, SuggestionSpec

EXT_STATEMENTS = "org.sarcoma-cds.statements"
EXT_EVIDENCE = "org.sarcoma-cds.evidence"
EXT_RATIONALE = "org.sarcoma-cds.rationale"

NOT_KNOWN = "not known"
NOT_DETERMINED = "not determined"
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|@])")  # "@": no e-mail autolinks
_AUTOLINK = re.compile(r"(?i)(?:www\.|https?:|ftp:)")  # GFM extended autolinks: escape their last mark


def render(
    matches: Sequence[Match], summary: PatientSummary, *, base_url: str, knowledge: KnowledgeBase
) -> list[Card]:
    """One card per group present, critical first, then in the groups' order."""
    by_group: dict[str, list[Match]] = defaultdict(list)
    for m in matches:
        if m.statement.group is not None:
            by_group[m.statement.group].append(m)
    groups = sorted((knowledge.groups[g] for g in by_group), key=lambda g: (g.indicator.rank, g.order))
    withheld = frozenset(gap.key for m in matches for gap in m.gaps)
    return [_card(g, by_group[g.id], summary, knowledge, base_url.rstrip("/"), withheld) for g in groups]


def statement_url(base_url: str, statement_id: str) -> str:
    return f"{base_url.rstrip('/')}/statements/{statement_id}"


def _card(
    group: Group,
    matches: list[Match],
    summary: PatientSummary,
    kb: KnowledgeBase,
    base_url: str,
    withheld: frozenset[str],
) -> Card:
    matches = sorted(matches, key=lambda m: m.statement.sort_key)
    statements = [m.statement for m in matches]
    rationale = [kb.statements[rid] for rid in group.rationale]
    suggestions = tuple(_suggestion(spec, summary) for s in statements for spec in s.suggestions)
    return Card(
        summary=_summary(group, matches, summary, withheld),
        indicator=group.indicator,
        source=_source(statements[0], kb, base_url),
        detail=_detail(matches, rationale, kb),
        suggestions=suggestions,
        selectionBehavior=SelectionBehavior.ANY if suggestions else None,
        overrideReasons=OVERRIDE_REASONS if group.treatment else (),
        links=tuple(
            Link(label=f"{s.id}: {s.title}", url=statement_url(base_url, s.id), type=LinkType.ABSOLUTE)
            for s in [*statements, *rationale]
        ),
        extension=_extension(statements, rationale),
    )


def _summary(group: Group, matches: list[Match], summary: PatientSummary, withheld: frozenset[str]) -> str:
    """The statement's own summary when it stands alone; otherwise the group's title template.

    Facts a data-quality guardrail found in doubt read "not determined", never their doubtful value.
    """
    if len(matches) == 1 and not matches[0].gaps:
        return matches[0].statement.summary
    facts = summary.facts()
    values: dict[str, str] = {key: describe(fact.value) for key, fact in facts.items() if key not in withheld}
    names = {name for _, name, _, _ in string.Formatter().parse(group.title) if name}
    values.update({name: NOT_DETERMINED if name in withheld else NOT_KNOWN for name in names if name not in values})
    values["count"] = str(len(matches))
    values["missing"] = ", ".join(g.key.replace("_", " ") for m in matches for g in m.gaps) or NOT_KNOWN
    text = group.title.format(**values)
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


def _source(statement: Statement, kb: KnowledgeBase, base_url: str) -> Source:
    """The primary source of the card's first statement; a guardrail without one names itself."""
    doc = kb.primary_source(statement)
    if doc is None:
        return Source(label=f"Sarcoma CDS {statement.id}: {statement.title}", url=statement_url(base_url, statement.id))
    return Source(label=doc.label, url=doc.url)


def _detail(matches: list[Match], rationale: list[Statement], kb: KnowledgeBase) -> str:
    parts = [_statement_block(m.statement, kb) for m in matches]
    gaps = [gap for m in matches for gap in m.gaps]
    if gaps:
        parts.append("**Missing or in doubt**\n\n" + "\n".join(_gap_line(g) for g in gaps))
    facts = _facts_used(matches)
    if facts:
        parts.append("**Why**\n\n" + "\n".join(_fact_line(key, fact) for key, fact in facts.items()))
    if rationale:
        parts.append("\n".join(f"_{r.statement} ({r.id})_" for r in rationale))
    return "\n\n".join(parts)


def _statement_block(s: Statement, kb: KnowledgeBase) -> str:
    lines = [f"**{s.id}: {s.title}**", s.statement.strip()]
    if s.detail.strip():
        lines.append(s.detail.strip())
    lines.append(f"_Evidence:_ {evidence_text(s)}.")
    if s.citation.sources:
        names = [_source_name(kb, sid) for sid in s.citation.sources]
        lines.append(f"_Sources:_ {'; '.join(names)}.")
    return "\n\n".join(lines)


def _source_name(kb: KnowledgeBase, source_id: str) -> str:
    doc = kb.sources[source_id]
    return f"seed {doc.id}" if doc.kind == "seed" else doc.label


def evidence_text(s: Statement) -> str:
    """"[I, A] as reported by seed 004 ..." (F4: never as if ESMO said it)."""
    ev = s.citation.evidence
    return "no level of evidence given by the sources" if ev is None else f"{ev.level} as reported by {ev.reported_by}"


def _facts_used(matches: Iterable[Match]) -> dict[str, Fact[Any]]:
    used: dict[str, Fact[Any]] = {}
    for m in matches:
        used.update(m.facts)
    order = list(FACTS)
    return dict(sorted(used.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))


def _fact_line(key: str, fact: Fact[Any]) -> str:
    line = f"- {_label(key)}: {_md(describe(fact.value))}"
    if fact.basis:
        line += f"; {_md(fact.basis)}"
    if fact.sources:
        line += f" ({_md(', '.join(fact.sources))})"
    return line


def _gap_line(gap: Gap) -> str:
    state = NOT_KNOWN if gap.fact is None else f"in doubt (recorded as {describe(gap.fact.value)})"
    line = f"- {_label(gap.key)}: {_md(state)}."
    for finding in gap.findings:
        line += f" {_md(finding.message)}"
        if finding.sources:
            line += f" ({_md(', '.join(finding.sources))})"
    return line


def _label(key: str) -> str:
    spec = FACTS.get(key)
    return spec.label if spec else key


def describe(value: Any) -> str:
    """A fact value in words for a clinician."""
    if isinstance(value, Enum):
        return str(value.value).replace("-", " ")  # "lung-only" -> "lung only"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (set, frozenset, tuple, list)):
        return ", ".join(sorted(describe(v) for v in value)) or "none"
    return str(value)


def _md(text: str) -> str:
    """Record-derived text is shown as text, never as markup: one line, markup characters escaped,
    and no autolinks (a "www." or "scheme:" in a record must not become a link on the card)."""
    one_line = " ".join(text.split())
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", one_line)
    return _AUTOLINK.sub(lambda m: m.group(0)[:-1] + "\\" + m.group(0)[-1], escaped)


def _suggestion(spec: SuggestionSpec, summary: PatientSummary) -> Suggestion:
    resource: dict[str, Any] = copy.deepcopy(dict(spec.resource))
    if summary.patient:
        resource["subject"] = {"reference": summary.patient}
    return Suggestion(label=spec.label, actions=(Action(ActionType.CREATE, spec.label, resource=resource),))


def _extension(statements: list[Statement], rationale: list[Statement]) -> dict[str, Any]:
    evidence: list[Mapping[str, Any]] = []
    for s in statements:
        ev = s.citation.evidence
        entry: dict[str, Any] = {"statement": s.id}
        if ev is not None:
            entry.update(level=ev.level, reported_by=ev.reported_by)
        evidence.append(entry)
    extension: dict[str, Any] = {EXT_STATEMENTS: [s.id for s in statements], EXT_EVIDENCE: evidence}
    if rationale:
        extension[EXT_RATIONALE] = [r.id for r in rationale]
    return extension
