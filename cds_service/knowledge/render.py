"""Matched statements to CDS Hooks cards an oncologist reads in ten seconds (clinical-rules R6).

At most three cards: the data-quality card when facts are missing or in doubt (G7), one safety
card (withdrawn drugs, tumours outside the guideline, children), and the plan card of this visit:
the patient's situation in one line, then the options in order, each citing its statement.
``cards/layout.yaml`` assigns groups to cards and orders the options; ``cards/labels.yaml`` gives
fact values their words. Card fields follow https://cds-hooks.hl7.org/2.0/#card-attributes.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from functools import lru_cache
from typing import Any

from .. import staging
from ..protocol.cards import (
    OVERRIDE_REASONS,
    SUMMARY_MAX,
    Action,
    ActionType,
    Card,
    Indicator,
    Link,
    LinkType,
    SelectionBehavior,
    Source,
    Suggestion,
)
from ..summary.model import FACTS, Extent, Fact, Finding, PatientSummary
from ..summary.notes import from_note
from .matcher import Gap, Match
from .model import Forbid, KnowledgeBase, Statement, SuggestionSpec
from .presentation import CARD_KINDS, Presentation

EXT_STATEMENTS = "org.sarcoma-cds.statements"
EXT_EVIDENCE = "org.sarcoma-cds.evidence"
EXT_VERSION = "org.sarcoma-cds.knowledge-version"
NOT_KNOWN = "not known"
NOT_DETERMINED = "not determined"
METASTATIC_EXTENTS = frozenset({"limited", "lung-only", "disseminated", "distant"})
MAX_MORE = 2  # further options named in the detail beyond those written out
MAX_RECORDS = 6  # record references written out under "Based on"; the card's links and the EHR hold the rest
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|@])")  # "@": no e-mail autolinks
_AUTOLINK = re.compile(r"(?i)(?:www\.|https?:|ftp:)")  # GFM extended autolinks: escape their last mark


def render(
    matches: Sequence[Match],
    summary: PatientSummary,
    *,
    base_url: str,
    knowledge: KnowledgeBase,
    vetoes: Sequence[Forbid] = (),
) -> list[Card]:
    """Data-quality card, safety card, plan card, scope card: each only when it has something to say.
    ``vetoes``: the guardrail vetoes that removed an option; the plan card says why (R3)."""
    pres = _presentation(knowledge)
    on: dict[str, list[Match]] = {kind: [] for kind in CARD_KINDS}
    for m in matches:
        card = pres.card_of(m.statement.group) if m.statement.group else None
        if card is not None:
            on[card].append(m)
    withheld = frozenset(gap.key for m in matches for gap in m.gaps)
    view = _View(summary, withheld, pres, tuple(vetoes))
    base = base_url.rstrip("/")
    cards = []
    if on["data-quality"]:
        cards.append(_data_quality_card(on["data-quality"], view, knowledge, base))
    if on["safety"]:
        cards.append(_notice_card(on["safety"], view, knowledge, base))
    if on["plan"]:
        cards.append(_plan_card(on["plan"], view, knowledge, base))
    if on["scope"]:  # other tumours outside this guideline: after the decision of this visit
        cards.append(_notice_card(on["scope"], view, knowledge, base))
    return cards


def statement_url(base_url: str, statement_id: str) -> str:
    return f"{base_url.rstrip('/')}/statements/{statement_id}"


def evidence_text(s: Statement) -> str:
    """The level of evidence and who quotes it (never as if the guideline itself said it)."""
    ev = s.citation.evidence
    return "no level of evidence given by the sources" if ev is None else ev.text


def _presentation(kb: KnowledgeBase) -> Presentation:
    if kb.presentation is None:
        raise ValueError("the knowledge base was built without its card layout (cards/layout.yaml)")
    return kb.presentation


class _View:
    """The summary's facts as a card shows them: withheld facts read "not determined"."""

    def __init__(
        self, summary: PatientSummary, withheld: frozenset[str], pres: Presentation, vetoes: tuple[Forbid, ...] = ()
    ) -> None:
        self.summary = summary
        self.facts = {k: f for k, f in summary.facts().items() if k not in withheld}
        self.withheld = withheld
        self.contradicted = frozenset(f.about for f in summary.findings if f.kind.value == "contradiction")
        self.pres = pres
        self.vetoes = vetoes

    def value(self, key: str) -> Any:
        fact = self.facts.get(key)
        return None if fact is None else fact.value

    def words(self, key: str, *, short: bool) -> str | None:
        value = self.value(key)
        if value is None:
            return None
        if key == "extent" and value is Extent.NONE and self.value("m") is None:
            return "no metastasis recorded"  # not staged by imaging (DFSP): M0 is not known, only no M1
        resolved = self.value("metastases_resolved")
        if key == "extent" and value is Extent.NONE and resolved:  # not "M0": the disease has been metastatic
            organs = ", ".join(o.replace("-", " ") for o in resolved)
            return (
                "no distant metastasis now"
                if short
                else f"no distant metastasis now (earlier {organs} metastasis resolved)"
            )
        detail = self.value("histology_detail") if key == "histology" else None
        if detail and f"{value.value}/{detail}" in self.pres.labels.get("histology", {}):
            return self.pres.words(key, f"{value.value}/{detail}", short=short)  # "WDLPS", "myxoid liposarcoma"
        if isinstance(value, Enum):
            return self.pres.words(key, str(value.value), short=short)
        return describe(value)

    @property
    def metastatic(self) -> bool:
        return self.pres.metastatic.holds(self.facts)


# --- the plan card --------------------------------------------------------------------------------


def _plan_card(matches: list[Match], view: _View, kb: KnowledgeBase, base: str) -> Card:
    options = _ranked([m for m in matches if m.statement.option], view, kb)
    context = [m for m in matches if not m.statement.option]
    principal = (options or context)[0].statement
    statements = [m.statement for m in [*options, *context]]
    suggestions = tuple(_suggestion(spec, view.summary) for s in statements for spec in s.suggestions)
    treatment = any(kb.groups[s.group].treatment for s in statements if s.group)
    return Card(
        summary=_plan_summary(view, options),
        indicator=Indicator.INFO,
        source=_source(principal, kb, base),
        detail=_plan_detail(options, context, view, kb, base),
        suggestions=suggestions,
        selectionBehavior=SelectionBehavior.ANY if suggestions else None,
        overrideReasons=OVERRIDE_REASONS if treatment else (),
        links=_links(statements, base),
        extension=_extension(statements, kb),
    )


def _ranked(options: list[Match], view: _View, kb: KnowledgeBase) -> list[Match]:
    """Options that rest on a judgement the record gives first (the decision at hand), then supportive
    care (it shows only at ECOG 3-4 or on evidence of indolent disease), then histology-specific before
    generic (R6), then by group in the layout's order. Where local treatment is the decision at hand
    (no distant metastasis, or a few metachronous metastases: ``local_first_when``), systemic options
    and trials follow it, histology-specific or not, unless one takes a local option's place. An option
    another ranks before (``precedence.ranks_before``) follows it, and so does one whose
    ``precedence.follows_when`` holds (within its group)."""
    layout = view.pres.layout
    order = layout.cards["plan"]
    local_leads = not view.metastatic
    if view.metastatic:
        local_leads = view.pres.local_first.holds(view.facts)
        order = layout.plan_order_local_first if local_leads else layout.plan_order_metastatic

    def key(m: Match) -> tuple[bool, bool, bool, bool, int, bool, tuple[str, int]]:
        s = m.statement
        group_rank = order.index(s.group) if s.group in order else len(order)
        supportive = s.group == order[0]
        after_local = local_leads and s.group in layout.follow_local and not _replaces_local(s, kb, layout.local_group)
        specific = _histology_specific(s, view.facts)
        follows = s.follows_when is not None and s.follows_when.holds(view.facts)
        return (not _on_judgement(s), not supportive, after_local, not specific, group_rank, follows, s.sort_key)

    return _ranks_before(sorted(options, key=key))


def _ranks_before(ranked: list[Match]) -> list[Match]:
    """Each option moved ahead of the first option it ranks before (a standard not yet given before the
    alternatives: S28 before S41)."""
    for m in [m for m in ranked if m.statement.ranks_before]:
        ahead = [i for i, other in enumerate(ranked) if other.statement.id in m.statement.ranks_before]
        if ahead and ahead[0] < ranked.index(m):
            ranked.remove(m)
            ranked.insert(ahead[0], m)
    return ranked


def _replaces_local(s: Statement, kb: KnowledgeBase, local_group: str) -> bool:
    """A systemic standard that takes a local option's place (imatinib for DFSP instead of radiotherapy)."""
    return any(kb.statements[o].group == local_group for o in s.overrides if o in kb.statements)


def _on_judgement(s: Statement) -> bool:
    """Fires on a judgement the record gives (resectability, margins, growth ...): the decision at hand.
    A test that needs a judgement fact to be known; a block with such a test among its parts; an
    ``any_of`` whose every alternative is one (``Predicate.rests_on_judgement``)."""
    return s.predicate is not None and s.predicate.rests_on_judgement()


def _histology_specific(s: Statement, facts: Mapping[str, Fact[Any]]) -> bool:
    """Limited to named histologies, or (``precedence.specific_when``) best for this one (G4)."""
    if s.specific_when is not None and s.specific_when.holds(facts):
        return True
    test = s.predicate.test_on("histology") if s.predicate else None
    return test is not None and (test.argument("equals") is not None or test.argument("in") is not None)


def _plan_summary(view: _View, options: list[Match]) -> str:
    """ "<situation>: <option>; <option>; trials" within the summary limit, situation first."""
    names = [m.statement.option or "" for m in options]
    trial = "a clinical trial" in names
    top = [n for n in names if n != "a clinical trial"][: view.pres.layout.options_in_summary]
    situation = _situation_short(view, _systemic(options))
    supportive_first = bool(options) and options[0].statement.group == view.pres.layout.cards["plan"][0]
    if view.value("line_ongoing") and not _systemic(options) and top and not supportive_first:
        top = [WHILE_A_LINE_WORKS, *top]  # the decision of the visit is the line in progress (R4), not what follows
    if not top:  # no treatment option: the trial, if one applies, and care in the sarcoma MDT
        top, trial = (
            (["a clinical trial", "plan care in a sarcoma MDT"] if trial else ["plan care in a sarcoma MDT"]),
            False,
        )
    text = f"{situation}: {top[0]}"
    for name in [*top[1:], *(["trials"] if trial else [])]:
        if len(f"{text}; {name}") > SUMMARY_MAX:
            break
        text = f"{text}; {name}"
    return _cut(text[0].upper() + text[1:])


# While a line for advanced disease is given without progression, later-line options are not shown
# (clinical-rules R4); the headline says so before the options that apply beside the line.
WHILE_A_LINE_WORKS = "next line only on progression"


def _systemic(options: Sequence[Match]) -> bool:
    """Whether the plan offers a systemic option: then the line to decide is named, else the lines given."""
    return any(m.statement.group == "systemic" for m in options)


def _unnamed(view: _View, otherwise: str, after: str = "") -> str:
    """A sarcoma of a subtype these guidelines do not name, as the record names it."""
    name = view.value("histology_unnamed")
    return f"{name[0].lower()}{name[1:]}{after}" if name else otherwise


def _situation_short(view: _View, systemic: bool, budget: int = 80) -> str:
    """Histology, site, extent, line (a line in progress with its drugs), PS and age; if it runs long,
    the organs, then the drugs, then the site, and last the age are dropped."""
    histology = view.words("histology", short=True) or _unnamed(view, "sarcoma, subtype not known")
    site = "uterus" if view.value("site_figo") else view.words("site", short=True)
    recurrence = _recurrence(view)
    line = _line(view, systemic)
    drugs = _current_drugs(view)
    named = f"{line} ({' + '.join(drugs)})" if line and line.startswith("on ") and drugs else line
    age = _age(view)
    where = (f"{histology}, {site}" if "," in histology else f"{histology} {site}") if site else histology
    forms: list[list[str | None]] = []
    for current in dict.fromkeys([named, line]):  # the line in progress named by its drugs (R4), if room
        rest = [p for p in (recurrence, _extent_short(view), current, _performance(view)) if p]
        brief = [p for p in (recurrence, _extent_short(view, organs=False), current, _performance(view)) if p]
        forms += [[where, *rest, age], [where, *brief, age]]
    forms += [[histology, *rest, age], [histology, *brief, age]]
    for parts in forms:
        text = ", ".join(p for p in parts if p)
        if len(text) <= budget:
            return text
    return ", ".join([histology, *rest])


def _recurrence(view: _View, *, dated: bool = False) -> str | None:
    """A local recurrence is the situation (the sarcoma is back where it started), whatever the stage."""
    if not view.value("local_recurrence"):
        return None
    when = view.facts["local_recurrence"].when
    if not dated:  # a recurrence re-excised since (the primary reads resected again) is history
        return None if view.value("primary_resected") else "local recurrence"
    said = f"local recurrence recorded on {when.isoformat()}" if when else "local recurrence"
    return f"{said} after {' and '.join(done)}" if (done := _treated_before(view)) else said


def _treated_before(view: _View) -> list[str]:
    """The local treatment a recurrence came back after (R2: phase of care): a resection on record
    (the primary is no longer "resected" once it recurred) and radiotherapy given."""
    resected = view.facts.get("primary_resected")
    operated = resected is not None and any(ref.startswith("Procedure/") for ref in resected.sources)
    return [w for w, done in (("resection", operated), ("radiotherapy", view.value("radiotherapy_given"))) if done]


def _resection(view: _View) -> str | None:
    """Surgery already done on the primary (R2: phase of care), with its margin where recorded."""
    if not view.value("primary_resected"):
        return None
    when = view.facts["primary_resected"].when
    coded, noted = view.value("resection_margin"), view.value("margin_from_note")
    margin = str(coded) if coded is not None else (f"{noted} (per note)" if noted is not None else None)
    again = sum(ref.startswith("Procedure/") for ref in view.facts["primary_resected"].sources) > 1
    on = f"{', last' if again else ''} on {when.isoformat()}" if when else " (date not recorded)"
    return f"primary resected{on}, {margin}" if margin else f"primary resected{on}"


def _extent_short(view: _View, *, organs: bool = True) -> str:
    extent = view.value("extent")
    if extent is not None and str(extent.value) in METASTATIC_EXTENTS:
        where = _organs_short(view, str(extent.value)) if organs else ""
        many = str(view.value("metastatic_lesions") or "") == "many"
        if str(extent.value) == "lung-only":
            return "lung-only metastases" + (" (many)" if many else "")
        if many:  # one bracket: "metastatic (liver, lung; many)"
            where = f"{where[:-1]}; many)" if where else " (many)"
        return "metastatic" + where
    stage = view.value("stage")
    if stage is not None and extent is not None and str(extent.value) == "nodal":
        return f"stage {stage.value} (regional nodes, M0)"
    if stage is not None and extent is None and view.facts["stage"].when is not None:
        return f"stage {stage.value} in {view.facts['stage'].when.year}, extent now unknown"  # restaging needed (R1)
    if stage is not None:
        return f"stage {stage.value}{_at_diagnosis(view)}"
    if extent is not None:
        return view.words("extent", short=True) or ""
    return "stage in doubt" if view.contradicted & {"stage", "extent"} else "stage not determined"


def _at_diagnosis(view: _View) -> str:
    """The stage describes the tumour at diagnosis; said so once it has recurred or metastasised since,
    unless it is stage IV from the metastases present now."""
    stage = view.value("stage")
    if stage is not None and str(stage.value) == "IV" and view.metastatic:
        return ""
    return " at diagnosis" if view.value("local_recurrence") or view.value("metastases_resolved") else ""


def _organs_short(view: _View, extent: str) -> str:
    """ " (liver, lung)": where the distant disease is, when not more than three places."""
    organs = sorted(o.replace("-", " ") for o in view.value("metastatic_organs") or ())
    if view.value("n") == "N1":
        organs.append("regional nodes")
    if extent == "distant":
        organs.append("a site not recorded")
    return f" ({', '.join(organs)})" if organs and len(organs) <= 3 else ""


def _line(view: _View, systemic: bool) -> str | None:
    """The line being decided when the plan offers systemic options; otherwise the lines already given
    (at ECOG 3-4 or under 18 no line is being chosen)."""
    current = view.value("current_line")
    if current is not None and view.value("line_ongoing"):  # also for advanced disease without metastasis
        return f"on {_ordinal(int(current))} line"
    if not view.metastatic:
        return None
    lines = view.value("lines_of_therapy")
    if lines is None:
        return "line not known"
    if lines == 0 and view.value("anthracycline_pretreated"):  # relapse soon after perioperative therapy
        return "after perioperative anthracycline"
    if not systemic:
        return "no prior line" if lines == 0 else f"{lines} prior line{'s' if lines > 1 else ''}"
    return f"{_ordinal(int(lines) + 1)} line"


def _line_long(view: _View, systemic: bool) -> str | None:
    """The line, and for a line in progress its drugs and start (R4)."""
    line = _line(view, systemic)
    current = view.facts.get("current_line")
    disputed = view.summary.progression_disputed
    if line is not None and disputed is not None and disputed.when is not None:
        return f"{line} (a later note, {disputed.when.isoformat()}, says no progression: confirm)"
    if line is None or not line.startswith("on ") or current is None:
        return line
    drugs = _current_drugs(view)
    since = f" since {current.when.isoformat()}" if current.when else ""
    if any(t.held for t in view.summary.therapies if t.line == current.value):
        since += " (order on hold)"
    noted = view.summary.progression_noted
    status = "no progression recorded"
    if noted is not None and noted.value:  # the data-quality card quotes the note
        status = f"progression written on {noted.when.isoformat()} but not coded: confirm" if noted.when else status
    return f"{line}: {', '.join(drugs)}{since}, {status}" if drugs else line


def _current_drugs(view: _View) -> list[str]:
    """The drugs of the line in progress, by name."""
    current = view.facts.get("current_line")
    if current is None or current.value is None or not view.value("line_ongoing"):
        return []
    return sorted({t.ingredient for t in view.summary.therapies if t.line == current.value})


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _performance(view: _View) -> str:
    ecog = view.value("ecog")
    if ecog is None:
        return "ECOG unclear" if _unclear_performance(view) else "ECOG not recorded"
    return f"ECOG {ecog}" + ("" if view.value("performance_status_recent") else " (not recent)")


def _age(view: _View) -> str:
    age, oldest = view.value("age"), view.value("age_oldest")
    if age is None:
        return "age unknown"
    return f"{age}-{oldest} y" if oldest is not None and oldest != age else f"{age} y"


def _plan_detail(options: list[Match], context: list[Match], view: _View, kb: KnowledgeBase, base: str) -> str:
    shown = options[: view.pres.layout.options_in_detail]
    parts = [f"**{_md(_situation_long(view, _systemic(options)))}**"]
    if shown:
        parts.append("\n".join(_option_line(i, m.statement, base) for i, m in enumerate(shown, 1)))
    more = options[len(shown) :]
    if more:  # named up to two; every option is also among the card's links
        rest = f"; and {len(more) - MAX_MORE} more among the links" if len(more) > MAX_MORE else ""
        parts.append(
            "Also an option: " + "; ".join(_named_link(m.statement, base) for m in more[:MAX_MORE]) + rest + "."
        )
    mentioned = [m for m in context if m.statement.id not in view.pres.layout.background]
    if mentioned:
        parts.append("See also: " + "; ".join(_named_link(m.statement, base) for m in mentioned) + ".")
    parts += [f"Not shown: {_kb_md(rule.reason)}" for rule in _broadest(view.vetoes)]
    questions = view.value("open_questions")
    supportive_first = bool(options) and options[0].statement.group == view.pres.layout.plan_order_metastatic[0]
    if questions and not supportive_first:  # at ECOG 3-4 care, not resection or growth, is the question
        parts.append(f"Open questions for the sarcoma MDT: {_md(', '.join(sorted(questions)))}.")
    parts.append(_evidence_note((m.statement for m in shown), kb))
    parts.append(_based_on(_facts_used(shown or context, view.pres.layout.quiet_guards), view))
    return "\n\n".join(p for p in parts if p)


def _based_on(facts: Mapping[str, Fact[Any]], view: _View, explained: frozenset[str] = frozenset()) -> str:
    """The facts the shown options rest on, then the records they come from (the card's "why");
    ``explained``: facts whose basis is written out too (a safety card's context)."""
    shown = {k: f for k, f in facts.items() if k not in ("diagnosis", "open_questions") and _says_something(k, f)}
    if not shown:
        return ""
    quoted: set[str] = set()
    phrases = "; ".join(_fact_phrase(key, fact, view, quoted, key in explained) for key, fact in shown.items())
    records = sorted({ref for fact in shown.values() for ref in fact.sources})
    listed = ", ".join(records[:MAX_RECORDS]) + (
        f" and {len(records) - MAX_RECORDS} more" if len(records) > MAX_RECORDS else ""
    )
    return f"Based on: {phrases}." + (f" Records: {_md(listed)}." if records else "")


def _says_something(key: str, fact: Fact[Any]) -> bool:
    """A "no" is worth saying only for a judgement ("fit for surgery: no", quoted); otherwise it is a
    guard that merely did not block ("radiotherapy given: no")."""
    spec = FACTS.get(key)
    return fact.value is not False or (spec is not None and spec.quote)


def _broadest(vetoes: Sequence[Forbid]) -> list[Forbid]:
    """The vetoes not covered by another one that applied (at ECOG 3, not also "single agents only")."""
    return [v for v in vetoes if not any(set(v.statements) < set(w.statements) for w in vetoes)]


def _situation_long(view: _View, systemic: bool) -> str:
    histology = view.words("histology", short=False) or _unnamed(
        view, "soft tissue sarcoma, subtype not known", " (a subtype these guidelines do not name)"
    )
    site = "uterus" if view.value("site_figo") else view.words("site", short=False)
    parts = [histology[0].upper() + histology[1:] + (f", {site}" if site else "")]
    stage = view.value("stage")
    extent = view.words("extent", short=False)
    if stage is not None or extent is None:
        parts.append(f"stage {stage.value}{_at_diagnosis(view)} (AJCC 8)" if stage is not None else _extent_short(view))
    elif ungrouped := _without_stage_group(view):
        parts.append(ungrouped)
    if recurrence := _recurrence(view, dated=True):
        parts.append(recurrence)
    if resection := _resection(view):
        parts.append(resection)
    if extent and (stage is None or str(stage.value) != "IV" or view.metastatic):
        organs = view.value("metastatic_organs")
        listed = organs and str(view.value("extent").value) != "lung-only"
        parts.append(extent + (f" ({', '.join(sorted(o.replace('-', ' ') for o in organs))})" if listed else ""))
    parts += [
        p
        for p in (
            _line_long(view, systemic),
            _perioperative(view),
            _ordered(view, "planned_drugs"),
            _ordered(view, "drugs_not_given", ", no dose given"),
            _performance_long(view),
            _age_long(view),
        )
        if p
    ]
    return "; ".join(parts)


def _category(view: _View, key: str) -> str:
    """A TNM category or grade as recorded; nodes not recorded are N0 as AJCC 8 reads them, said so (R1)."""
    fact = view.facts[key]
    return f"{fact.value} (none or unknown)" if key == "n" and not fact.sources else str(fact.value)


def _without_stage_group(view: _View) -> str | None:
    """At a site AJCC 8 gives no stage group (head and neck, viscera), the categories recorded."""
    site = view.value("site")
    if site is None or staging.has_stage_groups(str(site)):
        return None
    categories = " ".join(_category(view, key) for key in ("t", "n", "m", "grade") if view.value(key) is not None)
    if view.value("site_figo"):
        recorded = view.value("stage_recorded")
        said = f"; recorded stage {recorded}" if recorded else ""
        return f"{categories} (staged by FIGO, not AJCC 8{said})".lstrip()
    return (
        f"{categories} (AJCC 8 has no stage group for this site)"
        if categories
        else "no AJCC 8 stage group for this site"
    )


def _ordered(view: _View, key: str, after: str = "") -> str | None:
    """Drug orders that count as no line (R4), named for the clinician: ordered to start later
    (``planned_drugs``), or stopped or on hold before a dose was given (``drugs_not_given``)."""
    fact = view.facts.get(key)
    if fact is None:
        return None
    since = f" from {fact.when.isoformat()}" if fact.when else ""
    return f"{' + '.join(sorted(fact.value))} ordered{since}{after}"


def _perioperative(view: _View) -> str | None:
    fact = view.facts.get("perioperative_in_progress")
    if fact is None or view.metastatic:
        return None
    since = f" since {fact.when.isoformat()}" if fact.when else ""
    return f"on perioperative {' + '.join(sorted(fact.value))}{since}"


def _performance_long(view: _View) -> str:
    fact = view.facts.get("ecog")
    if fact is None:
        return _unclear_performance(view) or "performance status not recorded"
    when = f" on {fact.when.isoformat()}" if fact.when else ""
    recent = "" if view.value("performance_status_recent") else ", not recent"
    measure = f"ECOG {fact.value}"
    if "clinician note" in fact.basis and fact.basis.startswith("Karnofsky"):
        return f"{fact.basis.split(' written', 1)[0]} written in a note{when} (read as ECOG {fact.value}){recent}"
    if fact.basis.startswith("Karnofsky"):  # say what was recorded: "Karnofsky 60 mapped to ECOG 2"
        measure = fact.basis.split(" (", 1)[0]
    elif "the worse end counts" in fact.basis:  # a range: "ECOG 3-4, read as 4"
        measure = f"{fact.basis.split(' recorded', 1)[0]}, read as {fact.value},"
    elif "clinician note" in fact.basis:
        return f"ECOG {fact.value} written in a note{when}{recent}"
    return f"{measure} recorded{when}{recent}"


def _unclear_performance(view: _View) -> str | None:
    """What the latest performance status says when it is not one score ("2-3"), as the summary quotes it."""
    return next((f.message for f in view.summary.findings if f.about == "ecog" and f.kind.value == "missing"), None)


def _age_long(view: _View) -> str:
    age, oldest = view.value("age"), view.facts.get("age_oldest")
    if age is None:
        return "age not recorded"
    if oldest is not None and oldest.value != age:
        return f"{age} or {oldest.value} years old ({oldest.basis})"
    return {0: "under 1 year old", 1: "1 year old"}.get(age, f"{age} years old")


def _option_line(i: int, s: Statement, base: str) -> str:
    option = s.option or s.title
    ev = s.citation.evidence
    level = f"{_kb_md(ev.level)}\\*, " if ev is not None else ""
    return (
        f"{i}. **{_kb_md(option[0].upper() + option[1:])}**: {_kb_md(s.summary)} "
        f"({level}[statement]({statement_url(base, s.id)}))"
    )


def _evidence_note(statements: Iterable[Statement], kb: KnowledgeBase) -> str:
    """How the levels of evidence marked * are quoted, once per card rather than per option."""
    notes = _unique(
        kb.sources[ev.reported_by].evidence_wording or "" for s in statements if (ev := s.citation.evidence) is not None
    )
    words = [n.replace("{level}", "").strip(" ,") for n in notes if n]
    return ("\\* Levels of evidence: " + "; ".join(_kb_md(w) for w in words) + ".") if words else ""


def _named_link(s: Statement, base: str, text: str | None = None) -> str:
    return f"[{_kb_md(text or s.option or s.title)}]({statement_url(base, s.id)})"


# --- the data-quality and safety cards ------------------------------------------------------------


def _data_quality_card(matches: list[Match], view: _View, kb: KnowledgeBase, base: str) -> Card:
    statements = [m.statement for m in matches]
    gaps = [gap for m in matches for gap in m.gaps]
    missing = _unique(_lower_first(_label(g.key)) for g in gaps)
    named = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    them = "them" if len(missing) > 1 else "it"
    lines = "\n".join(_gap_lines(gaps))
    if any(_gates(g.key, kb) for g in gaps):
        summary = _first_fitting(
            f"Check the record: {named} not determined; options that depend on {them} are withheld",
            f"Check the record: {named} not determined; options withheld",
            f"Check the record: {named} not determined",
        )
        last = f"Options that depend on {them} wait until the record settles {them}."
    elif {g.key for g in gaps} == {"primary_tumours"}:  # named for review only: nothing waits on it
        summary, last = "Check the record: more than one primary sarcoma; each needs its own review", ""
    else:
        summary, last = _cut(f"Check the record: {named} in doubt"), ""
    detail = f"**Missing or in doubt**\n\n{lines}\n\n{last}"
    return Card(
        summary=summary,
        indicator=Indicator.WARNING,
        source=_source(statements[0], kb, base),
        detail=detail.strip(),
        links=_links(statements, base),
        extension=_extension(statements, kb),
    )


def _gates(key: str, kb: KnowledgeBase) -> bool:
    """Whether any statement's condition tests the fact (withholding it withholds something)."""
    return any(s.predicate is not None and key in s.predicate.keys() for s in kb.statements.values())


def _notice_card(matches: list[Match], view: _View, kb: KnowledgeBase, base: str) -> Card:
    """A safety or scope card: each statement in full, the first one's summary and source leading;
    under "Based on" the facts it names as its context (the earlier anthracycline, the death written
    down) with their records, and any fact it rests on that a note gave, quoted (R2)."""
    statements = sorted((m.statement for m in matches), key=lambda s: s.sort_key)
    first = statements[0]
    summary = first.summary if len(statements) == 1 else _cut(f"{first.summary} (and {len(statements) - 1} more)")
    detail = "\n\n".join(f"**{_kb_md(s.title)}**: {_kb_md(s.statement.strip())}" for s in statements)
    why = {
        key: fact
        for m in matches
        for key, fact in m.facts.items()
        if from_note(fact) or key in m.statement.context_facts
    }
    context = frozenset(key for m in matches for key in m.statement.context_facts)
    if why and (based := _based_on(why, view, context)):
        detail += "\n\n" + based
    suggestions = tuple(_suggestion(spec, None) for s in statements for spec in s.suggestions)
    indicator = min((kb.groups[s.group].indicator for s in statements if s.group), key=lambda i: i.rank)
    return Card(
        summary=summary,
        indicator=indicator,
        source=_source(first, kb, base),
        detail=detail,
        suggestions=suggestions,
        selectionBehavior=SelectionBehavior.ANY if suggestions else None,
        links=_links(statements, base),
        extension=_extension(statements, kb),
    )


def _gap_lines(gaps: Sequence[Gap]) -> list[str]:
    """One line per reason: facts withheld for the same reason are named together."""
    by_reason: dict[str, list[str]] = {}
    for gap in gaps:
        state = NOT_KNOWN if gap.fact is None else "in doubt"
        reason = _findings_text(gap.findings)
        by_reason.setdefault(f"{state}|{reason}", []).append(_label(gap.key))
    lines = []
    for key, labels in by_reason.items():
        state, reason = key.split("|", 1)
        lines.append(f"- {_md(_in_a_sentence(_unique(labels)))}: {state}." + (f" {reason}" if reason else ""))
    return lines


def _in_a_sentence(labels: Sequence[str]) -> str:
    """Labels joined as one phrase: "Disease status, progression on latest line" (acronyms kept)."""
    return ", ".join(
        label if i == 0 or label[:2].isupper() else label[0].lower() + label[1:] for i, label in enumerate(labels)
    )


def _findings_text(findings: Sequence[Finding]) -> str:
    """Each message once, with the records it was found on (four unreadable doses: one sentence)."""
    sources: dict[str, list[str]] = {}
    for finding in findings:
        refs = sources.setdefault(finding.message, [])
        refs += [s for s in finding.sources if s not in refs]
    return " ".join(_finding_text(message, refs) for message, refs in sources.items())


def _finding_text(message: str, sources: Sequence[str]) -> str:
    text = _md(message[0].upper() + message[1:])
    text += "" if text.endswith(".") else "."
    return text + (f" ({_md(', '.join(sources))})" if sources else "")


# --- shared pieces --------------------------------------------------------------------------------


def _source(statement: Statement, kb: KnowledgeBase, base: str) -> Source:
    """The source of the card's principal statement; a guardrail without one names the check."""
    doc = kb.primary_source(statement)
    if doc is None:
        return Source(label=f"Sarcoma CDS check: {statement.title}", url=statement_url(base, statement.id))
    return Source(label=doc.label, url=doc.url)


def _links(statements: Iterable[Statement], base: str) -> tuple[Link, ...]:
    return tuple(_statement_link(s.title, s.id, base) for s in statements)


@lru_cache(maxsize=2048)
def _statement_link(title: str, statement_id: str, base: str) -> Link:
    """The link to a statement's page; links are immutable, so one serves every card."""
    return Link(label=title, url=statement_url(base, statement_id), type=LinkType.ABSOLUTE)


def _facts_used(matches: Iterable[Match], quiet: Iterable[str]) -> dict[str, Fact[Any]]:
    """The facts the options rest on; a guard that also holds when the fact is unknown ("unless
    recorded as unresectable") unless the layout lists it as a quiet guard (``quiet``)."""
    used: dict[str, Fact[Any]] = {}
    for m in matches:
        for key, fact in m.facts.items():
            test = m.statement.predicate.test_on(key) if m.statement.predicate else None
            if test is None or not test.if_missing or key not in quiet:
                used[key] = fact
    return dict(sorted(used.items(), key=lambda item: _FACT_ORDER.get(item[0], len(_FACT_ORDER))))


_FACT_ORDER = {key: i for i, key in enumerate(FACTS)}  # facts are listed in their declaration order


def _fact_phrase(key: str, fact: Fact[Any], view: _View, quoted: set[str], explain: bool = False) -> str:
    """The fact in words; a judgement (or a fact to ``explain``) with its evidence, quoted once
    (``quoted``: evidence already quoted)."""
    value = view.words(key, short=False) if isinstance(fact.value, Enum) else describe(fact.value)
    if key == "n" and not fact.sources:
        value = f"{fact.value} (none or unknown)"  # AJCC 8 reads unknown nodes as N0; say so (R1)
    label, unit = _unit(_label(key))
    phrase = f"{_lower_first(label)} {_md(value or describe(fact.value))}{unit}{_in_years(fact.value, unit)}"
    spec = FACTS.get(key)
    if not fact.basis or not ((spec is not None and spec.quote) or from_note(fact) or explain):
        return phrase
    if fact.basis in quoted:
        return f"{phrase} (same source)"
    quoted.add(fact.basis)
    return f"{phrase} ({_md(fact.basis)})"


_UNIT = re.compile(r"^(?P<name>.+) \((?P<unit>months|years|cm)\)$")


def _in_years(value: Any, unit: str) -> str:
    """Two years or more of months also in years, as a clinician says them: " (about 12 years)"."""
    if unit != " months" or not isinstance(value, (int, float)) or isinstance(value, bool) or value < 24:
        return ""
    return f" (about {round(value / 12)} years)"


def _unit(label: str) -> tuple[str, str]:
    """ "Disease-free interval (months)" -> ("Disease-free interval", " months"): the unit follows the value."""
    found = _UNIT.match(label)
    return (found["name"], f" {found['unit']}") if found else (label, "")


def _label(key: str) -> str:
    spec = FACTS.get(key)
    return spec.label if spec else key.replace("_", " ")


def describe(value: Any) -> str:
    """A fact value in words for a clinician."""
    if isinstance(value, Enum):
        return str(value.value).replace("-", " ")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (set, frozenset, tuple, list)):
        return ", ".join(sorted(describe(v) for v in value)) or "none"
    return str(value)


def _lower_first(label: str) -> str:
    """ "Stage (AJCC 8)" -> "stage (AJCC 8)"; "ECOG" and "N" stay as written."""
    return label if len(label) < 2 or label[1].isupper() else label[0].lower() + label[1:]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _first_fitting(*texts: str) -> str:
    """The first wording that fits a summary, shortest last (cut only if even that one does not)."""
    return next((t for t in texts if len(t) <= SUMMARY_MAX), _cut(texts[-1]))


def _cut(text: str) -> str:
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


def _md(text: str) -> str:
    """Record-derived text is shown as text, never as markup: one line, markup characters escaped,
    and no autolinks (a "www." or "scheme:" in a record must not become a link on the card)."""
    one_line = " ".join(text.split())
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", one_line)
    return _AUTOLINK.sub(lambda m: m.group(0)[:-1] + "\\" + m.group(0)[-1], escaped)


@lru_cache(maxsize=2048)
def _kb_md(text: str) -> str:
    """``_md`` of knowledge-base text (statements, options, evidence, vetoes): the same every call."""
    return _md(text)


def _suggestion(spec: SuggestionSpec, summary: PatientSummary | None) -> Suggestion:
    resource: dict[str, Any] = copy.deepcopy(dict(spec.resource))
    if summary is not None and summary.patient:
        resource["subject"] = {"reference": summary.patient}
    return Suggestion(label=spec.label, actions=(Action(ActionType.CREATE, spec.label, resource=resource),))


def _extension(statements: list[Statement], kb: KnowledgeBase) -> dict[str, Any]:
    evidence: list[Mapping[str, Any]] = []
    for s in statements:
        ev = s.citation.evidence
        entry: dict[str, Any] = {"statement": s.id}
        if ev is not None:
            entry.update(level=ev.level, reported_by=ev.reported_by, text=ev.text)
        evidence.append(entry)
    extension: dict[str, Any] = {EXT_STATEMENTS: [s.id for s in statements], EXT_EVIDENCE: evidence}
    extension[EXT_VERSION] = kb.version
    return extension
