"""Judgements the record rarely codes (R2): resectability, symptoms, growth rate, the need for a
tumour response, the margin a clinician wrote. A statement resting on one fires only when its fact is
present, so each fact is set only on evidence, the strongest kind present first:

1. coded data: a finding Condition (``codes.yaml`` ``judgements.findings``); the cancer disease
   status for growth;
2. structured proxies, the threshold written in the basis: T3-T4, or a local recurrence after a
   resection, read as "locally advanced: resectability to be confirmed" (resectability in question,
   never unresectable); serial sizes of the same lesion read RECIST-like (``growth.py``);
3. clinician free text (``notes.py``), quoted with its resource and date and flagged "from note".

A plain resectable/unresectable from a note settles what the T3-T4 proxy only puts in question.
Evidence dated before the latest disease event (primary onset, first metastasis, local recurrence,
progression) describes a disease that has since changed and is not used; undated evidence cannot be
placed after it either. What stays unsettled is named in ``open_questions`` for the sarcoma MDT.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir.resources.R4B.condition import Condition

from cds_service.summary.codes import codes
from cds_service.summary.concepts import codes_of, describe, lookup, lookup_prefix
from cds_service.summary.conditions import CancerCondition, Role, clinical_status, visit_diagnosis
from cds_service.summary.context import Context
from cds_service.summary.dates import condition_onset, first_date, period_end, period_start
from cds_service.summary.diagnosis import Diagnosed
from cds_service.summary.growth import Lesion, lesion_growth, lesion_series
from cds_service.summary.indication import condition_ref
from cds_service.summary.model import (
    Diagnosis,
    DiseaseStatus,
    Extent,
    Fact,
    FactValues,
    Finding,
    FindingKind,
    Growth,
    LesionCount,
    Margin,
    Resectability,
    TreatmentWish,
)
from cds_service.summary.notes import (
    Note,
    Said,
    combined,
    has_raw_notes,
    names_tumour,
    notes_of,
    phrase_table,
    raw_notes,
    read_notes,
)
from cds_service.summary.observations import NOT_RESULTS, Readings
from cds_service.summary.observations import _raw_date as observed_on
from cds_service.summary.parse import Chart, Entry
from cds_service.summary.reports import report_notes
from cds_service.summary.tnm import usable

_VALUES: Mapping[str, Any] = {
    "resectability": Resectability,
    "symptomatic": lambda v: v == "true",
    "growth": Growth,
    "response_needed": lambda v: v == "true",
    "fit_for_surgery": lambda v: v == "true",
    "treatment_wish": TreatmentWish,
    "margin_from_note": Margin,
    "metastatic_lesions": LesionCount,
}
"""How a judgement's value as written in the tables becomes the fact's value."""


@dataclass(frozen=True)
class Disease:
    """The index primary's disease as the rest of the summary reads it: what is being judged."""

    diagnosed: Diagnosed
    t: Fact[str] | None = None
    m: Fact[str] | None = None
    extent: Fact[Extent] | None = None
    local_recurrence: Fact[bool] | None = None
    in_remission: Fact[bool] | None = None
    status: Fact[DiseaseStatus] | None = None
    progression: Fact[bool] | None = None
    resected: Fact[bool] | None = None  # the primary resected (Procedures); None when not known
    new_disease: tuple[date, ...] = ()  # when each metastasis and local recurrence was first recorded

    @property
    def index(self) -> CancerCondition | None:
        """The primary judged: an adult-type soft tissue sarcoma (no judgement for other guidelines)."""
        return self.diagnosed.index if self.diagnosed.diagnosis.value is Diagnosis.STS else None

    def latest_event(self, index: CancerCondition, *, progression: bool = True) -> date | None:
        """The latest of the primary's onset, any metastasis, local recurrence and (unless
        ``progression=False``) progression."""
        events = [
            index.onset,
            _when(self.m, "M1"),
            _when(self.local_recurrence, True),
            _when(self.progression, True) if progression else None,
            *self.new_disease,  # a later metastasis too, not only the first (M1 is dated by the first)
        ]
        return max((d for d in events if d is not None), default=None)


@dataclass(frozen=True)
class Evidence:
    """What the record holds for the judgements, read once from the chart."""

    coded: tuple[tuple[str, Fact[str]], ...] = ()  # (judgement, coded finding)
    metastases: tuple[CancerCondition, ...] = ()  # confirmed distant metastasis Conditions of this primary
    lesions: tuple[Fact[Growth], ...] = ()  # growth of each lesion measured twice far enough apart
    series: tuple[Lesion, ...] = ()  # each lesion's sizes
    said: tuple[Said, ...] = ()  # what clinician notes say plainly
    notes: tuple[Note, ...] = ()  # the notes themselves (a performance status written in one)


def _when(fact: Fact[Any] | None, value: Any) -> date | None:
    return fact.when if fact is not None and fact.value == value else None


def _current(when: date | None, since: date | None) -> bool:
    """Not older than the latest disease event (undated evidence cannot be placed after it)."""
    return since is None or (when is not None and when >= since)


# --- Reading the chart ------------------------------------------------------------------------------


def evidence_of(
    chart: Chart, conditions: Sequence[CancerCondition], diagnosed: Diagnosed, sizes: Readings, ctx: Context
) -> Evidence:
    """Coded findings, lesion growth and what the notes say, about the index primary's disease only."""
    index = diagnosed.index
    if index is None or diagnosed.diagnosis.value is not Diagnosis.STS:
        return Evidence(
            notes=(
                *_observation_notes(chart.observations, frozenset(), ctx.today),
                *_medication_notes(chart.medication_uses),
            )
        )
    foreign = frozenset(p.ref for p in diagnosed.primaries if p.ref != index.ref) - diagnosed.same_tumour
    notes = [
        *_condition_notes(chart.conditions, conditions, foreign, ctx.today),
        *_observation_notes(chart.observations, foreign, ctx.today),
        *(note for e in chart.procedures for note in procedure_notes(e, foreign)),
        *report_notes(chart.reports, ctx.today),
    ]
    series = lesion_series(usable(sizes, index.ref, foreign))
    metastases = tuple(
        c
        for c in conditions
        if c.role is Role.SECONDARY
        and c.active
        and not c.suspected
        and not (c.organ or "").startswith("nodes")
        and _about_this_disease(c, foreign)
    )
    return Evidence(
        coded=tuple(_coded(chart.conditions, ctx.today)),
        metastases=metastases,
        lesions=tuple(lesion_growth(series)),
        series=series,
        said=tuple(read_notes(notes)),
        notes=(*notes, *_medication_notes(chart.medication_uses)),
    )


def _recorded(condition: Condition, today: date) -> bool:
    """Neither refuted, entered in error nor merely suspected, and neither resolved nor abated."""
    conf = codes()["condition"]
    excluded = {*conf["excluded_verification_status"], *conf.get("unconfirmed_verification_status", ())}
    verification = codes_of(condition.verificationStatus)
    clinical = clinical_status(condition, today)
    return not (verification and verification[0][1] in excluded) and (
        clinical is None or clinical in conf["active_clinical_status"]
    )


def _coded(entries: Iterable[Entry[Condition]], today: date) -> Iterator[tuple[str, Fact[str]]]:
    table: Mapping[str, Mapping[str, Mapping[str, str]]] = codes()["judgements"]["findings"]
    for entry in entries:
        if not _recorded(entry.resource, today):
            continue
        for judgement, by_system in table.items():
            hit = lookup(entry.resource.code, by_system)
            if hit is not None:
                yield (
                    judgement,
                    Fact(hit[0], (entry.ref,), f"coded finding ({describe(hit[1])})", condition_onset(entry.resource)),
                )


def metastatic_complications(entries: Iterable[Entry[Condition]], today: date) -> list[Fact[bool]]:
    """Conditions coded as a complication of metastatic disease (a pathological fracture in neoplastic
    disease, ``codes.yaml`` ``metastasis_complications``): an earlier M0 then needs restaging (R1)."""
    table = {code: True for code in codes()["metastasis_complications"]["icd10"]}
    found = []
    for entry in entries:
        hit = lookup_prefix(entry.resource.code, "icd10", table)
        if hit is not None and _recorded(entry.resource, today):
            when = condition_onset(entry.resource)
            found.append(Fact(True, (entry.ref,), f"coded {describe(hit[1])} (a complication of metastases)", when))
    return found


def _about_this_disease(condition: CancerCondition, foreign: frozenset[str]) -> bool:
    """Not another primary, nor a metastasis linked to one (only secondaries are ``related``)."""
    return condition.ref not in foreign and not condition.related & foreign


def _tumour_only_in_text(condition: Condition) -> str | None:
    """The text of a text-only code that names the tumour; else None."""
    code = condition.code
    if code is None or not code.text or code.coding or not names_tumour(code.text):
        return None
    return code.text


def _condition_notes(
    entries: Iterable[Entry[Condition]], cancers: Sequence[CancerCondition], foreign: frozenset[str], today: date
) -> Iterator[Note]:
    """Notes on the index primary, its metastases and recurrences, dated by the note or else when the
    Condition was recorded; and text-only Conditions that name the tumour ("Tumour judged
    unresectable"). Notes on another cancer, or on a non-cancer Condition, say nothing about this sarcoma."""
    roles = {c.ref: c for c in cancers}
    for entry in entries:
        condition, cancer = entry.resource, roles.get(entry.ref)
        when = first_date(condition.recordedDate, condition_onset(condition))
        if cancer is not None and _about_this_disease(cancer, foreign):
            yield from notes_of(entry.ref, condition, when)
            code = condition.code
            if cancer.role is Role.SECONDARY and code is not None and code.text and code.coding:
                # "Lung metastases (23 nodules)": the clinician's words
                yield Note(entry.ref, when, code.text, kind="diagnosis text")
        elif cancer is None and _recorded(condition, today) and (text := _tumour_only_in_text(condition)) is not None:
            yield Note(entry.ref, when, text, kind="diagnosis text")


def _medication_notes(entries: Iterable[Entry[Any]]) -> Iterator[Note]:
    """Notes on medication records, dated by the note or else when the record was written: read for a
    performance status only ("Now ECOG 3 ... order cancelled"), since the latest one counts wherever it
    is written (R3); what they say of the disease is not read."""
    for entry in entries:
        use = entry.resource
        if use.note:
            when = first_date(
                getattr(use, "authoredOn", None),
                getattr(use, "dateAsserted", None),
                getattr(use, "effectiveDateTime", None),
                period_start(getattr(use, "effectivePeriod", None)),
            )
            yield from notes_of(entry.ref, use, when)


def _observation_notes(
    entries: Iterable[Entry[Mapping[str, Any]]], foreign: frozenset[str], today: date
) -> Iterator[Note]:
    """Notes on the Observations the summary keeps (staging, sizes, disease status, performance
    status), read from the raw JSON so that no Observation is validated only for its notes."""
    for entry in entries:
        if not has_raw_notes(entry.resource):
            continue
        raw, when = entry.resource, observed_on(entry.resource)
        focus_field = raw.get("focus")
        focus = focus_field if isinstance(focus_field, list) else []
        refs = {f.get("reference") for f in focus if isinstance(f, Mapping) and isinstance(f.get("reference"), str)}
        status = raw.get("status")
        if (isinstance(status, str) and status in NOT_RESULTS) or refs & foreign or (when and when > today):
            continue
        yield from raw_notes(entry.ref, raw, when, general=not refs)


def procedure_notes(entry: Entry[Any], foreign: frozenset[str]) -> list[Note]:
    """Notes, text-only code and outcome in words ("posterior margin involved (R1)") of a Procedure not
    done for another cancer, dated by when it was done."""
    procedure = entry.resource
    if {condition_ref(r.reference) for r in procedure.reasonReference or ()} & foreign:
        return []
    when = first_date(procedure.performedDateTime, period_end(procedure.performedPeriod))
    outcome = procedure.outcome.text if procedure.outcome is not None else None
    return [*notes_of(entry.ref, procedure, when), *([Note(entry.ref, when, outcome)] if outcome else [])]


# --- Judging -----------------------------------------------------------------------------------------


def judge(evidence: Evidence, disease: Disease, ctx: Context) -> FactValues:
    """Each judgement from the strongest current evidence; all unknown without an index primary."""
    index = disease.index
    if index is None:
        return {}
    since = disease.latest_event(index)
    operated = disease.resected.when if disease.resected is not None and disease.resected.value else None
    lasting = _later(disease.latest_event(index, progression=False), operated)
    coded = [
        (key, fact) for key, fact in evidence.coded if _current(fact.when, _since(key, fact.value, since, lasting))
    ]
    noted = _from_notes(
        [
            s
            for s in evidence.said
            if s.judgement in _VALUES and _current(s.note.when, _since(s.judgement, s.value, since, lasting))
        ],
        ctx,
    )
    found: FactValues = {
        "resectability": _first(
            _from_coded(coded, "resectability"), noted.get("resectability"), _locally_advanced(disease, since)
        ),
        "symptomatic": _first(_from_coded(coded, "symptomatic"), noted.get("symptomatic")),
        "growth": _first(
            _status_growth(disease.status, since), _measured(evidence.lesions, since), noted.get("growth")
        ),
        "response_needed": noted.get("response_needed"),
        "fit_for_surgery": noted.get("fit_for_surgery"),
        "treatment_wish": noted.get("treatment_wish"),
        "margin_from_note": noted.get("margin_from_note"),
        "metastatic_lesions": _first(_counted(evidence.metastases, disease), noted.get("metastatic_lesions"))
        if _metastatic(disease)
        else None,
    }
    return {**found, "open_questions": _open_questions(found, disease)}


def unresectable_primary(evidence: Evidence, *, spread: date | None, operated: date | None) -> Fact[bool] | None:
    """The primary judged unresectable by the latest note on it written while the disease was still
    local (before ``spread``, its first metastasis or recurrence) and after any resection: a primary
    never brought under control. A treatment begun after that judgement treats advanced disease (S26:
    "M1 or unresectable"), and curative local treatment of metastases presupposes a controlled primary.
    The judgement dates from the first of the notes that say so since the last one that did not: a
    later "still unresectable" confirms it, it does not move it."""
    said = [
        s
        for s in evidence.said
        if s.judgement == "resectability"
        and s.note.when is not None
        and (spread is None or s.note.when < spread)
        and (operated is None or s.note.when > operated)
    ]
    run: list[Said] = []
    for when in sorted({s.note.when for s in said if s.note.when is not None}, reverse=True):
        that_day = _broadest([s for s in said if s.note.when == when], "resectability")
        if {s.value for s in that_day} != {Resectability.UNRESECTABLE.value}:
            break
        run = that_day
    if not run:
        return None
    first = run[0].note.when
    return Fact(True, tuple(sorted({s.note.ref for s in run})), run[0].basis, first)


def _since(judgement: str, value: Any, since: date | None, lasting: date | None) -> date | None:
    """From when evidence for ``judgement`` is current: the latest disease event; for a value growth
    does not undo (``phrases.yaml`` ``lasting``), the latest event other than progression, or a later
    resection."""
    spec = phrase_table().judgements.get(judgement)
    return lasting if spec is not None and str(value).lower() in spec.lasting else since


def _later(one: date | None, other: date | None) -> date | None:
    return max((d for d in (one, other) if d is not None), default=None)


def _first(*facts: Fact[Any] | None) -> Fact[Any] | None:
    return next((fact for fact in facts if fact is not None), None)


def _from_coded(coded: Sequence[tuple[str, Fact[str]]], judgement: str) -> Fact[Any] | None:
    facts = [fact for key, fact in coded if key == judgement]
    if not facts:
        return None
    latest = max(facts, key=lambda f: (f.when or date.min, f.sources))
    return Fact(_VALUES[judgement](latest.value), latest.sources, latest.basis, latest.when)


def _from_notes(said: Sequence[Said], ctx: Context) -> dict[str, Fact[Any]]:
    """Per judgement, what the latest notes say; notes of that date that disagree settle nothing."""
    found: dict[str, Fact[Any]] = {}
    for judgement in sorted({s.judgement for s in said}):
        mine = [s for s in said if s.judgement == judgement]
        latest = max(s.note.when or date.min for s in mine)
        last = sorted((s for s in mine if (s.note.when or date.min) == latest), key=lambda s: s.note.ref)
        refs = tuple(sorted({s.note.ref for s in last}))
        last = _broadest(last, judgement)
        if len({s.value for s in last}) > 1:
            ctx.add(
                Finding(
                    FindingKind.AMBIGUOUS,
                    judgement,
                    "clinician notes of the same date disagree; no conclusion drawn from them",
                    refs,
                )
            )
            continue
        quoted = last[0]
        found[judgement] = Fact(_VALUES[judgement](quoted.value), refs, quoted.basis, quoted.note.when)
    return found


def _broadest(said: list[Said], judgement: str) -> list[Said]:
    """Notes of one date that give a value and one it covers say the broader one."""
    value: str | None = said[0].value
    for other in said[1:]:
        value = combined(judgement, value, other.value)
    return [s for s in said if s.value == value] if value is not None else said


def _metastatic(disease: Disease) -> bool:
    return disease.m is not None and disease.m.value == "M1"


def _lesion(metastasis: CancerCondition) -> Any:
    """What one metastasis record counts as: itself; a visit's diagnosis (encounter-diagnosis), the
    organ and code it names, as every visit's record of one lesion names the same."""
    if visit_diagnosis(metastasis):
        return (metastasis.organ, tuple(codes_of(metastasis.condition.code)))
    return metastasis.ref


def _counted(metastases: Sequence[CancerCondition], disease: Disease) -> Fact[LesionCount] | None:
    """More than a few: at least ``many_metastases_min`` distant metastases recorded, a visit's
    diagnoses of the same organ and code counted once, and not beside another record of that organ
    and code (a lesion on the problem list, then named at every visit)."""
    least = int(codes()["judgements"]["many_metastases_min"])
    listed = {(c.organ, tuple(codes_of(c.condition.code))) for c in metastases if _lesion(c) == c.ref}
    counted = {_lesion(c) for c in metastases} - listed
    if len(counted) < least:
        return None
    return Fact(
        LesionCount.MANY,
        tuple(sorted(c.ref for c in metastases)),
        f"{len(counted)} distant metastases recorded ({least} or more read as more than a few)",
        max((c.onset for c in metastases if c.onset), default=None),
    )


def _locally_advanced(disease: Disease, since: date | None) -> Fact[Resectability] | None:
    """Resectability in question: a T3-T4 primary not yet resected, or a local recurrence after a
    resection (R2 structured proxies)."""
    if disease.in_remission is not None and disease.in_remission.value:
        return None
    categories = codes()["judgements"]["locally_advanced_t"]
    t, resected = disease.t, disease.resected
    if t is not None and t.value in categories and _current(t.when, since) and not (resected and resected.value):
        named = "-".join(sorted({c[:2] for c in categories}))
        return Fact(
            Resectability.TO_CONFIRM,
            t.sources,
            f"primary {t.value}, read so at {named}",  # the label says "to be confirmed (locally advanced)"
            t.when,
        )
    recurrence = disease.local_recurrence
    # "Not resected" resting on Procedures: resections the recurrence came back after.
    resections = tuple(s for s in resected.sources if s.startswith("Procedure/")) if resected else ()
    if recurrence is not None and recurrence.value and resections and resected is not None and not resected.value:
        return Fact(
            Resectability.TO_CONFIRM,
            tuple(sorted({*recurrence.sources, *resections})),
            "local recurrence after a resection",
            recurrence.when,
        )
    return None


def _status_growth(status: Fact[DiseaseStatus] | None, since: date | None) -> Fact[Growth] | None:
    table: Mapping[str, str] = codes()["judgements"]["growth_from_status"]
    if status is None or status.value.value not in table or not _current(status.when, since):
        return None
    value = Growth(table[status.value.value])
    return Fact(
        value, status.sources, f"cancer disease status {status.value.value} on {status.when} (coded)", status.when
    )


def _measured(lesions: Sequence[Fact[Growth]], since: date | None) -> Fact[Growth] | None:
    """Growing if any current lesion grew past the threshold, else not growing."""
    current = [lesion for lesion in lesions if _current(lesion.when, since)]
    growing = [lesion for lesion in current if lesion.value is Growth.GROWING]
    chosen = growing or current
    if not chosen:
        return None
    return Fact(
        Growth.GROWING if growing else Growth.NOT_GROWING,
        tuple(sorted({ref for lesion in chosen for ref in lesion.sources})),
        "; ".join(lesion.basis for lesion in chosen),
        max(lesion.when for lesion in chosen if lesion.when),
    )


def _open_questions(found: Mapping[str, Fact[Any] | None], disease: Disease) -> Fact[frozenset[str]] | None:
    """The judgements this disease's decisions turn on that the record leaves unsettled."""
    if disease.extent is None or (disease.in_remission is not None and disease.in_remission.value):
        return None
    table: Mapping[str, Mapping[str, Any]] = codes()["judgements"]["open_questions"]
    extent = disease.extent.value
    resected = disease.resected is not None and disease.resected.value and extent in ("none", "nodal")
    unfit = (fit := found.get("fit_for_surgery")) is not None and fit.value is False
    unsettled = frozenset(
        spec["label"]
        for key, spec in table.items()
        if extent in spec["extents"]
        and not ((resected or unfit) and key == "resectability")  # answered, or moot without surgery
        and ((fact := found.get(key)) is None or fact.value is Resectability.TO_CONFIRM)
    )
    if not unsettled:
        return None
    return Fact(unsettled, (), "not settled by coded data, measurements or clinician notes in the record")
