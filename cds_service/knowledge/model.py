"""The compiled knowledge base: statements, guardrails, card groups and sources from ``cards/``.

One statement or guardrail per YAML file (``S28.yaml``, ``G7.yaml``), compiled once at start-up by
``loader.load_knowledge``; the matcher and renderer only read these frozen objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from ..protocol.cards import Indicator
from ..summary.model import FindingKind
from .conditions import AllOf

ROLES = ("recommendation", "information", "rationale", "guardrail", "rule")
"""recommendation/information/guardrail are matched and shown; rationale is quoted by its group
(S02, S37); rule is enforced by the loader or matcher and never shown (G4, G6)."""

LINES = ("first", "later", "any")
"""Line of therapy a statement is for; G6 ties first to ``lines_of_therapy <= 0``, later to ``>= 1``."""


@dataclass(frozen=True)
class SourceDoc:
    """A guideline source: one of the five seeds (000-004) or a public reference a guardrail cites."""

    id: str
    file: str | None
    label: str
    url: str | None
    date: str
    kind: str  # "seed" or "reference"
    note: str | None = None


@dataclass(frozen=True)
class Group:
    """A clinician-facing card: statements of one group are shown together."""

    id: str
    title: str  # template over fact keys, {count} and {missing}
    indicator: Indicator
    order: int
    description: str
    treatment: bool = False  # carries override reasons
    sts_only: bool = True  # every statement must require diagnosis: sts (G1-G3)
    requires: tuple[str, ...] = ()  # facts that must be known for any statement to show (G7)
    rationale: tuple[str, ...] = ()  # rationale statements quoted on the card (S02, S37)


@dataclass(frozen=True)
class Evidence:
    level: str  # "[I, A]" on the ESMO scale (clinical.md 0.2)
    reported_by: str  # who states the level, e.g. "seed 004 (004_6a1ec949adfd3eb7.txt)"


@dataclass(frozen=True)
class Citation:
    sources: tuple[str, ...]
    evidence: Evidence | None
    cross_check: str
    derived_from: tuple[str, ...] = ()  # statement ids a guardrail rests on


@dataclass(frozen=True)
class SuggestionSpec:
    """A suggestion with one create action; the renderer adds the patient as subject."""

    label: str
    resource: Mapping[str, Any]


@dataclass(frozen=True)
class DataQuality:
    """G7: facts whose absence or doubtful value blocks the decisions that depend on them."""

    facts: tuple[str, ...]
    unusable_when: tuple[FindingKind, ...]  # finding kinds that make a present fact unusable
    not_expected: Mapping[str, AllOf] = field(default_factory=dict)  # fact -> when its absence is no gap


@dataclass(frozen=True)
class Forbid:
    """A guardrail veto: these statements never show while ``predicate`` holds (G4)."""

    statements: tuple[str, ...]
    predicate: AllOf
    reason: str


@dataclass(frozen=True)
class Statement:
    id: str
    title: str
    role: str
    statement: str
    description: str
    summary: str
    citation: Citation
    file: str
    group: str | None = None
    when: Mapping[str, Any] | None = None
    predicate: AllOf | None = None
    detail: str = ""
    line: str = "any"
    overrides: tuple[str, ...] = ()
    context_facts: tuple[str, ...] = ()  # shown under "why" when known, not conditions
    suggestions: tuple[SuggestionSpec, ...] = ()
    flags: tuple[str, ...] = ()
    data_quality: DataQuality | None = None
    forbid: tuple[Forbid, ...] = ()
    never_recommend: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return "guardrail" if self.id.startswith("G") else "statement"

    @property
    def sort_key(self) -> tuple[str, int]:
        return (self.id[0], int(self.id[1:]))

    def to_json(self, sources: Mapping[str, SourceDoc]) -> dict[str, Any]:
        """The statement page's JSON: the statement, its situation and its full citation."""
        evidence = self.citation.evidence
        return {
            "id": self.id,
            "kind": self.kind,
            "role": self.role,
            "title": self.title,
            "statement": self.statement,
            "situation": self.description,
            "when": _plain(self.when) if self.when is not None else None,
            "group": self.group,
            "line": self.line,
            "summary": self.summary,
            "detail": self.detail,
            "overrides": list(self.overrides),
            "flags": list(self.flags),
            "citation": {
                "sources": [_source_json(sources[s]) for s in self.citation.sources],
                "evidence": None
                if evidence is None
                else {"level": evidence.level, "reported_by": evidence.reported_by},
                "cross_check": self.citation.cross_check,
                "derived_from": list(self.citation.derived_from),
            },
        }


def _source_json(source: SourceDoc) -> dict[str, Any]:
    return {"id": source.id, "file": source.file, "label": source.label, "url": source.url, "date": source.date}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class KnowledgeBase:
    statements: Mapping[str, Statement]
    groups: Mapping[str, Group]
    sources: Mapping[str, SourceDoc]
    path: str = ""
    _shown: tuple[Statement, ...] = field(default=(), repr=False)

    @classmethod
    def build(
        cls,
        statements: Mapping[str, Statement],
        groups: Mapping[str, Group],
        sources: Mapping[str, SourceDoc],
        path: str,
    ) -> "KnowledgeBase":
        ordered = dict(sorted(statements.items(), key=lambda item: item[1].sort_key))
        shown = tuple(s for s in ordered.values() if s.predicate is not None)
        return cls(
            MappingProxyType(ordered), MappingProxyType(dict(groups)), MappingProxyType(dict(sources)), path, shown
        )

    def statement(self, statement_id: str) -> Statement | None:
        return self.statements.get(statement_id)

    def matchable(self) -> tuple[Statement, ...]:
        """Statements with a `when:` block, in id order."""
        return self._shown

    def forbids(self) -> tuple[Forbid, ...]:
        return tuple(f for s in self.statements.values() for f in s.forbid)

    def primary_source(self, statement: Statement) -> SourceDoc | None:
        return self.sources[statement.citation.sources[0]] if statement.citation.sources else None
