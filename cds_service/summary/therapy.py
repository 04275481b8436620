"""Systemic therapy: exposures per ingredient and course, setting, lines of therapy (S28, S38-S43, G6).

Reads MedicationStatement (effective[x]), MedicationRequest (boundsPeriod, else authoredOn) and
MedicationAdministration (effective[x]) (clinical.md 4.3). Records of one drug within
``course_gap_days`` form one course. A course is "advanced" when it starts on or after the first
distant metastasis or local recurrence, else "perioperative". Advanced courses starting within
``line_window_days`` of a line's first drug share that line; supportive drugs are never a line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from fhir.resources.R4B.codeableconcept import CodeableConcept

from cds_service.summary.codes import codes
from cds_service.summary.context import Context
from cds_service.summary.concepts import codes_of
from cds_service.summary.dates import first_date, period_end, period_start
from cds_service.summary.drugs import drugs, ingredients
from cds_service.summary.model import Fact, Finding, FindingKind, TherapyExposure
from cds_service.summary.parse import Entry

ADVANCED = "advanced"
PERIOPERATIVE = "perioperative"


@dataclass(frozen=True)
class Use:
    """One record of one ingredient."""

    ingredient: str
    rxnorm: str | None
    start: date | None
    end: date | None
    status: str
    stop_reason: str | None
    ref: str


@dataclass(frozen=True)
class Therapy:
    therapies: tuple[TherapyExposure, ...]
    lines: Fact[int]
    prior_drugs: Fact[frozenset[str]]
    prior_anthracycline: Fact[bool]


def _period(kind: str, resource: Any) -> tuple[date | None, date | None]:
    if kind == "MedicationRequest":
        bounds = [d.timing.repeat.boundsPeriod for d in resource.dosageInstruction or ()
                  if d.timing and d.timing.repeat and d.timing.repeat.boundsPeriod]
        starts = [s for s in (period_start(b) for b in bounds) if s]
        ends = [e for e in (period_end(b) for b in bounds) if e]
        authored = first_date(resource.authoredOn)
        return (min(starts, default=authored), max(ends, default=None) or min(starts, default=authored))
    start = first_date(resource.effectiveDateTime, period_start(resource.effectivePeriod))
    return start, first_date(period_end(resource.effectivePeriod), start)


def _stop_reason(resource: Any) -> str | None:
    reasons = resource.statusReason
    concepts = reasons if isinstance(reasons, list) else [reasons]
    return next((code for concept in concepts for _, code in codes_of(concept)), None)


def _medication(entry: Entry[Any], medications: Mapping[str, Any], ctx: Context) -> Any | None:
    """medicationCodeableConcept, or the contained/included Medication it references, or the
    reference's display name. With none of these the drug is unknown, and an unknown drug must not
    read as "no prior therapy" (G6): the therapy facts become incomplete."""
    resource = entry.resource
    if resource.medicationCodeableConcept is not None:
        return resource.medicationCodeableConcept
    reference = resource.medicationReference.reference if resource.medicationReference else None
    if reference and reference.startswith("#"):
        contained = {c.id: c for c in resource.contained or () if c.get_resource_type() == "Medication"}
        if reference[1:] in contained:
            return contained[reference[1:]].code
    elif reference in medications:
        return medications[reference].code
    display = resource.medicationReference.display if resource.medicationReference else None
    if display:
        return CodeableConcept(text=display)
    ctx.incomplete(entry.ref.split("/", 1)[0], "a medication is referenced but neither "
                           "its code nor its name is in the record; this may rest on partial data.", (entry.ref,))
    return None


def _is_cancer_related(resource: Any) -> bool:
    profiles = {str(p) for p in (resource.meta.profile or ())} if resource.meta else set()
    return bool(profiles & set(drugs()["cancer_related_profiles"]))


def read_uses(entries: Iterable[Entry[Any]], medications: Mapping[str, Any],
              ctx: Context) -> list[Use]:
    """Exposure records per ingredient; excluded statuses dropped, future starts set aside."""
    conf = drugs()
    uses: list[Use] = []
    for entry in entries:
        resource, kind = entry.resource, entry.resource.get_resource_type()
        if resource.status in conf["excluded_status"][kind] or getattr(resource, "intent", None) in conf[
                "excluded_intent"]:
            continue
        concept = _medication(entry, medications, ctx)
        found = ingredients(concept) if concept is not None else ()
        if not found:
            if concept is not None and _is_cancer_related(resource):
                ctx.add(Finding(FindingKind.INFO, "prior_drugs", "cancer-related medication not "
                                        "recognised; not counted", (entry.ref,)))
            continue
        start, end = _period(kind, resource)
        if start is not None and start > ctx.today:
            ctx.add(Finding(FindingKind.INFO, "prior_drugs", "planned, not yet started; not counted",
                                    (entry.ref,)))
            continue
        uses += [Use(i.name, i.rxcui, start, end, resource.status, _stop_reason(resource), entry.ref) for i in found]
    return uses


def _courses(uses: Sequence[Use]) -> list[list[Use]]:
    """Records of one ingredient merged while each starts within the gap after the course so far."""
    gap = timedelta(days=int(drugs()["course_gap_days"]))
    courses: list[list[Use]] = []
    by_drug: dict[str, list[Use]] = {}
    for use in uses:
        by_drug.setdefault(use.ingredient, []).append(use)
    for name in sorted(by_drug):
        dated = sorted((u for u in by_drug[name] if u.start), key=lambda u: (u.start, u.ref))
        courses += [[u] for u in sorted((u for u in by_drug[name] if not u.start), key=lambda u: u.ref)]
        current: list[Use] = []
        last = date.min  # latest end (or start) of the course so far
        for use in dated:
            if current and use.start - last <= gap:
                current.append(use)
            else:
                current = [use]
                courses.append(current)
                last = date.min
            last = max(last, use.end or use.start)
    return courses


def _setting(start: date | None, end: date | None, advanced_from: date | None, metastatic: bool) -> str:
    """Advanced if the course began, or went on for a cycle or more, after advanced disease was known."""
    if start is None:
        return ADVANCED if metastatic else PERIOPERATIVE
    if advanced_from is None:
        return PERIOPERATIVE
    went_on = end is not None and end >= advanced_from + timedelta(days=int(drugs()["line_window_days"]))
    return ADVANCED if start >= advanced_from or went_on else PERIOPERATIVE


def _exposure(course: list[Use], setting: str) -> TherapyExposure:
    last = max(course, key=lambda u: (u.start or date.min, u.ref))
    reasons = [u for u in course if u.stop_reason]
    reason = max(reasons, key=lambda u: (u.start or date.min, u.ref)).stop_reason if reasons else None
    ends = [u.end or u.start for u in course if u.end or u.start]
    return TherapyExposure(
        ingredient=last.ingredient, rxnorm=last.rxnorm, start=course[0].start, end=max(ends, default=None),
        status=last.status, stop_reason=reason, setting=setting, line=None,
        sources=tuple(sorted({u.ref for u in course})))


def _number_lines(exposures: list[TherapyExposure]) -> list[TherapyExposure]:
    """Advanced, non-supportive, dated exposures grouped into lines by start date."""
    window = timedelta(days=int(drugs()["line_window_days"]))
    supportive = set(drugs()["supportive"])
    numbered: list[TherapyExposure] = []
    line, line_start = 0, None
    for exposure in sorted(exposures, key=lambda e: (e.start or date.max, e.ingredient, e.sources)):
        if exposure.setting != ADVANCED or exposure.ingredient in supportive or exposure.start is None:
            numbered.append(exposure)
            continue
        if line_start is None or exposure.start > line_start + window:
            line, line_start = line + 1, exposure.start
        numbered.append(replace(exposure, line=line))
    return numbered


def _check_settings(exposures: Sequence[TherapyExposure], advanced_from: date | None, metastatic: bool,
                    ctx: Context) -> None:
    """A course whose setting cannot be told makes the line count incomplete (G6: an uncounted
    line must not read as "no prior therapy")."""
    undated = sorted(s for e in exposures if e.start is None for s in e.sources)
    if undated:
        ctx.add(Finding(FindingKind.INCOMPLETE, "lines_of_therapy", "medication without a date: "
                                "its line of therapy is unknown", tuple(undated)))
    if metastatic and advanced_from is None:
        dated = sorted(s for e in exposures if e.start is not None for s in e.sources)
        if dated:
            ctx.add(Finding(FindingKind.INCOMPLETE, "lines_of_therapy", "metastatic, but the date of the "
                                    "first metastasis is unknown: perioperative or advanced therapy cannot be told",
                                    tuple(dated)))


def therapy_of(uses: Sequence[Use], *, advanced_from: date | None, metastatic: bool, ctx: Context) -> Therapy:
    """Exposures with setting and line, and the facts cards use (lines, prior drugs, anthracycline)."""
    exposures = [_exposure(c, "") for c in _courses(uses)]
    exposures = [replace(e, setting=_setting(e.start, e.end, advanced_from, metastatic)) for e in exposures]
    _check_settings(exposures, advanced_from, metastatic, ctx)
    therapies = tuple(sorted(_number_lines(exposures), key=lambda e: (e.start or date.min, e.ingredient,
                                                                      e.sources)))
    in_lines = [e for e in therapies if e.line is not None]
    count = max((e.line for e in in_lines), default=0)
    line_sources = tuple(sorted({s for e in in_lines for s in e.sources}))
    lines = Fact(count, line_sources, f"{count} line(s) for advanced disease (drugs starting within "
                 f"{drugs()['line_window_days']} days form one line)")
    all_sources = tuple(sorted({s for e in therapies for s in e.sources}))
    names = frozenset(e.ingredient for e in therapies)
    prior = Fact(names, all_sources, "ingredients of all recorded systemic therapy" if names
                 else "no systemic therapy recorded")
    anthracyclines = [e for e in therapies if e.ingredient in set(drugs()["anthracyclines"])]
    anthracycline = Fact(bool(anthracyclines), tuple(sorted({s for e in anthracyclines for s in e.sources})),
                         "anthracycline given (any setting)" if anthracyclines else "no anthracycline recorded")
    return Therapy(therapies, lines, prior, anthracycline)
