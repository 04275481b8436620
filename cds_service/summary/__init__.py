"""FHIR resources -> ``PatientSummary``: what an oncologist would know, with provenance.

``summarise`` is the only entry point. Each concern lives in its own module (``parse``,
``conditions``, ``diagnosis``, ``site``, ``tnm``, ``stage``, ``extent``, ``recurrence``,
``performance``, ``therapy`` with ``indication``, ``lines`` and ``pretreatment``, ``procedures``,
``disease_status``); codes live in ``codes.yaml``, ``drugs.yaml`` and ``procedures.yaml``,
the AJCC 8 tables in ``cds_service/staging/ajcc8.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

import yaml
from pydantic import ValidationError

from cds_service.summary.codes import TableError, codes, table_error
from cds_service.summary.completeness import note_unavailable, note_unreadable_records
from cds_service.summary.conditions import CancerCondition, Role, body_site_organ, read_conditions
from cds_service.summary.context import Context
from cds_service.summary.dates import days_before
from cds_service.summary.diagnosis import Diagnosed, diagnose
from cds_service.summary.disease_status import (
    Course,
    course_of,
    no_evidence_of_disease,
    progression_disputed,
    progression_noted,
    progression_of,
    unconfirmed,
)
from cds_service.summary.drugs import drugs
from cds_service.summary.extent import Relapse, spread, staging_scan
from cds_service.summary.growth import grown_since
from cds_service.summary.indication import indications_of
from cds_service.summary.judgements import Disease, evidence_of, judge, metastatic_complications, unresectable_primary
from cds_service.summary.lines import Progression, new_disease
from cds_service.summary.medications import Use, deaths_in_status_reasons
from cds_service.summary.model import (
    Diagnosis,
    DiseaseStatus,
    Fact,
    FactValues,
    Finding,
    FindingKind,
    Histology,
    PatientSummary,
)
from cds_service.summary.notes import Said, phrase_table
from cds_service.summary.observations import ByKind, Readings, by_kind
from cds_service.summary.parse import Entry, read_chart
from cds_service.summary.performance import ecog_of, recency_of
from cds_service.summary.person import (
    age_of,
    death_noted_of,
    deaths_in_conditions,
    deceased_of,
    oldest_age_of,
    pregnant_of,
)
from cds_service.summary.pretreatment import curative_end, disease_free_interval
from cds_service.summary.procedures import (
    chemotherapy_procedures,
    local_treatment_of,
    radiotherapy_start,
    resection_start,
    tables,
)
from cds_service.summary.recurrence import (
    first_recurred,
    in_remission,
    local_recurrence,
    notes_on,
    relapsed,
    spread_elsewhere,
    undated_relapse,
)
from cds_service.summary.reports import chest_scans, report_death, reported_metastases
from cds_service.summary.site import figo_site, site_of
from cds_service.summary.stage import recorded_stage, stage_of
from cds_service.summary.therapy import (
    drugs_named_in_notes,
    ended_by,
    first_treatment,
    read_uses,
    refusal_of,
    response_without_drugs,
    therapy_of,
)
from cds_service.summary.tnm import read_tnm, usable

__all__ = ["load_tables", "summarise"]


def load_tables() -> None:
    """Read and check every code table once, at start-up: a bad table stops the service with one
    line naming the file, the key and what was expected (``TableError``), never a hook call's 500."""
    loaders: dict[str, Callable[[], object]] = {
        "codes.yaml": codes,
        "drugs.yaml": drugs,
        "procedures.yaml": tables,
        "phrases.yaml": phrase_table,
    }
    for file, load in loaders.items():
        try:
            load()
        except ValidationError as error:
            raise table_error(file, error) from None
        except yaml.YAMLError as error:
            raise TableError(f"{file}: not valid YAML ({error.__class__.__name__})") from None


@dataclass(frozen=True)
class Primary:
    """The index primary's facts, and when advanced disease began (for therapy settings)."""

    facts: FactValues = field(default_factory=dict)
    advanced_from: date | None = None  # first distant metastasis or local recurrence
    metastatic: bool = False
    distant_from: date | None = None  # first distant metastasis
    new_disease: tuple[Progression, ...] = ()  # each metastasis and local recurrence, as progression

    def fact(self, key: str) -> Fact[Any] | None:
        return self.facts.get(key)


def summarise(
    resources: Iterable[Mapping[str, Any]],
    *,
    today: date,
    synchronous_months: float = 3.0,
    unavailable: Mapping[str, str] | None = None,
) -> PatientSummary:
    """Summarise a patient's FHIR R4 resources (any order, duplicates allowed); never raises on bad data.

    ``today`` bounds the record (future-dated entries are set aside); ``synchronous_months`` is the
    synchronous/metachronous threshold (default 3 months); ``unavailable`` names the resource types
    the EHR could not provide, with why: the facts they feed are marked as resting on partial data.
    """
    ctx = Context(today, synchronous_months)
    chart = read_chart(resources, ctx)
    note_unavailable(ctx, unavailable or {})
    readings = by_kind(chart.observations, ctx)
    conditions = read_conditions(chart.conditions, ctx)
    diagnosed = diagnose(conditions, readings["histology"], ctx)
    conditions = spread_elsewhere(diagnosed.index, conditions, ctx)
    evidence = evidence_of(chart, conditions, diagnosed, readings["size"], ctx)
    indications = indications_of(diagnosed.index, diagnosed.diagnosis.value, conditions, chart.conditions)
    statuses = readings["disease_status"].where(lambda r: not indications.elsewhere(r.focus))
    course = course_of(statuses, chart.reports, evidence.said, beside=_another_active_cancer(diagnosed), ctx=ctx)
    status = course.status
    ecog = ecog_of(readings["ecog"], readings["karnofsky"], evidence.notes, ctx)
    uses = read_uses(chart.medication_uses, chart.medications, ctx, indications)
    irradiated_from = radiotherapy_start(chart.procedures, indications, ctx)
    treated_from = min((d for d in (first_treatment(uses, ctx.today), irradiated_from) if d), default=None)
    found = [
        *_metastases_found(chart.reports, evidence.said, ctx.today),
        *metastatic_complications(chart.conditions, ctx.today),
    ]
    primary = _primary_facts(
        diagnosed,
        conditions,
        readings,
        course,
        treated_from,
        chart.procedures,
        chart.reports,
        found,
        ctx,
        resection_start(chart.procedures, indications, ctx),
        chart.structures,
    )
    local = local_treatment_of(
        chart.procedures,
        readings["margin"],
        indications,
        recurrence=primary.fact("local_recurrence"),
        available="Procedure" not in (unavailable or {}),
        ctx=ctx,
    )
    unresectable = unresectable_primary(evidence, spread=primary.advanced_from, operated=local.last_resection)
    therapy = therapy_of(
        uses,
        advanced_from=primary.advanced_from,
        distant_from=primary.distant_from,
        unresectable_from=unresectable.when if unresectable else None,
        metastatic=primary.metastatic,
        ctx=ctx,
        progressions=[*course.progressions, *primary.new_disease],
        procedures=chemotherapy_procedures(chart.procedures, indications),
    )
    cured = curative_end([*local.curative_ends, therapy.perioperative_end], before=primary.advanced_from)
    undated_relapse(conditions, indications.own, [t.start for t in therapy.therapies if t.line and t.start], ctx)
    response_without_drugs(status, therapy.therapies, primary.metastatic, ctx)
    drugs_named_in_notes(evidence.notes, therapy.therapies, ctx)
    progression = progression_of(
        status,
        therapy.therapies,
        primary.new_disease,
        course.progressions,
        partial(grown_since, evidence.series, irradiated=_irradiated(diagnosed, irradiated_from)),
    )
    noted = progression_noted(course.noted, status, therapy.therapies, primary.new_disease, progression)
    status = unconfirmed(noted, status, ctx) or status
    disease = Disease(
        diagnosed,
        t=primary.fact("t"),
        m=primary.fact("m"),
        extent=primary.fact("extent"),
        local_recurrence=primary.fact("local_recurrence"),
        in_remission=primary.fact("in_remission"),
        status=status,
        progression=progression,
        resected=local.facts.get("primary_resected"),
        new_disease=tuple(p.when for p in primary.new_disease),
    )
    judged = judge(evidence, disease, ctx)
    judged["treatment_wish"] = _latest(judged.get("treatment_wish"), refusal_of(uses))
    note_unreadable_records(ctx)
    facts: FactValues = {
        **primary.facts,
        **ended_by(progression, therapy.facts),
        **local.facts,
        **judged,
        "primary_unresectable": unresectable,
        "nodes_after_resection": _nodes_after(primary.fact("n"), local.last_resection),
        "other_primaries": diagnosed.other_primaries,
        "primary_tumours": diagnosed.tumours,
        "disease_free_interval_months": disease_free_interval(primary.fact("disease_free_interval_months"), cured),
        "disease_status": status,
        "progression": progression,
        "progression_noted": noted,
        "progression_disputed": progression_disputed(course.disputed, status, therapy.therapies),
        "ecog": ecog,
        "performance_status_recent": recency_of(ecog, ctx),
        "age": (age := age_of(chart.person, chart.patient, ctx)),
        "age_oldest": oldest_age_of(chart.person, age, ctx),
        "deceased": (
            deceased := deceased_of(chart.person, chart.patient, readings["death"])
            or report_death(chart.reports, ctx.today)
        ),
        "death_noted": death_noted_of(
            deceased,
            evidence.said,
            deaths_in_status_reasons(chart.medication_uses),
            deaths_in_conditions(
                chart.conditions,
                ctx.today,
                _last_dose(uses),
            ),
        ),
        "metastasis_noted": max(found, key=lambda f: (f.when or date.min, f.sources), default=None),
        "pregnant": pregnant_of(
            chart.conditions, readings["pregnancy_status"], chart.person, ctx, readings["pregnancy_dating"]
        ),
    }
    diagnosis = _readable(diagnosed.diagnosis, ctx)  # may add a finding: before the findings are sorted
    return PatientSummary(
        patient=chart.patient, diagnosis=diagnosis, therapies=therapy.therapies, findings=ctx.sorted_findings(), **facts
    )


def _irradiated(diagnosed: Diagnosed, since: date | None) -> tuple[str, date] | None:
    """The primary and the day radiotherapy to it began, if it did."""
    return (diagnosed.index.ref, since) if diagnosed.index is not None and since is not None else None


def _nodes_after(n: Fact[str] | None, resected: date | None) -> Fact[bool] | None:
    """Regional nodes found after the primary was resected (a nodal relapse), from the N1's date."""
    if n is None or n.value != "N1" or n.when is None or resected is None:
        return None
    basis = f"regional nodes recorded on {n.when.isoformat()}, after the resection of {resected.isoformat()}"
    return Fact(n.when > resected, n.sources, basis, n.when)


def _last_dose(uses: Sequence[Use]) -> date | None:
    """The latest day a drug was given (a record of a course's end, else of its start)."""
    return max((day for u in uses if u.given and (day := u.end or u.start) is not None), default=None)


def _latest(*facts: Fact[Any] | None) -> Fact[Any] | None:
    """The latest dated of the facts (the first given when undated or of one date)."""
    present = [f for f in facts if f is not None]
    return max(present, key=lambda f: f.when or date.min, default=None)


def _primary_facts(
    diagnosed: Diagnosed,
    conditions: list[CancerCondition],
    readings: ByKind,
    course: Course,
    treated_from: date | None,
    procedures: Sequence[Entry[Any]],
    reports: Sequence[Entry[Any]],
    found: Sequence[Fact[bool]],
    ctx: Context,
    resected_from: date | None = None,
    structures: Mapping[str, Any] | None = None,
) -> Primary:
    """Site, TNM, stage, extent and course of the index primary (the one the summary describes)."""
    index = diagnosed.index
    if index is None:
        return Primary()
    diagnosis = diagnosed.diagnosis.value
    foreign = frozenset(p.ref for p in diagnosed.primaries if p.ref != index.ref)
    secondaries = [c for c in conditions if c.role is Role.SECONDARY]
    site = site_of(index, ctx) if diagnosis is Diagnosis.STS else None
    organ = body_site_organ(index.condition)
    tnm = read_tnm(
        readings, index.ref, foreign, ctx, treated_from=treated_from, primary_organ=organ, structures=structures
    )
    recorded, implied_m0 = recorded_stage(index, list(usable(readings["stage"], index.ref, foreign)), ctx)
    recurrence = local_recurrence(index, conditions, notes_on(index, procedures), ctx)
    unstaged = _unstaged(diagnosed.histology)
    spreading = spread(
        secondaries,
        n=tnm.n,
        m=tnm.m,
        implied_m0=implied_m0,
        scan=staging_scan(
            usable(readings["staging_imaging"], index.ref, foreign),
            chest_scans(reports, ctx.today),
            since=days_before(index.onset, codes()["staging_scan_before_onset_days"]),
        ),
        relapses=_relapses(index, recurrence, course, found),
        no_disease=_no_disease(usable(readings["disease_status"], index.ref, foreign), index.ref),
        primary=index,
        site=site.value if site else None,
        foreign=foreign | diagnosed.earlier_others,
        ctx=ctx,
        staged=not unstaged,
        treated=min(filter(None, (treated_from, resected_from)), default=None),
    )
    staged = stage_of(
        tnm,
        diagnosis=diagnosis,
        primary=index,
        site=site,
        n=spreading.n,
        m=spreading.m,
        first_metastasis=spreading.first_metastasis,
        recorded=recorded,
        ajcc_staged=not unstaged,
        ctx=ctx,
        treated_from=treated_from,
    )
    local = recurrence is not None and recurrence.value
    starts = [d for d in (spreading.first_metastasis, first_recurred(recurrence, conditions)) if d]
    metastatic = (spreading.m is not None and spreading.m.value == "M1") or bool(local)
    facts: FactValues = {
        "histology": diagnosed.histology,
        "histology_detail": diagnosed.detail,
        "histology_unnamed": diagnosed.unnamed,
        "site": site,
        "site_figo": figo_site(index, site),
        "t": staged.t,
        "n": spreading.n,
        "m": spreading.m,
        "grade": tnm.grade,
        "tumour_size_cm": tnm.size_cm,
        "stage": staged.stage,
        "stage_recorded": staged.recorded,
        "stage_computed": staged.computed,
        "extent": spreading.extent,
        "metastatic_organs": spreading.organs,
        "metastases_resolved": spreading.resolved,
        "metastasis_timing": spreading.timing,
        "disease_free_interval_months": spreading.disease_free_interval_months,
        "local_recurrence": recurrence,
        "in_remission": in_remission(index),
    }
    events = list(spreading.metastases)
    if local and recurrence is not None and recurrence.when is not None:
        events += [(recurrence.when, ref) for ref in recurrence.sources]
    first = spreading.first_metastasis
    return Primary(facts, min(starts, default=None), metastatic, first, tuple(new_disease(events)))


def _another_active_cancer(diagnosed: Diagnosed) -> bool:
    index = diagnosed.index
    return index is not None and any(p.active and p.ref != index.ref for p in diagnosed.primaries)


def _unstaged(histology: Fact[Histology] | None) -> bool:
    """A histology neither staged by imaging nor given an AJCC 8 stage in practice (``codes.yaml``
    ``m0_unless_recorded``)."""
    return histology is not None and histology.value.value in codes()["m0_unless_recorded"]


def _no_disease(statuses: Readings, index_ref: str) -> Fact[str] | None:
    """The latest disease status of this sarcoma (about no Condition, or about it), when it records no
    evidence of disease."""
    latest = next(iter(statuses.where(lambda r: not r.focus or index_ref in r.focus)), None)
    if latest is None or not no_evidence_of_disease(latest.observation.valueCodeableConcept):
        return None
    return Fact("NED", (latest.ref,), f"no evidence of disease recorded on {latest.when}", latest.when)


def _metastases_found(reports: Sequence[Entry[Any]], said: Sequence[Said], today: date) -> list[Fact[bool]]:
    """Metastatic disease a report's coded conclusion names, or a report or note finds in words."""
    noted = [
        Fact(True, (s.note.ref,), s.basis, s.note.when)
        for s in said
        if s.judgement == "metastasis_noted" and s.value == "true"
    ]
    return [*reported_metastases(reports, today), *noted]


def _relapses(
    index: CancerCondition, recurrence: Fact[bool] | None, course: Course, reported: Sequence[Fact[bool]]
) -> list[Relapse]:
    """Events after which an earlier M0 needs restaging: recurrence, relapse, worsening disease, a
    metastasis a report's coded conclusion names, and progression a later note speaks of (reason
    enough to ask for restaging, not to conclude M1)."""
    status = course.status
    events = []
    if recurrence is not None and recurrence.value:
        events.append(Relapse("local recurrence", recurrence.when, recurrence.sources))
    if relapsed(index) and not events:  # undated: the same relapse as a dated recurrence, if any
        events.append(Relapse("relapse recorded on the primary", None, (index.ref,)))
    if status is not None and status.value is DiseaseStatus.WORSENED:
        events.append(Relapse("worsening disease status", status.when, status.sources))
    if course.noted is not None:
        events.append(Relapse("progression a note speaks of", course.noted.when, course.noted.sources))
    events += [Relapse("metastasis named in a report", r.when, r.sources) for r in reported]
    return events


def _readable(diagnosis: Fact[Diagnosis], ctx: Context) -> Fact[Diagnosis]:
    """No primary found, but Conditions could not all be read or obtained: the diagnosis may be in
    them, so it is "unreadable" rather than "none" and the data-quality card speaks (G7)."""
    if diagnosis.value is not Diagnosis.NONE:
        return diagnosis
    gaps = [f for f in ctx.findings if f.kind is FindingKind.INCOMPLETE and f.about == "diagnosis"]
    if not gaps:
        return diagnosis
    refs = tuple(sorted({ref for f in gaps for ref in f.sources}))
    ctx.add(
        Finding(
            FindingKind.INVALID,
            "diagnosis",
            "no readable cancer diagnosis; the patient's conditions could not all be read or obtained",
            refs,
        )
    )
    return Fact(
        Diagnosis.UNREADABLE,
        refs,
        "no readable primary cancer condition; conditions on record could not all be read or obtained",
    )
