"""Load and validate ``cards/`` once at start-up; any fault stops the service with a clear message.

The shape of every file (fields, types, required and unknown keys, closed vocabularies) is the
pydantic models below and in ``model.py``; this module adds what spans fields or files: unknown
condition keys, operators and values (``conditions.py``), dangling ids (groups, sources,
overrides, rationale), duplicate ids, ids that differ from the file name, and the guardrails that
can be checked on the data alone: G1-G3 (STS groups require ``diagnosis: sts``), G5 (no
recommendation names a withdrawn drug) and G6 (first-line and later-line statements constrain the
line).

Citations (R6): a level of evidence names the source that quotes it (``reported_by``), which must be
one of the statement's sources and say in ``sources.yaml`` how its levels are worded. ``VERSION``
and ``CHANGELOG.md`` give the release; the loaded knowledge base is versioned as
``<release>+<hash of the card files>``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from ..protocol.cards import SUMMARY_MAX
from ..summary.model import FindingKind
from .conditions import AllOf, ConditionError, compile_when
from .model import (
    LINES,
    ROLES,
    Citation,
    ClinicianText,
    DataQuality,
    Evidence,
    FactKey,
    Forbid,
    Group,
    KnowledgeBase,
    SourceDoc,
    Statement,
    SuggestionSpec,
    Text,
    YamlModel,
)
from .presentation import LABELS_FILE, LAYOUT_FILE, PresentationError, load_presentation

SOURCES_FILE = "sources.yaml"
GROUPS_FILE = "groups.yaml"
VERSION_FILE = "VERSION"
CHANGELOG_FILE = "CHANGELOG.md"
_RELEASE = re.compile(r"^\d+\.\d+\.\d+$")
_SHOWN_ROLES = ("recommendation", "information", "guardrail")


class KnowledgeError(ValueError):
    """``cards/`` is invalid; the message names the file and the field."""

    def __init__(self, file: str, field: str, message: str) -> None:
        super().__init__(f"cards/{file}: {field}: {message}")
        self.file = file
        self.field = field
        self.message = message


def _matching(pattern: str, what: str) -> AfterValidator:
    def check(text: str) -> str:
        if not re.fullmatch(pattern, text):
            raise ValueError(f"{text!r} is not {what}")
        return text

    return AfterValidator(check)


def _one_of(allowed: tuple[str, ...], what: str) -> AfterValidator:
    def check(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"unknown {what} {text!r}; allowed: {', '.join(allowed)}")
        return text

    return AfterValidator(check)


def _at_most(limit: int) -> AfterValidator:
    def check(text: str) -> str:
        if len(text) > limit:
            raise ValueError(f"{len(text)} characters; a card summary has at most {limit}")
        return text

    return AfterValidator(check)


def _every_or_ids(value: Any) -> Any:
    return () if value == "all" else value


class SourcesFile(YamlModel):
    sources: tuple[SourceDoc, ...]


class GroupsFile(YamlModel):
    groups: tuple[Group, ...]


class EvidenceDoc(YamlModel):
    """A level worded the way its source must be quoted, plus an optional caveat for clinicians (F2)."""

    level: Annotated[Text, _matching(r"\[(I|II|III|IV|V), [A-E]\]", "an ESMO level and grade such as '[I, A]'")]
    reported_by: Text
    caveat: Text | None = None


class CitationDoc(YamlModel):
    """The first source is the principal one (R6)."""

    sources: tuple[Text, ...] = ()
    evidence: EvidenceDoc | None = Field(description="write null when no source gives a level")
    cross_check: Text
    derived_from: tuple[Text, ...] = ()


class PrecedenceDoc(YamlModel):
    overrides: tuple[Text, ...] = ()
    ranks_before: tuple[Text, ...] = ()  # shown together, this option comes first on the plan card
    # the histologies in which this option without a histology condition is the histology-specific one (G4)
    specific_when: dict[str, Any] | None = None
    # when it holds, this option follows the other options of its group ("if not used in first line"
    # once that drug was used)
    follows_when: dict[str, Any] | None = None


class SuggestionDoc(YamlModel):
    label: Text
    resource: dict[str, Any]


class DataQualityDoc(YamlModel):
    facts: tuple[FactKey, ...]
    unusable_when: tuple[FindingKind, ...] = ()
    not_expected: dict[str, Any] | None = None


class ForbidDoc(YamlModel):
    statements: Annotated[tuple[Text, ...], BeforeValidator(_every_or_ids)]  # ids, or "all"
    when: dict[str, Any]
    reason: Text


class StatementFile(YamlModel):
    """One statement or guardrail file (``S28.yaml``, ``G7.yaml``)."""

    id: Annotated[Text, _matching(r"S\d{2}|G\d+", "a statement (S01) or guardrail (G1) id")]
    title: ClinicianText
    role: Annotated[Text, _one_of(ROLES, "role")]
    group: Text | None = None
    line: Annotated[Text, _one_of(LINES, "line")] = "any"
    statement: ClinicianText
    description: ClinicianText
    when: dict[str, Any] | None = None
    summary: Annotated[ClinicianText, _at_most(SUMMARY_MAX)]
    detail: ClinicianText = ""
    citation: CitationDoc
    precedence: PrecedenceDoc | None = None
    context_facts: tuple[FactKey, ...] = ()
    suggestions: tuple[SuggestionDoc, ...] = ()
    flags: tuple[Annotated[Text, _matching(r"F\d+", "a flag id (F1..F10)")], ...] = ()
    data_quality: DataQualityDoc | None = None
    forbid: tuple[ForbidDoc, ...] = ()
    never_recommend: tuple[Text, ...] = ()
    option: ClinicianText | None = None  # the treatment it names, as the plan card's summary lists it


_Model = TypeVar("_Model", bound=BaseModel)


def _parse(file: str, model: type[_Model], data: Mapping[str, Any]) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        raise KnowledgeError(file, _place(first["loc"]), _problem(model, first)) from None


def _place(loc: tuple[int | str, ...]) -> str:
    """``citation.evidence.level``, ``sources[0].label``; ``-`` for the whole file."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".") or "-"


def _problem(model: type[BaseModel], error: ErrorDetails) -> str:
    """One line saying what is wrong, in the words of the file rather than of pydantic."""
    kind, loc = error["type"], error["loc"]
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    if kind == "string_type":
        return f"must be quoted text, not {_shown(error['input'])}"
    if kind in ("model_type", "dict_type"):
        return f"must be a mapping of names to values, not {_shown(error['input'])}"
    if kind in ("enum", "literal_error"):
        return f"unknown value {error['input']!r}; expected {error.get('ctx', {}).get('expected', '')}"
    if kind == "extra_forbidden":
        parent = _field_model(model, loc[:-1])
        return f"unknown field; allowed: {', '.join(parent.model_fields)}" if parent else "unknown field"
    if kind == "missing":
        field = _field(model, loc)
        hint = f" ({field.description})" if field and field.description else ""
        return f"required field is missing{hint}"
    return error["msg"]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _field(model: type[BaseModel], loc: tuple[int | str, ...]) -> FieldInfo | None:
    """The declaration of the field at ``loc`` (list indices skipped), if it is a model field."""
    parent = _field_model(model, loc[:-1])
    return parent.model_fields.get(str(loc[-1])) if parent and loc else None


def _field_model(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, str):
            info = current.model_fields.get(part) if current else None
            current = _model_in(info.annotation) if info else None
    return current


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((found for arg in get_args(annotation) if (found := _model_in(arg))), None)


def load_knowledge(path: Path | str) -> KnowledgeBase:
    """Read, validate and compile ``cards/``; raise ``KnowledgeError`` on the first fault."""
    root = Path(path)
    if not root.is_dir():
        raise KnowledgeError(str(root), "-", "the knowledge base directory does not exist")
    sources = _load_sources(root / SOURCES_FILE)
    groups = _load_groups(root / GROUPS_FILE)
    statements: dict[str, Statement] = {}
    for file in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
        if file.name in {SOURCES_FILE, GROUPS_FILE, LAYOUT_FILE, LABELS_FILE}:
            continue
        statement = _load_statement(file, sources)
        if statement.id in statements:
            first = statements[statement.id].file
            raise KnowledgeError(file.name, "id", f"duplicate id {statement.id!r} (also in {first})")
        statements[statement.id] = statement
    _check_links(statements, groups, sources)
    _check_guardrails(statements, groups)
    try:
        presentation = load_presentation(root, set(groups))
    except PresentationError as error:
        file_name, _, message = str(error).partition(": ")
        raise KnowledgeError(file_name, "-", message) from None
    unknown = set(presentation.layout.background) - set(statements)
    if unknown:
        raise KnowledgeError(LAYOUT_FILE, "background", f"unknown statement id(s) {', '.join(sorted(unknown))}")
    return KnowledgeBase.build(statements, groups, sources, str(root), presentation, version=_version(root))


def _read(file: Path) -> Mapping[str, Any]:
    if not file.is_file():
        raise KnowledgeError(file.name, "-", "file is missing")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise KnowledgeError(
            file.name, "-", f"not valid YAML ({where}{getattr(exc, 'problem', None) or exc})"
        ) from None
    if not isinstance(data, dict):
        raise KnowledgeError(file.name, "-", "must hold a YAML mapping")
    return data


def _load_sources(file: Path) -> dict[str, SourceDoc]:
    return _by_id(file.name, "sources", _parse(file.name, SourcesFile, _read(file)).sources)


def _load_groups(file: Path) -> dict[str, Group]:
    return _by_id(file.name, "groups", _parse(file.name, GroupsFile, _read(file)).groups)


_Entry = TypeVar("_Entry", SourceDoc, Group)


def _by_id(file: str, section: str, entries: tuple[_Entry, ...]) -> dict[str, _Entry]:
    """The entries of a list by their id, which must be unique."""
    found: dict[str, _Entry] = {}
    for i, entry in enumerate(entries):
        if entry.id in found:
            raise KnowledgeError(file, f"{section}[{i}].id", f"duplicate {section[:-1]} id {entry.id!r}")
        found[entry.id] = entry
    return found


def _version(root: Path) -> str:
    """``<release>+<hash>``: the release names the clinical content, the hash any edit since."""
    file = root / VERSION_FILE
    if not file.is_file():
        raise KnowledgeError(VERSION_FILE, "-", "file is missing (one line: the release, e.g. 2.0.0)")
    release = file.read_text(encoding="utf-8").strip()
    if not _RELEASE.match(release):
        raise KnowledgeError(VERSION_FILE, "-", f"{release!r} is not a release such as 2.0.0")
    changelog = root / CHANGELOG_FILE
    headings = changelog.read_text(encoding="utf-8").splitlines() if changelog.is_file() else []
    if not any(line.startswith(f"## {release}") for line in headings):
        raise KnowledgeError(CHANGELOG_FILE, "-", f"no '## {release}' entry describing this release")
    digest = hashlib.sha256()
    for path in sorted([*root.glob("*.yaml"), *root.glob("*.yml"), file]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{release}+{digest.hexdigest()[:12]}"


def _load_statement(file: Path, sources: Mapping[str, SourceDoc]) -> Statement:
    doc = _parse(file.name, StatementFile, _read(file))
    if doc.id != file.stem:
        raise KnowledgeError(file.name, "id", f"{doc.id!r} does not match the file name {file.name!r}")
    _check_role(file.name, doc)
    shown = doc.role in _SHOWN_ROLES
    statement = Statement(
        id=doc.id,
        title=doc.title,
        option=doc.option,
        role=doc.role,
        statement=doc.statement,
        description=doc.description,
        summary=doc.summary,
        citation=_citation(file.name, doc.citation, sources),
        file=file.name,
        group=doc.group,
        when=doc.when,
        predicate=_predicate(file.name, doc.when, "when") if shown else None,
        detail=doc.detail,
        line=doc.line,
        overrides=doc.precedence.overrides if doc.precedence else (),
        ranks_before=doc.precedence.ranks_before if doc.precedence else (),
        specific_when=_precedence_test(file.name, doc.precedence, "specific_when"),
        follows_when=_precedence_test(file.name, doc.precedence, "follows_when"),
        context_facts=doc.context_facts,
        suggestions=tuple(_suggestion(file.name, i, s) for i, s in enumerate(doc.suggestions)),
        flags=doc.flags,
        data_quality=_data_quality(file.name, doc.data_quality),
        forbid=tuple(
            Forbid(
                rule.statements, _predicate(file.name, rule.when, f"forbid[{i}].when"), rule.reason, not rule.statements
            )
            for i, rule in enumerate(doc.forbid)
        ),
        never_recommend=tuple(term.lower() for term in doc.never_recommend),
    )
    if statement.line != "any":
        _check_line(file.name, statement)
    return statement


def _check_role(file: str, doc: StatementFile) -> None:
    """Which fields a role needs or may not carry."""
    given = doc.model_fields_set
    if doc.role in _SHOWN_ROLES:
        for name in ("group", "when"):
            if getattr(doc, name) is None:
                raise KnowledgeError(file, name, "required field is missing")
    else:
        for name in ("group", "when", "suggestions"):
            if name in given:
                raise KnowledgeError(file, name, f"a {doc.role} statement is never shown on its own, so has no {name}")
    if doc.role != "guardrail":
        for name in ("data_quality", "never_recommend"):
            if name in given:
                raise KnowledgeError(file, name, "only a guardrail may carry this field")
    if doc.forbid and not doc.id.startswith("G"):
        raise KnowledgeError(file, "forbid", "only a guardrail (G...) may forbid statements")


def _precedence_test(file: str, precedence: PrecedenceDoc | None, name: str) -> AllOf | None:
    when = getattr(precedence, name) if precedence is not None else None
    return None if when is None else _predicate(file, when, f"precedence.{name}")


def _predicate(file: str, when: Any, field: str) -> AllOf:
    try:
        return compile_when(when, field)
    except ConditionError as exc:
        raise KnowledgeError(file, exc.field, exc.message) from None


def _citation(file: str, cite: CitationDoc, known: Mapping[str, SourceDoc]) -> Citation:
    """Unknown source ids are reported by ``_check_links``."""
    if not cite.sources and not cite.derived_from:
        raise KnowledgeError(
            file, "citation.sources", "a citation needs at least one source (or derived_from statements)"
        )
    evidence = None
    if cite.evidence is not None:
        level, reporter, caveat = cite.evidence.level, cite.evidence.reported_by, cite.evidence.caveat
        where = "citation.evidence.reported_by"
        if reporter not in cite.sources:
            raise KnowledgeError(file, where, f"{reporter!r} must be one of this statement's sources (a source id)")
        if reporter not in known:
            raise KnowledgeError(file, where, f"unknown source id {reporter!r} (see {SOURCES_FILE})")
        wording = known[reporter].evidence_wording
        if wording is None:
            raise KnowledgeError(file, where, f"source {reporter!r} has no evidence_wording in {SOURCES_FILE}")
        text = wording.format(level=level)
        evidence = Evidence(level, reporter, f"{text}; {caveat}" if caveat else text)
    return Citation(cite.sources, evidence, cite.cross_check, cite.derived_from)


def _suggestion(file: str, i: int, suggestion: SuggestionDoc) -> SuggestionSpec:
    if not isinstance(suggestion.resource.get("resourceType"), str):
        raise KnowledgeError(file, f"suggestions[{i}].resource", "needs a resourceType")
    return SuggestionSpec(suggestion.label, suggestion.resource)


def _data_quality(file: str, dq: DataQualityDoc | None) -> DataQuality | None:
    if dq is None:
        return None
    exempt: dict[str, AllOf] = {}
    for key, when in (dq.not_expected or {}).items():
        if key not in dq.facts:
            raise KnowledgeError(file, "data_quality.not_expected", f"{key!r} is not one of the watched facts")
        exempt[key] = _predicate(file, when, f"data_quality.not_expected.{key}")
    return DataQuality(dq.facts, dq.unusable_when, exempt)


def _check_line(file: str, statement: Statement) -> None:
    """G6: a first-line card needs no prior line for advanced disease; a later-line card needs one."""
    test = statement.predicate.test_on("lines_of_therapy") if statement.predicate else None
    where = "when.lines_of_therapy"
    if test is None or test.if_missing:
        raise KnowledgeError(file, where, f"a line: {statement.line} statement must constrain it (G6)")
    if statement.line == "first" and test.argument("max") != 0:
        raise KnowledgeError(file, where, "a first-line statement needs {max: 0} (G6)")
    if statement.line == "later" and (test.argument("min") or 0) < 1:
        raise KnowledgeError(file, where, "a later-line statement needs {min: 1} or more (G6)")


def _check_links(
    statements: Mapping[str, Statement], groups: Mapping[str, Group], sources: Mapping[str, SourceDoc]
) -> None:
    rationale_used = {rid for g in groups.values() for rid in g.rationale}
    for group in groups.values():
        for rid in group.rationale:
            target = statements.get(rid)
            if target is None or target.role != "rationale":
                where = f"groups.{group.id}.rationale"
                raise KnowledgeError(GROUPS_FILE, where, f"{rid!r} is not a rationale statement")
    for s in statements.values():
        if s.group is not None and s.group not in groups:
            known = ", ".join(groups)
            raise KnowledgeError(s.file, "group", f"unknown group {s.group!r}; defined in {GROUPS_FILE}: {known}")
        for sid in s.citation.sources:
            if sid not in sources:
                raise KnowledgeError(s.file, "citation.sources", f"unknown source id {sid!r} (see {SOURCES_FILE})")
        _check_ids(s, "citation.derived_from", s.citation.derived_from, statements)
        _check_ids(s, "precedence.overrides", s.overrides, statements)
        _check_ids(s, "precedence.ranks_before", s.ranks_before, statements)
        for rule in s.forbid:
            _check_ids(s, "forbid.statements", rule.statements, statements)
        if s.role == "rationale" and s.id not in rationale_used:
            raise KnowledgeError(s.file, "role", "a rationale statement no group quotes is unreachable")
    _check_override_cycles(statements)


def _check_ids(s: Statement, field: str, ids: tuple[str, ...], statements: Mapping[str, Statement]) -> None:
    for target in ids:
        if target not in statements:
            raise KnowledgeError(s.file, field, f"unknown statement id {target!r}")
        if target == s.id:
            raise KnowledgeError(s.file, field, "a statement cannot refer to itself")


def _check_override_cycles(statements: Mapping[str, Statement]) -> None:
    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(statements[start].overrides)
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(statements[current].overrides)
        return seen

    for s in statements.values():
        if s.id in reach(s.id):
            raise KnowledgeError(s.file, "precedence.overrides", "overrides form a cycle back to this statement")


def _check_guardrails(statements: Mapping[str, Statement], groups: Mapping[str, Group]) -> None:
    """G1-G3 and G5, checked on the cards themselves."""
    banned = {term for s in statements.values() for term in s.never_recommend}
    for s in statements.values():
        if s.group is not None and groups[s.group].sts_only:
            test = s.predicate.test_on("diagnosis") if s.predicate else None
            if test is None or test.if_missing or test.argument("equals") != "sts":
                message = f"statements in group {s.group!r} require diagnosis: sts (G1-G3)"
                raise KnowledgeError(s.file, "when.diagnosis", message)
        if s.role in ("recommendation", "information"):
            shown = " ".join([s.title, s.summary] + [g.label + " " + str(g.resource) for g in s.suggestions]).lower()
            for term in banned:
                if term in shown:
                    raise KnowledgeError(s.file, "summary", f"must not recommend {term!r} (G5)")
