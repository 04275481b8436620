"""Load and validate ``cards/`` once at start-up; any fault stops the service with a clear message.

Checked (STYLE.md "Knowledge lives in cards/"): unknown fields, unknown condition keys, operators and
values, dangling ids (groups, sources, overrides, rationale), missing citations, summaries over 139
characters, duplicate ids, ids that differ from the file name, and the guardrails that can be
checked on the data alone: G1-G3 (STS groups require ``diagnosis: sts``), G5 (no recommendation
names a withdrawn drug) and G6 (first-line and later-line statements constrain the line).

Citations (R6): a level of evidence names the source that quotes it (``reported_by``), which must be
one of the statement's sources and say in ``sources.yaml`` how its levels are worded. ``VERSION``
and ``CHANGELOG.md`` give the release; the loaded knowledge base is versioned as
``<release>+<hash of the card files>``.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..protocol.cards import SUMMARY_MAX, Indicator
from ..summary.model import FACT_KEYS, FindingKind
from .conditions import AllOf, ConditionError, compile_when
from .model import (
    CLINICIAN_TEXT,
    INTERNAL_LANGUAGE,
    LINES,
    ROLES,
    Citation,
    DataQuality,
    Evidence,
    Forbid,
    Group,
    KnowledgeBase,
    SourceDoc,
    Statement,
    SuggestionSpec,
)
from .presentation import LABELS_FILE, LAYOUT_FILE, PresentationError, load_presentation

SOURCES_FILE = "sources.yaml"
GROUPS_FILE = "groups.yaml"
VERSION_FILE = "VERSION"
CHANGELOG_FILE = "CHANGELOG.md"
_RELEASE = re.compile(r"^\d+\.\d+\.\d+$")
_ID = re.compile(r"^(S\d{2}|G\d+)$")
_LEVEL = re.compile(r"^\[(I|II|III|IV|V), [A-E]\]$")
_FLAG = re.compile(r"^F\d+$")
_SHOWN_ROLES = ("recommendation", "information", "guardrail")
_TEMPLATE_NAMES = frozenset(FACT_KEYS) | {"count", "missing"}


class KnowledgeError(ValueError):
    """``cards/`` is invalid; the message names the file and the field."""

    def __init__(self, file: str, field: str, message: str) -> None:
        super().__init__(f"cards/{file}: {field}: {message}")
        self.file = file
        self.field = field
        self.message = message


@dataclass(frozen=True)
class _Fields:
    """One YAML mapping being read, so every error can name its file and field path."""

    file: str
    where: str
    data: Mapping[str, Any]

    def fail(self, name: str, message: str) -> KnowledgeError:
        return KnowledgeError(self.file, f"{self.where}{name}", message)

    def only(self, allowed: set[str]) -> None:
        for name in self.data:
            if name not in allowed:
                raise self.fail(str(name), f"unknown field; allowed: {', '.join(sorted(allowed))}")

    def get(self, name: str, kind: type | tuple[type, ...], *, required: bool = True, default: Any = None) -> Any:
        if name not in self.data:
            if required:
                raise self.fail(name, "required field is missing")
            return default
        value = self.data[name]
        if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(name, f"must be a non-empty {names}, not {value!r}")
        return value

    def strings(self, name: str, *, required: bool = False) -> tuple[str, ...]:
        items = self.get(name, list, required=required, default=[])
        for item in items:
            if not isinstance(item, str):
                raise self.fail(name, f"every item must be quoted text, not {item!r}")
        return tuple(items)

    def sub(self, name: str, *, required: bool = True) -> _Fields | None:
        value = self.get(name, dict, required=required)
        return None if value is None else _Fields(self.file, f"{self.where}{name}.", value)


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
        raise KnowledgeError(file.name, "-", f"not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise KnowledgeError(file.name, "-", "must hold a YAML mapping")
    return data


def _load_sources(file: Path) -> dict[str, SourceDoc]:
    top = _Fields(file.name, "", _read(file))
    top.only({"sources"})
    sources: dict[str, SourceDoc] = {}
    for i, item in enumerate(top.get("sources", list)):
        doc = _Fields(file.name, f"sources[{i}].", item if isinstance(item, dict) else {})
        doc.only({"id", "file", "label", "url", "date", "kind", "review_note", "evidence_wording"})
        source = SourceDoc(
            id=doc.get("id", str),
            file=doc.get("file", str, required=False),
            label=doc.get("label", str),
            url=doc.get("url", str, required=False),
            date=str(doc.get("date", (str, int))),
            kind=doc.get("kind", str),
            review_note=doc.get("review_note", str, required=False),
            evidence_wording=_evidence_wording(doc),
        )
        if source.kind not in {"seed", "reference"}:
            raise doc.fail("kind", f"must be seed or reference, not {source.kind!r}")
        if source.kind == "seed" and not (source.file or "").startswith(f"{source.id}_"):
            raise doc.fail("file", f"a seed file name starts with its id ({source.id}_...)")
        _check_clinician_text(doc, "label", source.label)
        if source.id in sources:
            raise doc.fail("id", f"duplicate source id {source.id!r}")
        sources[source.id] = source
    return sources


def _evidence_wording(doc: _Fields) -> str | None:
    wording: str | None = doc.get("evidence_wording", str, required=False)
    if wording is None:
        return None
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(wording) if name is not None]
    except ValueError as exc:
        raise doc.fail("evidence_wording", f"bad template ({exc})") from None
    if names != ["level"]:
        raise doc.fail("evidence_wording", "must hold {level} exactly once and no other placeholder")
    return wording


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


def _load_groups(file: Path) -> dict[str, Group]:
    top = _Fields(file.name, "", _read(file))
    top.only({"groups"})
    groups: dict[str, Group] = {}
    for i, item in enumerate(top.get("groups", list)):
        doc = _Fields(file.name, f"groups[{i}].", item if isinstance(item, dict) else {})
        doc.only({"id", "title", "indicator", "order", "description", "treatment", "sts_only", "requires", "rationale"})
        indicator = doc.get("indicator", str)
        if indicator not in {i.value for i in Indicator}:
            raise doc.fail("indicator", f"unknown indicator {indicator!r}; allowed: info, warning, critical")
        group = Group(
            id=doc.get("id", str),
            title=_template(doc, doc.get("title", str)),
            indicator=Indicator(indicator),
            order=doc.get("order", int),
            description=doc.get("description", str),
            treatment=doc.get("treatment", bool, required=False, default=False),
            sts_only=doc.get("sts_only", bool, required=False, default=True),
            requires=doc.strings("requires"),
            rationale=doc.strings("rationale"),
        )
        for key in group.requires:
            if key not in FACT_KEYS:
                raise doc.fail("requires", f"unknown fact key {key!r}")
        if group.id in groups:
            raise doc.fail("id", f"duplicate group id {group.id!r}")
        groups[group.id] = group
    return groups


def _template(doc: _Fields, title: str) -> str:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(title) if name is not None}
    except ValueError as exc:
        raise doc.fail("title", f"bad template ({exc})") from None
    unknown = names - _TEMPLATE_NAMES
    if unknown:
        raise doc.fail("title", f"unknown placeholder(s) {sorted(unknown)}; allowed: fact keys, count, missing")
    return title


_STATEMENT_FIELDS = {
    "id",
    "title",
    "role",
    "group",
    "line",
    "statement",
    "description",
    "when",
    "summary",
    "detail",
    "citation",
    "precedence",
    "context_facts",
    "suggestions",
    "flags",
    "data_quality",
    "forbid",
    "never_recommend",
    "option",
}


def _load_statement(file: Path, sources: Mapping[str, SourceDoc]) -> Statement:
    doc = _Fields(file.name, "", _read(file))
    doc.only(_STATEMENT_FIELDS)
    statement_id = doc.get("id", str)
    if not _ID.match(statement_id):
        raise doc.fail("id", f"{statement_id!r} is not a statement (S01) or guardrail (G1) id")
    if statement_id != file.stem:
        raise doc.fail("id", f"{statement_id!r} does not match the file name {file.name!r}")
    role = doc.get("role", str)
    if role not in ROLES:
        raise doc.fail("role", f"unknown role {role!r}; allowed: {', '.join(ROLES)}")
    shown = role in _SHOWN_ROLES
    summary = doc.get("summary", str)
    if len(summary) > SUMMARY_MAX:
        raise doc.fail("summary", f"{len(summary)} characters; a card summary has at most {SUMMARY_MAX}")
    line = doc.get("line", str, required=False, default="any")
    if line not in LINES:
        raise doc.fail("line", f"unknown line {line!r}; allowed: {', '.join(LINES)}")
    precedence = doc.sub("precedence", required=False)
    if precedence is not None:
        precedence.only({"overrides"})
    flags = doc.strings("flags")
    context_facts = doc.strings("context_facts")
    for key in context_facts:
        if key not in FACT_KEYS:
            raise doc.fail("context_facts", f"unknown fact key {key!r}")
    for flag in flags:
        if not _FLAG.match(flag):
            raise doc.fail("flags", f"{flag!r} is not a flag id (F1..F10)")
    statement = Statement(
        id=statement_id,
        title=doc.get("title", str),
        option=doc.get("option", str, required=False, default=None),
        role=role,
        statement=doc.get("statement", str),
        description=doc.get("description", str),
        summary=summary,
        citation=_citation(doc, sources),
        file=file.name,
        group=doc.get("group", str, required=shown),
        when=doc.get("when", dict, required=shown),
        predicate=_predicate(doc, "when") if shown else None,
        detail=doc.get("detail", str, required=False, default=""),
        line=line,
        overrides=precedence.strings("overrides") if precedence else (),
        context_facts=context_facts,
        suggestions=_suggestions(doc),
        flags=flags,
        data_quality=_data_quality(doc),
        forbid=_forbids(doc),
        never_recommend=tuple(t.lower() for t in doc.strings("never_recommend")),
    )
    _check_role(doc, statement)
    for name in CLINICIAN_TEXT:
        _check_clinician_text(doc, name, getattr(statement, name))
    return statement


def _check_clinician_text(doc: _Fields, name: str, text: str) -> None:
    """R6: text a clinician reads never carries internal language (source files, flags, markers)."""
    found = INTERNAL_LANGUAGE.search(text or "")
    if found:
        raise doc.fail(name, f"{found.group(0)!r} is internal language; say it in clinical words (R6)")


def _predicate(doc: _Fields, name: str) -> AllOf:
    try:
        return compile_when(doc.data[name], f"{doc.where}{name}")
    except ConditionError as exc:
        raise KnowledgeError(doc.file, exc.field, exc.message) from None


def _citation(doc: _Fields, known: Mapping[str, SourceDoc]) -> Citation:
    """The first source is the principal one (R6); unknown source ids are reported by ``_check_links``."""
    cite = doc.sub("citation")
    assert cite is not None
    cite.only({"sources", "evidence", "cross_check", "derived_from"})
    sources = cite.strings("sources")
    derived = cite.strings("derived_from")
    if not sources and not derived:
        raise cite.fail("sources", "a citation needs at least one source (or derived_from statements)")
    if "evidence" not in cite.data:
        raise cite.fail("evidence", "required field is missing (write null when no source gives a level)")
    evidence = None
    if cite.data["evidence"] is not None:
        ev = cite.sub("evidence")
        assert ev is not None
        evidence = _evidence(ev, sources, known)
    return Citation(sources, evidence, cite.get("cross_check", str), derived)


def _evidence(ev: _Fields, cited: tuple[str, ...], known: Mapping[str, SourceDoc]) -> Evidence:
    """A level worded the way its source must be quoted, plus an optional caveat for clinicians (F2)."""
    ev.only({"level", "reported_by", "caveat"})
    level = ev.get("level", str)
    if not _LEVEL.match(level):
        raise ev.fail("level", f"{level!r} is not an ESMO level and grade such as '[I, A]'")
    reporter = ev.get("reported_by", str)
    if reporter not in cited:
        raise ev.fail("reported_by", f"{reporter!r} must be one of this statement's sources (a source id)")
    if reporter not in known:
        raise ev.fail("reported_by", f"unknown source id {reporter!r} (see {SOURCES_FILE})")
    wording = known[reporter].evidence_wording
    if wording is None:
        raise ev.fail("reported_by", f"source {reporter!r} has no evidence_wording in {SOURCES_FILE}")
    text = wording.format(level=level)
    caveat = ev.get("caveat", str, required=False)
    return Evidence(level, reporter, f"{text}; {caveat}" if caveat else text)


def _suggestions(doc: _Fields) -> tuple[SuggestionSpec, ...]:
    specs = []
    for i, item in enumerate(doc.get("suggestions", list, required=False, default=[])):
        sug = _Fields(doc.file, f"suggestions[{i}].", item if isinstance(item, dict) else {})
        sug.only({"label", "resource"})
        resource = sug.get("resource", dict)
        if not isinstance(resource.get("resourceType"), str):
            raise sug.fail("resource", "needs a resourceType")
        specs.append(SuggestionSpec(sug.get("label", str), resource))
    return tuple(specs)


def _data_quality(doc: _Fields) -> DataQuality | None:
    dq = doc.sub("data_quality", required=False)
    if dq is None:
        return None
    dq.only({"facts", "unusable_when", "not_expected"})
    facts = dq.strings("facts", required=True)
    for key in facts:
        if key not in FACT_KEYS:
            raise dq.fail("facts", f"unknown fact key {key!r}")
    kinds = dq.strings("unusable_when")
    allowed = {k.value for k in FindingKind}
    for kind in kinds:
        if kind not in allowed:
            raise dq.fail("unusable_when", f"unknown finding kind {kind!r}; allowed: {', '.join(sorted(allowed))}")
    not_expected = dq.sub("not_expected", required=False)
    exempt: dict[str, AllOf] = {}
    if not_expected is not None:
        for key in not_expected.data:
            if key not in facts:
                raise dq.fail("not_expected", f"{key!r} is not one of the watched facts")
            exempt[key] = _predicate(not_expected, key)
    return DataQuality(facts, tuple(FindingKind(k) for k in kinds), exempt)


def _forbids(doc: _Fields) -> tuple[Forbid, ...]:
    forbids = []
    for i, item in enumerate(doc.get("forbid", list, required=False, default=[])):
        rule = _Fields(doc.file, f"forbid[{i}].", item if isinstance(item, dict) else {})
        rule.only({"statements", "when", "reason"})
        rule.get("when", dict)
        every = rule.data.get("statements") == "all"
        targets = () if every else rule.strings("statements", required=True)
        forbids.append(Forbid(targets, _predicate(rule, "when"), rule.get("reason", str), every))
    return tuple(forbids)


def _check_role(doc: _Fields, statement: Statement) -> None:
    if statement.role not in _SHOWN_ROLES:
        for name in ("group", "when", "suggestions"):
            if name in doc.data:
                raise doc.fail(name, f"a {statement.role} statement is never shown on its own, so has no {name}")
    if statement.role != "guardrail":
        for name in ("data_quality", "never_recommend"):
            if name in doc.data:
                raise doc.fail(name, "only a guardrail may carry this field")
    if statement.forbid and statement.kind != "guardrail":
        raise doc.fail("forbid", "only a guardrail (G...) may forbid statements")
    if statement.line != "any":
        _check_line(doc, statement)


def _check_line(doc: _Fields, statement: Statement) -> None:
    """G6: a first-line card needs no prior line for advanced disease; a later-line card needs one."""
    test = statement.predicate.test_on("lines_of_therapy") if statement.predicate else None
    if test is None or test.if_missing:
        raise doc.fail("when.lines_of_therapy", f"a line: {statement.line} statement must constrain it (G6)")
    if statement.line == "first" and test.argument("max") != 0:
        raise doc.fail("when.lines_of_therapy", "a first-line statement needs {max: 0} (G6)")
    if statement.line == "later" and (test.argument("min") or 0) < 1:
        raise doc.fail("when.lines_of_therapy", "a later-line statement needs {min: 1} or more (G6)")


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
