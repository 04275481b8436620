"""Phase of care from Procedures (R2): was the primary resected, with which margin, was it
irradiated, and when did curative local treatment end.

A completed resection of the primary (or of its local recurrence) that no later local recurrence
has outgrown means the tumour is out: wide excision is not offered again (S05-S10) and the "after
resection" statements (S12, S13) may show. With no resection recorded the primary reads as not
resected (S05 is the standard first treatment); when the EHR could not provide Procedures, the
facts are unknown. Margins are read from coded data only (``procedures.yaml``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from cds_service.summary.codes import match_text
from cds_service.summary.concepts import codes_of, text_of
from cds_service.summary.context import Context
from cds_service.summary.dates import first_date, months_between, period_end, period_start
from cds_service.summary.indication import RECURRENCE, Indications, Purpose, cancer_of, condition_ref
from cds_service.summary.model import Fact, FactValues, Finding, FindingKind, Margin
from cds_service.summary.observations import Readings
from cds_service.summary.parse import Entry


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class CodeSet(_Table):
    snomed: frozenset[str]
    text: tuple[str, ...]
    profiles: frozenset[str] = frozenset()


class MarginCodes(_Table):
    snomed: dict[str, Margin]
    any_system: frozenset[Margin]


class ProcedureTables(_Table):
    """The whole of ``procedures.yaml``."""

    counted_status: frozenset[str]
    started_status: frozenset[str]
    resection: CodeSet
    not_resection: CodeSet
    chemotherapy: CodeSet
    not_chemotherapy: CodeSet
    radiotherapy: CodeSet
    radiotherapy_abbreviations: CodeSet
    not_radiotherapy: CodeSet
    cancer_surgery_profiles: frozenset[str]
    uterus_removal: CodeSet
    intent_extensions: frozenset[str]
    palliative_intent: frozenset[str]
    tumour_text: tuple[str, ...]
    unlinked_before_onset_days: int
    metastasis_text: tuple[str, ...]
    outcome_names_malignancy: str
    outcome_denial_words: tuple[str, ...]
    margin: MarginCodes


@cache
def tables() -> ProcedureTables:
    """``procedures.yaml``, parsed and checked once per process."""
    text = resources.files(__package__).joinpath("procedures.yaml").read_text(encoding="utf-8")
    return ProcedureTables.model_validate(yaml.safe_load(text))


class Kind(StrEnum):
    RESECTION = "resection"
    RADIOTHERAPY = "radiotherapy"


class Target(StrEnum):
    PRIMARY = "the primary"  # the primary tumour or its local recurrence
    ELSEWHERE = "elsewhere"  # a metastasis, another cancer, or not shown to be cancer treatment


@dataclass(frozen=True)
class Done:
    """One completed procedure the phase of care rests on."""

    ref: str
    kind: Kind
    target: Target
    start: date | None
    end: date | None
    palliative: bool
    margin: Margin | None
    uterus_kept: bool = False  # an operation on a uterine primary that left the uterus in place


@dataclass(frozen=True)
class LocalTreatment:
    """The phase-of-care facts (resected, margin, radiotherapy) and when curative treatment ended."""

    facts: FactValues = field(default_factory=dict)
    curative_ends: tuple[Fact[date], ...] = ()  # end of each curative resection or radiotherapy of the primary
    last_resection: date | None = None  # of the primary, whatever came after it


def _in(concept: Any, codes: CodeSet) -> bool:
    return (
        any(s == "snomed" and c in codes.snomed for s, c in codes_of(concept))
        or match_text(text_of(concept), codes.text) is not None
    )


def _profiles(resource: Any) -> set[str]:
    return {str(p).split("|")[0] for p in (resource.meta.profile or ())} if resource.meta else set()


def _kind(resource: Any) -> Kind | None:
    conf = tables()
    concepts = [resource.code, resource.category]  # a concept not recorded (None) is in no code set
    if _profiles(resource) & conf.radiotherapy.profiles or any(_in(c, conf.radiotherapy) for c in concepts):
        return None if _in(resource.code, conf.not_radiotherapy) else Kind.RADIOTHERAPY
    if _in(resource.code, conf.uterus_removal):  # "TLH-BSO (completion after myomectomy)" is a hysterectomy
        return Kind.RESECTION
    if _in(resource.code, conf.not_resection):
        return None
    if _in(resource.code, conf.resection):
        return Kind.RESECTION
    abbreviated = _in(resource.code, conf.radiotherapy_abbreviations) and not _in(resource.code, conf.not_radiotherapy)
    return Kind.RADIOTHERAPY if abbreviated else None


def _intents(resource: Any) -> list[str]:
    urls = tables().intent_extensions
    return [code for e in resource.extension or () if e.url in urls for _, code in codes_of(e.valueCodeableConcept)]


def palliative_intent(resource: Any) -> bool:
    """The record states a palliative treatment intent (mCODE procedure/treatment intent extension)."""
    return bool(set(_intents(resource)) & tables().palliative_intent)


def _target(resource: Any, indications: Indications) -> Target | None:
    """Where the procedure was aimed; None when the record does not say (see ``_unlinked``)."""
    refs = {condition_ref(r.reference) for r in resource.reasonReference or () if r.reference}
    named = {cancer_of(c) for c in resource.reasonCode or ()} - {None}
    if refs & (indications.own - indications.metastases - indications.siblings) or named & {
        indications.diagnosis,
        RECURRENCE,
    }:
        return Target.PRIMARY
    if refs & (indications.foreign | indications.metastases | indications.siblings) or named:
        return Target.ELSEWHERE
    return None


def _unlinked(resource: Any, indications: Indications, start: date | None) -> Target:
    """A procedure naming no Condition: the primary's only when the record shows it is cancer
    treatment (profile, intent, the tumour in its text), no metastasis is named, no other primary
    exists, and it was not done long before the primary was diagnosed (a hysterectomy for fibroids
    years before a thigh sarcoma; an excision shortly before the diagnosis may be the one that made it),
    unless it removed the uterus of a uterine sarcoma and its outcome names the malignancy."""
    conf = tables()
    onset = indications.onset
    found = _found_the_tumour(resource.outcome.text if resource.outcome is not None else None)
    uterus = indications.uterine and _in(resource.code, conf.uterus_removal)
    long_before = start is not None and onset is not None and (onset - start).days > conf.unlinked_before_onset_days
    if long_before and not (uterus and found):
        return Target.ELSEWHERE
    text = text_of(resource.code)
    if uterus:
        return Target.ELSEWHERE if indications.foreign else Target.PRIMARY  # how a uterine sarcoma is found
    cancer = (
        bool(_profiles(resource) & (conf.cancer_surgery_profiles | conf.radiotherapy.profiles))
        or bool(_intents(resource))
        or match_text(text, conf.tumour_text) is not None
        or found
    )
    elsewhere = indications.foreign or match_text(text, conf.metastasis_text) is not None
    return Target.PRIMARY if cancer and not elsewhere else Target.ELSEWHERE


@cache
def _outcome_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    conf = tables()
    denied = "|".join(re.escape(w) for w in conf.outcome_denial_words)
    return re.compile(conf.outcome_names_malignancy, re.I), re.compile(rf"\b(?:{denied})\b", re.I)


def _found_the_tumour(outcome: str | None) -> bool:
    """The outcome names a sarcoma or malignancy in a clause that does not deny it ("Pathology:
    leiomyosarcoma 11 cm"): the operation removed the tumour (not "benign, no malignancy")."""
    malignant, denied = _outcome_patterns()
    return any(malignant.search(c) and not denied.search(c) for c in re.split(r"[,;.]", outcome or ""))


# A margin written as the R category alone: "R1", "R1 resection", "Margin: R0" (not "R0/R1", "R1?").
_MARGIN_TEXT = re.compile(r"\s*(?:margins?\s*:?\s*)?(r[012])(?:\s+(?:resection|margins?))?\s*\.?\s*")


def _margin(concept: Any) -> Margin | None:
    """The R category from a code, else from a text or display that is only the category."""
    conf = tables().margin
    for system, code in codes_of(concept):
        if system == "snomed" and code in conf.snomed:
            return conf.snomed[code]
        if code.upper() in conf.any_system:
            return Margin(code.upper())
    written = {m.group(1).upper() for part in text_of(concept).split(" | ") if (m := _MARGIN_TEXT.fullmatch(part))}
    return Margin(written.pop()) if len(written) == 1 else None


def _done(
    entry: Entry[Any], indications: Indications, ctx: Context, statuses: frozenset[str] | None = None
) -> Done | None:
    resource = entry.resource
    kind = _kind(resource) if resource.status in (statuses or tables().counted_status) else None
    if kind is None:
        return None
    start = first_date(resource.performedDateTime, period_start(resource.performedPeriod))
    end = first_date(period_end(resource.performedPeriod), start)
    if start is not None and start > ctx.today:
        ctx.add(
            Finding(
                FindingKind.INVALID,
                "primary_resected",
                "completed procedure dated in the future; ignored",
                (entry.ref,),
            )
        )
        return None
    target = _target(resource, indications) or _unlinked(resource, indications, start)
    palliative = palliative_intent(resource)
    margin = _margin(resource.outcome) if resource.outcome else None
    kept = indications.uterine and kind is Kind.RESECTION and not _in(resource.code, tables().uterus_removal)
    return Done(entry.ref, kind, target, start, end, palliative, margin, kept)


def radiotherapy_start(entries: Sequence[Entry[Any]], indications: Indications, ctx: Context) -> date | None:
    """When radiotherapy to the primary began, under way or done (sizes measured later cannot set T, R1)."""
    return _first(entries, indications, ctx, Kind.RADIOTHERAPY)


def resection_start(entries: Sequence[Entry[Any]], indications: Indications, ctx: Context) -> date | None:
    """When the primary was first resected (metastases found before then were there at presentation)."""
    return _first(entries, indications, ctx, Kind.RESECTION)


def _first(entries: Sequence[Entry[Any]], indications: Indications, ctx: Context, kind: Kind) -> date | None:
    begun = (_done(e, indications, ctx, tables().started_status) for e in entries)
    return min(
        (d.start for d in begun if d and d.kind is kind and d.target is Target.PRIMARY and d.start), default=None
    )


def chemotherapy_procedures(entries: Sequence[Entry[Any]], indications: Indications) -> list[tuple[str, date, date]]:
    """Chemotherapy of this sarcoma recorded as a Procedure, under way or done: reference and period.
    One aimed at another cancer, or naming none while another primary is on record, is left out."""
    conf = tables()
    found = []
    for entry in entries:
        resource = entry.resource
        if resource.status not in conf.started_status or _kind(resource) is not None:
            continue  # "excision after neoadjuvant chemotherapy" is surgery
        if _in(resource.code, conf.not_chemotherapy) or not _in(resource.code, conf.chemotherapy):
            continue
        purpose = indications.purpose(resource)
        ours = purpose is Purpose.SARCOMA or (purpose is Purpose.UNSTATED and not indications.foreign)
        start = first_date(resource.performedDateTime, period_start(resource.performedPeriod))
        if ours and start is not None:
            found.append((entry.ref, start, first_date(period_end(resource.performedPeriod), start) or start))
    return found


def _on(day: date | None) -> str:
    return f" on {day.isoformat()}" if day else " (undated)"


def _resected(resections: Sequence[Done], recurrence: Fact[bool] | None, ctx: Context) -> Fact[bool] | None:
    """Resected, unless a local recurrence came after the last resection; unknown when the disease came
    back but where is not recorded (``recurrence`` unknown)."""
    if not resections:
        return Fact(False, (), "no resection of the primary recorded")
    last = resections[-1]
    refs = tuple(sorted(r.ref for r in resections))
    if recurrence is None:
        ctx.add(
            Finding(
                FindingKind.AMBIGUOUS,
                "primary_resected",
                "the disease came back after the resection, but whether at the primary site is not recorded",
                refs,
            )
        )
        return None
    if recurrence.value and (recurrence.when is None or last.end is None or last.end < recurrence.when):
        # an undated recurrence came after some resection: the last one is not known to have removed it
        return Fact(
            False,
            tuple(sorted({*refs, *recurrence.sources})),
            f"local recurrence{_on(recurrence.when)} after the last resection{_on(last.end)}",
            recurrence.when,
        )
    return Fact(True, refs, f"resection of the primary recorded{_on(last.end)}", last.end)


def _since(resected: Fact[bool] | None, today: date) -> Fact[float] | None:
    """Months from the resection of the primary to today (the time for adjuvant decisions)."""
    if resected is None or not resected.value or resected.when is None:
        return None
    months = round(months_between(resected.when, today), 1)
    return Fact(months, resected.sources, f"resection of the primary on {resected.when}", resected.when)


def _margin_fact(last: Done, readings: Readings, foreign: frozenset[str]) -> Fact[Margin] | None:
    """The margin of the last resection: its own outcome, else a margin Observation from its date on."""
    if last.margin is not None:
        return Fact(last.margin, (last.ref,), f"{last.margin.value} recorded as the resection's outcome", last.end)
    for reading in readings:
        late_enough = last.end is None or reading.when is None or reading.when >= last.end
        value = _margin(reading.observation.valueCodeableConcept)
        if value is not None and late_enough and not reading.focus & foreign:
            return Fact(value, (reading.ref,), f"{value.value} recorded{_on(reading.when)}", reading.when)
    return None


def _radiotherapy(courses: Sequence[Done]) -> Fact[bool]:
    if not courses:
        return Fact(False, (), "no radiotherapy to the primary recorded")
    last = courses[-1]
    return Fact(
        True,
        tuple(sorted(c.ref for c in courses)),
        f"radiotherapy to the primary recorded"
        f"{_on(last.start)}" + (f" to {last.end.isoformat()}" if last.end and last.end != last.start else ""),
        last.end,
    )


def _curative_ends(done: Sequence[Done], r2: str | None) -> tuple[Fact[date], ...]:
    """The end of each curative treatment of the primary; which one ended curative treatment depends on
    when the disease came back (radiotherapy after the first metastasis is not part of it). An R2
    resection (``r2``: the last one, by its margin Observation) left tumour behind: it ends nothing."""
    return tuple(
        Fact(d.end, (d.ref,), "resection of the primary" if d.kind is Kind.RESECTION else "radiotherapy to the primary")
        for d in done
        if not d.palliative and d.end is not None and d.margin is not Margin.R2 and d.ref != r2
    )


def _unreadable(ctx: Context) -> bool:
    """Whether a Procedure on record could not be read (it may be the resection)."""
    return any(
        f.kind is FindingKind.INVALID and f.about == "resource" and r.startswith("Procedure/")
        for f in ctx.findings
        for r in f.sources
    )


def _proven(fact: Fact[bool] | None, complete: bool) -> Fact[bool] | None:
    """A "not done" needs the whole procedure list; a "done" stands on its own record."""
    return fact if complete or fact is None or fact.value else None


def _with_the_uterus(resections: list[Done]) -> list[Done]:
    """A uterine sarcoma is resected by removing the uterus: an operation that left it in place
    (hysteroscopic resection, myomectomy) before any hysterectomy did not resect the primary, whatever
    it removed; after one, a resection is of what came back."""
    removed = next((i for i, d in enumerate(resections) if not d.uterus_kept), len(resections))
    return resections[removed:]


def local_treatment_of(
    entries: Sequence[Entry[Any]],
    margins: Readings,
    indications: Indications,
    *,
    recurrence: Fact[bool] | None,
    available: bool,
    ctx: Context,
) -> LocalTreatment:
    """The phase-of-care facts; unknown when the EHR could not provide the patient's procedures, and
    "not resected" or "not irradiated" unknown when a Procedure on record could not be read."""
    if not available or not indications.own:
        return LocalTreatment()
    done = sorted(
        (d for e in entries if (d := _done(e, indications, ctx)) is not None),
        key=lambda d: (d.end or d.start or date.min, d.ref),
    )
    primary = [d for d in done if d.target is Target.PRIMARY]
    resections = _with_the_uterus([d for d in primary if d.kind is Kind.RESECTION])
    skipped = [d.ref for d in done if d.target is Target.ELSEWHERE and d.kind is Kind.RESECTION]
    if skipped:
        ctx.add(
            Finding(
                FindingKind.INFO,
                "primary_resected",
                "surgery not shown to be of the primary tumour is not read as its resection",
                tuple(skipped),
            )
        )
    complete = not _unreadable(ctx)
    resected = _proven(_resected(resections, recurrence, ctx), complete)
    margin = _margin_fact(resections[-1], margins, indications.foreign) if resected and resected.value else None
    irradiated = _proven(_radiotherapy([d for d in primary if d.kind is Kind.RADIOTHERAPY]), complete)
    facts: FactValues = {
        "primary_resected": resected,
        "months_since_resection": _since(resected, ctx.today),
        "resection_margin": margin,
        "radiotherapy_given": irradiated,
    }
    r2 = resections[-1].ref if margin is not None and margin.value is Margin.R2 else None
    last = resections[-1].end or resections[-1].start if resections else None
    return LocalTreatment(facts, _curative_ends(primary, r2), last)
