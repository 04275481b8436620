"""Imaging and pathology reports (DiagnosticReport): what their conclusion says of the disease.

A final report's ``conclusionCode`` with a cancer disease status value (improved, stable, worsened)
is a coded disease status of the report's date; the sentences of its ``conclusion`` that name the
tumour are read as a clinician's note ("Progressive disease (RECIST 1.1) ..."). Reports not yet
final, of another category (``codes.yaml`` ``report_categories``), or dated after today, are not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from cds_service.summary.codes import codes
from cds_service.summary.concepts import codes_of, has_code, lookup
from cds_service.summary.dates import first_date, period_end
from cds_service.summary.indication import coded_metastasis
from cds_service.summary.model import DiseaseStatus, Fact
from cds_service.summary.notes import Note, names_tumour, sentences
from cds_service.summary.parse import Entry


def _final(
    entries: Sequence[Entry[DiagnosticReport]], today: date
) -> Iterator[tuple[str, date | None, DiagnosticReport]]:
    """Final reports of the categories read, dated (if at all) on or before today. A report of no such
    category is not read even when sent, as the prefetch query would not have asked for it."""
    allowed = set(codes()["report_read_status"])
    categories = {str(c) for c in codes()["report_categories"]}
    for entry in entries:
        report = entry.resource
        when = first_date(report.effectiveDateTime, period_end(report.effectivePeriod), report.issued)
        read = {code for concept in report.category or () for _, code in codes_of(concept)} & categories
        if report.status in allowed and read and (when is None or when <= today):
            yield entry.ref, when, report


def report_notes(entries: Sequence[Entry[DiagnosticReport]], today: date) -> list[Note]:
    """Each final report's conclusion in words, dated by the report: only its sentences that name a
    tumour, a RECIST response or a margin, since a report also speaks of everything else it saw
    ("small vessel disease progression")."""
    found = []
    for ref, when, report in _final(entries, today):
        about = [s for s in sentences(report.conclusion or "") if _about_the_tumour(s)]
        if about:
            found.append(Note(ref, when, " ".join(about), general=True, kind="report"))
    return found


_OF_THE_TUMOUR = re.compile(r"\b(?:recist|margins?|r[012])\b")


def _about_the_tumour(sentence: str) -> bool:
    """Names the tumour, a RECIST response or a resection margin ("All margins negative (R0)")."""
    return names_tumour(sentence) or _OF_THE_TUMOUR.search(sentence.lower()) is not None


@dataclass(frozen=True)
class ChestScan:
    """A final report of a staging CT of the chest: whether its coded conclusion is negative."""

    ref: str
    when: date | None
    negative: bool


def chest_scans(entries: Sequence[Entry[DiagnosticReport]], today: date) -> list[ChestScan]:
    """Reports of a staging CT of the chest (``codes.yaml`` ``staging_imaging``), M0 evidence only when
    their conclusion is coded negative (R1): one written in words only settles nothing."""
    kinds, negative = codes()["observation_kinds"]["staging_imaging"], codes()["negative_imaging"]
    return [
        ChestScan(ref, when, any(has_code(c, negative) for c in report.conclusionCode or ()))
        for ref, when, report in _final(entries, today)
        if has_code(report.code, kinds)
    ]


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


def reported_metastases(entries: Sequence[Entry[DiagnosticReport]], today: date) -> list[Fact[bool]]:
    """Final reports whose conclusion is coded as a metastasis ("Secondary malignant neoplasm of lung"):
    disease found after any earlier M0, which then needs restaging (R1). Conclusions in words are read
    as notes (``report_notes``)."""
    return [
        Fact(True, (ref,), f"a metastasis in the coded conclusion of the report of {when}", when)
        for ref, when, report in _final(entries, today)
        if when is not None and any(coded_metastasis(c) for c in report.conclusionCode or ())
    ]


def report_death(entries: Sequence[Entry[DiagnosticReport]], today: date) -> Fact[bool] | None:
    """A final autopsy report records the patient's death."""
    table = codes()["autopsy_reports"]
    for ref, when, report in _final(entries, today):
        if has_code(report.code, table):
            return Fact(True, (ref,), "autopsy report", when)
    return None
