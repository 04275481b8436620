"""The compiled knowledge base: statements, guardrails, card groups and sources from ``cards/``.

One statement or guardrail per YAML file (``S28.yaml``, ``G7.yaml``), compiled once at start-up by
``loader.load_knowledge``; the matcher and renderer only read these frozen objects.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from ..protocol.cards import Indicator
from ..summary.model import FACT_KEYS, FindingKind
from .conditions import AllOf
from .presentation import Presentation

ROLES = ("recommendation", "information", "rationale", "guardrail", "rule")
"""recommendation/information/guardrail are matched and shown; rationale is quoted by its group
(S02, S37); rule is enforced by the loader or matcher and never shown (G4, G6)."""

LINES = ("first", "later", "any")
"""Line of therapy a statement is for; G6 ties first to ``lines_of_therapy <= 0``, later to ``>= 1``."""

INTERNAL_LANGUAGE = re.compile(
    r"\bseeds?\b|\.txt\b|\bURL inferred\b|\bflags?\b|\bF(?:[1-9]|10)\b|\bV-(?:TXT|IG|ONT|2)\b|\(R\)"
    r"|\bloader\b|\bDEVELOPERS\b",
    re.IGNORECASE,
)
"""Words that must never reach a clinician (R6): source-file names, review flags (F1-F10),
verification markers and loader wording. Card text, statement pages and source labels are checked."""

CLINICIAN_TEXT = ("title", "statement", "summary", "detail", "description", "option")
"""The statement fields a clinician reads (cards and statement pages)."""


def _filled(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


def _clinical(text: str) -> str:
    """R6: text a clinician reads never carries internal language (source files, flags, markers)."""
    found = INTERNAL_LANGUAGE.search(text)
    if found:
        raise ValueError(f"{found.group(0)!r} is internal language; say it in clinical words (R6)")
    return text


def _fact_key(key: str) -> str:
    if key not in FACT_KEYS:
        raise ValueError(f"unknown fact key {key!r}")
    return key


def _placeholders(template: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(f"bad template ({exc})") from None


def _evidence_wording(wording: str) -> str:
    if _placeholders(wording) != ["level"]:
        raise ValueError("must hold {level} exactly once and no other placeholder")
    return wording


def _title(title: str) -> str:
    unknown = set(_placeholders(title)) - _TEMPLATE_NAMES
    if unknown:
        raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; allowed: fact keys, count, missing")
    return title


def _year_or_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


_TEMPLATE_NAMES = frozenset(FACT_KEYS) | {"count", "missing"}
Text = Annotated[StrictStr, AfterValidator(_filled)]
"""Quoted, non-empty text (an unquoted ``004`` is a number to YAML, and refused)."""
ClinicianText = Annotated[Text, AfterValidator(_clinical)]
FactKey = Annotated[StrictStr, AfterValidator(_fact_key)]


class YamlModel(BaseModel):
    """A YAML mapping of ``cards/``: unknown keys refused, immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceDoc(YamlModel):
    """A guideline source: one of the five seeds (000-004) or a public reference a guardrail cites.

    Clinicians see ``label`` (as a reader would cite it, R6), ``url`` and ``date``; ``file`` and
    ``review_note`` are for reviewers only and never rendered.
    """

    id: Text
    file: Text | None = None
    label: ClinicianText
    url: Text | None = None
    date: Annotated[Text, BeforeValidator(_year_or_text)]
    kind: Literal["seed", "reference"]
    review_note: Text | None = None
    evidence_wording: Annotated[Text, AfterValidator(_evidence_wording)] | None = None  # "{level}, ESMO ..." (R6)

    @model_validator(mode="after")
    def _seed_file_named_by_id(self) -> SourceDoc:
        if self.kind == "seed" and not (self.file or "").startswith(f"{self.id}_"):
            raise ValueError(f"a seed file name starts with its id ({self.id}_...)")
        return self


class Group(YamlModel):
    """A clinician-facing card: statements of one group are shown together."""

    id: Text
    title: Annotated[Text, AfterValidator(_title)]  # template over fact keys, {count} and {missing}
    indicator: Indicator
    order: StrictInt
    description: Text
    treatment: StrictBool = False  # carries override reasons
    sts_only: StrictBool = True  # every statement must require diagnosis: sts (G1-G3)
    requires: tuple[FactKey, ...] = ()  # facts that must be known for any statement to show (G7)
    rationale: tuple[Text, ...] = ()  # rationale statements quoted on the card (S02, S37)


@dataclass(frozen=True)
class Evidence:
    """A level of evidence as one source quotes it; ``text`` is its wording for clinicians,
    compiled from that source's ``evidence_wording`` so no card can word it as if ESMO said it."""

    level: str  # "[I, A]" on the ESMO scale (level of evidence, grade of recommendation)
    reported_by: str  # id of the source that quotes the level, e.g. "004"
    text: str = ""  # "[I, A], ESMO grading as quoted by Dr.Oracle; not verified against ..."


@dataclass(frozen=True)
class Citation:
    """``sources[0]`` is the source of the statement's principal recommendation: the card's source (R6).
    ``cross_check`` is a note for reviewers, never rendered to clinicians."""

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
    """A guardrail veto: these statements (or, with ``every``, all of them) never show while
    ``predicate`` holds (G4, G8)."""

    statements: tuple[str, ...]
    predicate: AllOf
    reason: str
    every: bool = False


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
    ranks_before: tuple[str, ...] = ()
    specific_when: AllOf | None = None  # the histologies it is the histology-specific option for (G4)
    follows_when: AllOf | None = None  # then it follows the other options of its group
    context_facts: tuple[str, ...] = ()  # shown under "why" when known, not conditions
    suggestions: tuple[SuggestionSpec, ...] = ()
    flags: tuple[str, ...] = ()
    data_quality: DataQuality | None = None
    forbid: tuple[Forbid, ...] = ()
    never_recommend: tuple[str, ...] = ()
    option: str | None = None  # the treatment it names, as the plan card's summary lists it

    @property
    def kind(self) -> str:
        return "guardrail" if self.id.startswith("G") else "statement"

    @property
    def sort_key(self) -> tuple[str, int]:
        return (self.id[0], int(self.id[1:]))

    def to_json(self, sources: Mapping[str, SourceDoc]) -> dict[str, Any]:
        """The statement page's JSON: the statement, its situation and its citation; notes for
        reviewers (cross-check, flags, source files) sit apart under ``review``."""
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
            "ranks_before": list(self.ranks_before),
            "citation": {
                "sources": [_source_json(sources[s]) for s in self.citation.sources],
                "evidence": None
                if evidence is None
                else {"level": evidence.level, "reported_by": evidence.reported_by, "text": evidence.text},
                "derived_from": list(self.citation.derived_from),
            },
            "review": {
                "cross_check": self.citation.cross_check,
                "flags": list(self.flags),
                "source_files": [f for f in (sources[s].file for s in self.citation.sources) if f],
            },
        }


def _source_json(source: SourceDoc) -> dict[str, Any]:
    return {"id": source.id, "label": source.label, "url": source.url, "date": source.date}


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
    presentation: Presentation | None = None
    _shown: tuple[Statement, ...] = field(default=(), repr=False)
    _forbids: tuple[Forbid, ...] = field(default=(), repr=False)
    version: str = ""  # release + content hash, e.g. "2.0.0+1a2b3c4d5e6f"; every card carries it (R6)

    @classmethod
    def build(
        cls,
        statements: Mapping[str, Statement],
        groups: Mapping[str, Group],
        sources: Mapping[str, SourceDoc],
        path: str,
        presentation: Presentation | None = None,
        version: str = "",
    ) -> KnowledgeBase:
        ordered = dict(sorted(statements.items(), key=lambda item: item[1].sort_key))
        shown = tuple(s for s in ordered.values() if s.predicate is not None)
        forbids = tuple(f for s in ordered.values() for f in s.forbid)
        return cls(
            MappingProxyType(ordered),
            MappingProxyType(dict(groups)),
            MappingProxyType(dict(sources)),
            path,
            presentation,
            shown,
            forbids,
            version=version,
        )

    def statement(self, statement_id: str) -> Statement | None:
        return self.statements.get(statement_id)

    def matchable(self) -> tuple[Statement, ...]:
        """Statements with a `when:` block, in id order."""
        return self._shown

    def forbids(self) -> tuple[Forbid, ...]:
        """Every statement's vetoes, in id order."""
        return self._forbids

    def primary_source(self, statement: Statement) -> SourceDoc | None:
        """The source of the statement's principal recommendation, listed first (R6)."""
        return self.sources[statement.citation.sources[0]] if statement.citation.sources else None
