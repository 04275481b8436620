"""Imaging and pathology reports (DiagnosticReport): what their conclusion says of the disease.

A final report's ``conclusionCode`` with a cancer disease status value (improved, stable, worsened)
is a coded disease status of the report's date; the sentences of its ``conclusion`` that name the
tumour are read as a clinician's note ("Progressive disease (RECIST 1.1) ..."). Reports not yet
final, and those dated after today, are not read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date

from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from cds_service.summary.codes import codes
from cds_service.summary.concepts import lookup
from cds_service.summary.dates import first_date, period_end
from cds_service.summary.model import DiseaseStatus, Fact
from cds_service.summary.notes import Note, names_tumour, sentences
from cds_service.summary.parse import Entry


def _final(
    entries: Sequence[Entry[DiagnosticReport]], today: date
) -> Iterator[tuple[str, date | None, DiagnosticReport]]:
    allowed = set(codes()["report_read_status"])
    for entry in entries:
        report = entry.resource
        when = first_date(report.effectiveDateTime, period_end(report.effectivePeriod), report.issued)
        if report.status in allowed and (when is None or when <= today):
            yield entry.ref, when, report


def report_notes(entries: Sequence[Entry[DiagnosticReport]], today: date) -> list[Note]:
    """Each final report's conclusion in words, dated by the report: only its sentences that name a
    tumour or a RECIST response, since a report also speaks of everything else it saw ("small vessel
    disease progression")."""
    found = []
    for ref, when, report in _final(entries, today):
        about = [s for s in sentences(report.conclusion or "") if names_tumour(s) or "recist" in s.lower()]
        if about:
            found.append(Note(ref, when, " ".join(about), general=True))
    return found


def report_statuses(entries: Sequence[Entry[DiagnosticReport]], today: date) -> list[Fact[DiseaseStatus]]:
    """The disease status each dated final report's coded conclusion gives."""
    table = codes()["disease_status_values"]
    found = []
    for ref, when, report in _final(entries, today):
        for concept in report.conclusionCode or ():
            hit = lookup(concept, table)
            if hit is not None and when is not None:
                found.append(Fact(DiseaseStatus(hit[0]), (ref,), f"report conclusion on {when} (coded)", when))
                break
    return found
