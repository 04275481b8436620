"""FHIR resources -> ``PatientSummary``: what an oncologist would know, with provenance.

``summarise`` is the only entry point. Each concern lives in its own module (``parse``,
``conditions``, ``diagnosis``, ``site``, ``tnm``, ``stage``, ``extent``, ``recurrence``,
``performance``, ``therapy``, ``disease_status``); codes live in ``codes.yaml`` and ``drugs.yaml``,
the AJCC 8 tables in ``cds_service/staging/ajcc8.yaml``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from cds_service.summary.completeness import unreadable_records
from cds_service.summary.conditions import Role, read_conditions
from cds_service.summary.diagnosis import diagnose
from cds_service.summary.disease_status import disease_status_of, progression_of
from cds_service.summary.extent import spread
from cds_service.summary.model import Diagnosis, Fact, Finding, FindingKind, PatientSummary
from cds_service.summary.observations import by_kind
from cds_service.summary.parse import read_chart
from cds_service.summary.performance import ecog_of
from cds_service.summary.recurrence import in_remission, local_recurrence
from cds_service.summary.site import site_of
from cds_service.summary.stage import stage_of
from cds_service.summary.therapy import read_uses, therapy_of
from cds_service.summary.tnm import read_tnm, usable

__all__ = ["summarise"]


def _sorted(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(set(findings), key=lambda f: (f.kind.value, f.about, f.message, f.sources)))


def _unreadable(diagnosis: Fact[Diagnosis], findings: list[Finding]) -> Fact[Diagnosis]:
    """No primary found, but a Condition failed validation: the diagnosis may be in it (G7)."""
    if diagnosis.value is not Diagnosis.NONE:
        return diagnosis
    refs = tuple(sorted({ref for f in findings if f.kind is FindingKind.INVALID
                         for ref in f.sources if ref.startswith("Condition/")}))
    if not refs:
        return diagnosis
    findings.append(Finding(FindingKind.INVALID, "diagnosis",
                            "no readable cancer diagnosis; a Condition on record could not be read", refs))
    return Fact(Diagnosis.UNREADABLE, refs, "no readable primary cancer Condition; unreadable Condition(s) on record")


def summarise(resources: Iterable[Mapping[str, Any]], *, today: date,
              synchronous_months: float = 3.0) -> PatientSummary:
    """Summarise a patient's FHIR R4 resources (any order, duplicates allowed); never raises on bad data.

    ``today`` bounds the record (future-dated entries are set aside); ``synchronous_months`` is the
    synchronous/metachronous threshold (clinical.md 5.5, default 3 months).
    """
    chart = read_chart(resources)
    findings = list(chart.findings)
    readings = by_kind(chart.observations, today, findings)
    conditions = read_conditions(chart.conditions, today, findings)
    diagnosed = diagnose(conditions, readings["histology"], findings)
    ecog = ecog_of(readings["ecog"], readings["karnofsky"], findings)
    status = disease_status_of(readings["disease_status"], findings)
    uses = read_uses(chart.medication_uses, chart.medications, today, findings)
    index = diagnosed.index
    if index is None:
        therapy = therapy_of(uses, None, False, findings)
        return PatientSummary(
            patient=chart.patient, diagnosis=_unreadable(diagnosed.diagnosis, findings), ecog=ecog,
            disease_status=status,
            therapies=therapy.therapies, lines_of_therapy=therapy.lines, prior_drugs=therapy.prior_drugs,
            prior_anthracycline=therapy.prior_anthracycline,
            progression=progression_of(status, therapy.therapies), findings=_sorted(findings + unreadable_records(findings)))
    diagnosis = diagnosed.diagnosis.value
    foreign = frozenset(p.ref for p in diagnosed.primaries if p.ref != index.ref)
    site = site_of(index, findings) if diagnosis is Diagnosis.STS else None
    tnm = read_tnm(readings, index.ref, foreign, findings)
    secondaries = [c for c in conditions if c.role is Role.SECONDARY]
    spreading = spread(tnm.n, tnm.m, secondaries, index, synchronous_months, findings, foreign,
                       site.value if site else None)
    staged = stage_of(diagnosis, index, site, tnm, spreading.n, spreading.m, spreading.first_metastasis,
                      list(usable(readings["stage"], index.ref, foreign)), findings)
    recurrence = local_recurrence(index, conditions)
    starts = [d for d in (spreading.first_metastasis, recurrence.when if recurrence.value else None) if d]
    metastatic = (spreading.m is not None and spreading.m.value == "M1") or recurrence.value
    therapy = therapy_of(uses, min(starts, default=None), metastatic, findings)
    return PatientSummary(
        patient=chart.patient,
        diagnosis=diagnosed.diagnosis,
        histology=diagnosed.histology,
        histology_detail=diagnosed.detail,
        site=site,
        t=staged.t,
        n=spreading.n,
        m=spreading.m,
        grade=tnm.grade,
        tumour_size_cm=tnm.size_cm,
        stage=staged.stage,
        stage_recorded=staged.recorded,
        stage_computed=staged.computed,
        extent=spreading.extent,
        metastatic_organs=spreading.organs,
        metastasis_timing=spreading.timing,
        disease_free_interval_months=spreading.disease_free_interval_months,
        local_recurrence=recurrence,
        in_remission=in_remission(index),
        disease_status=status,
        ecog=ecog,
        therapies=therapy.therapies,
        lines_of_therapy=therapy.lines,
        prior_drugs=therapy.prior_drugs,
        prior_anthracycline=therapy.prior_anthracycline,
        progression=progression_of(status, therapy.therapies),
        findings=_sorted(findings + unreadable_records(findings)),
    )
