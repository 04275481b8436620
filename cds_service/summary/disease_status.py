"""Disease status (mCODE CancerDiseaseStatus, LOINC 97509-4 / legacy 88040-1) and progression.

A clinician's note or a report's words that speak of progression (``phrases.yaml`` ``disease_status``),
later than the coded status, only put the status in doubt for the clinician to confirm (G7); free
text is too easily about something else (another disease, a plan, a fear, an old line) to open or
close later-line options by itself.

Progression (S38) = the latest disease status is "worsened" and dates from on or after the start of
the latest advanced line, a drug of that line stopped for "no response to treatment" (266721009), or
new disease (metastasis, local recurrence) recorded well after that line began (``lines.new_disease``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from cds_service.summary.codes import codes, match_text
from cds_service.summary.concepts import has_code, lookup, text_of
from cds_service.summary.context import Context
from cds_service.summary.drugs import drugs
from cds_service.summary.lines import Progression, progressions_of
from cds_service.summary.model import DiseaseStatus, Fact, Finding, FindingKind, TherapyExposure
from cds_service.summary.notes import Said
from cds_service.summary.observations import Readings
from cds_service.summary.parse import Entry
from cds_service.summary.reports import report_statuses

_NOTED = "disease_status"


@dataclass(frozen=True)
class Course:
    """The coded disease status, every coded progression (for grouping courses into lines), and the
    progression a later note speaks of (``noted``), which only asks for the status to be confirmed."""

    status: Fact[DiseaseStatus] | None
    progressions: tuple[Progression, ...]
    noted: Fact[DiseaseStatus] | None = None
    # a later note that says stable or responding where the coded status says worsened
    disputed: Fact[DiseaseStatus] | None = None


def course_of(
    readings: Readings, reports: Sequence[Entry[DiagnosticReport]], said: Sequence[Said], *, beside: bool, ctx: Context
) -> Course:
    """Coded statuses and reports' coded conclusions; what notes say of progression is kept apart.
    ``beside`` another active cancer, reports and notes on no record of the sarcoma may be about that
    one: not read."""
    said = [s for s in said if not (beside and s.note.general)]
    reported = [] if beside else report_statuses(reports, ctx.today)
    worse = [Progression(s.when, s.sources) for s in reported if s.value is DiseaseStatus.WORSENED and s.when]
    status = disease_status_of(readings, reported, ctx)
    noted = _noted(said)
    later = (
        noted is not None and noted.when is not None and (status is None or not status.when or noted.when > status.when)
    )
    progressions = (*progressions_of(readings), *worse)
    if noted is None or not later:
        return Course(status, progressions)
    if noted.value is DiseaseStatus.WORSENED:
        return Course(status, progressions, noted=noted)
    coded_worse = status is not None and status.value is DiseaseStatus.WORSENED
    return Course(status, progressions, disputed=noted if coded_worse else None)


def disease_status_of(
    readings: Readings, reported: Sequence[Fact[DiseaseStatus]], ctx: Context
) -> Fact[DiseaseStatus] | None:
    """The latest coded status: an Observation, or a report's coded conclusion (the Observation on
    the same date)."""
    recorded = [fact for fact in (_coded(readings, ctx), *reported) if fact is not None]
    return max(recorded, key=lambda fact: fact.when or date.min) if recorded else None


def progression_noted(
    noted: Fact[DiseaseStatus] | None,
    status: Fact[DiseaseStatus] | None,
    therapies: Sequence[TherapyExposure],
    new: Sequence[Progression] = (),
    shown: Fact[bool] | None = None,
) -> Fact[bool] | None:
    """Progression a note speaks of, later than the coded status and (as new disease) 42 days after the
    latest line began, the coded record not showing it: neither as a worsened status, nor as new disease
    (``new``: metastases, local recurrences), nor as a line stopped for progression (``shown``), recorded
    shortly before the note or since. Free text never
    opens later-line options by itself; it puts the status in doubt (``unconfirmed``) and "limited"
    disease with it."""
    _, line_start = _latest_line(therapies)
    margin = timedelta(days=drugs().new_disease_margin_days)
    if noted is None or noted.when is None or (line_start is not None and noted.when < line_start + margin):
        return None
    if status is not None and status.value is DiseaseStatus.WORSENED:
        return None
    coded_from = noted.when - timedelta(days=drugs().coded_new_disease_days)
    if any(p.when >= coded_from for p in new):
        return None
    if shown is not None and shown.value and shown.when is not None and shown.when >= coded_from:
        return None
    return Fact(True, noted.sources, noted.basis, noted.when)


def progression_disputed(
    disputed: Fact[DiseaseStatus] | None, status: Fact[DiseaseStatus] | None, therapies: Sequence[TherapyExposure]
) -> Fact[bool] | None:
    """A later note saying stable or responding where the coded status says worsened, no line begun since
    the worsening (a note on a new line speaks of that line). The coded progression stands; the plan card
    names the note for the clinician to confirm."""
    _, line_start = _latest_line(therapies)
    if disputed is None or status is None or status.when is None:
        return None
    if line_start is not None and line_start > status.when:
        return None
    return Fact(True, disputed.sources, disputed.basis, disputed.when)


def unconfirmed(
    noted: Fact[bool] | None, status: Fact[DiseaseStatus] | None, ctx: Context
) -> Fact[DiseaseStatus] | None:
    """The status in doubt for the clinician to confirm (G7), where a note speaks of progression."""
    if noted is None:
        return None
    why = f"progression is written ({noted.basis}) but the coded record does not show it: confirm the disease status"
    for about in ("disease_status", "progression"):
        ctx.add(Finding(FindingKind.AMBIGUOUS, about, why, noted.sources))
    return status or Fact(DiseaseStatus.UNDETERMINED, noted.sources, noted.basis, noted.when)


def _noted(said: Sequence[Said]) -> Fact[DiseaseStatus] | None:
    """The status the latest dated notes on the disease speak of, all of them agreeing."""
    dated = [s for s in said if s.judgement == _NOTED and s.note.when is not None]
    if not dated:
        return None
    latest = max(s.note.when for s in dated if s.note.when is not None)
    last = sorted((s for s in dated if s.note.when == latest), key=lambda s: s.note.ref)
    if len({s.value for s in last}) != 1:
        return None
    return Fact(DiseaseStatus(last[0].value), tuple(sorted({s.note.ref for s in last})), last[0].basis, latest)


def no_evidence_of_disease(value: Any) -> bool:
    """A disease status of no evidence of disease, coded or in words ("NED")."""
    table = codes()["no_evidence_of_disease"]
    return has_code(value, table) or match_text(text_of(value), table["text"]) is not None


def _coded(readings: Readings, ctx: Context) -> Fact[DiseaseStatus] | None:
    for reading in readings:
        value = reading.observation.valueCodeableConcept
        hit = lookup(value, codes()["disease_status_values"])
        if hit is not None:
            return Fact(DiseaseStatus(hit[0]), (reading.ref,), "latest cancer disease status", reading.when)
        if no_evidence_of_disease(value):
            continue  # no change of the disease (extent.py weighs it against the metastases)
        ctx.add(Finding(FindingKind.INVALID, "disease_status", "unrecognised disease status; ignored", (reading.ref,)))
    return None


def _latest_line(therapies: Sequence[TherapyExposure]) -> tuple[int | None, date | None]:
    lines = [t.line for t in therapies if t.line is not None]
    if not lines:
        return None, None
    line = max(lines)
    return line, min((t.start for t in therapies if t.line == line and t.start is not None), default=None)


def progression_of(
    status: Fact[DiseaseStatus] | None,
    therapies: Sequence[TherapyExposure],
    new: Sequence[Progression] = (),
    worsened: Sequence[Progression] = (),
    grown: Callable[[date], Sequence[Fact[bool]]] = lambda start: (),
) -> Fact[bool] | None:
    """True with its evidence; False when a status exists but shows no progression; else None.
    A worsening after the latest line began stands though a later status says stable (``worsened``):
    disease that stops growing after progressing has not responded to a line. So does a lesion
    measured larger since the line began (``grown``, RECIST-like, R2) with no later coded status."""
    line, line_start = _latest_line(therapies)
    no_response = set(codes()["no_response_reason"]["snomed"])
    stopped = [t for t in therapies if t.stop_reason in no_response and (line is None or t.line == line)]
    if stopped:
        sources = tuple(sorted({s for t in stopped for s in t.sources}))
        when = max(t.end or t.start or date.min for t in stopped)
        return Fact(True, sources, "stopped for progression or no response to treatment", when)
    arisen = [p for p in new if line_start is not None and p.after(line_start)]
    if arisen:
        first = min(p.when for p in arisen)
        sources = tuple(sorted({s for p in arisen for s in p.sources}))
        return Fact(True, sources, f"new disease recorded on {first}, after line {line} began on {line_start}", first)
    later = status.when if status is not None else None  # a coded status of a worsening's date wins
    measured = [g for g in grown(line_start) if g.when and (later is None or g.when > later)] if line_start else []
    if measured:
        grew = min(measured, key=lambda g: (g.when or date.min, g.sources))
        return Fact(True, grew.sources, f"{grew.basis}, after line {line} began on {line_start}", grew.when)
    worse = [p for p in worsened if line_start and p.after(line_start) and (later is None or p.when < later)]
    if worse and (status is None or status.value is not DiseaseStatus.WORSENED):
        first = min(p.when for p in worse)
        sources = tuple(sorted({s for p in worse for s in p.sources}))
        return Fact(
            True, sources, f"disease status worsened on {first}, after line {line} began on {line_start}", first
        )
    if status is None:
        return None
    current = line_start is None or (status.when is not None and status.when >= line_start)
    if status.value is DiseaseStatus.WORSENED and current:
        where = "" if line is None else f" on or after the start of line {line}"
        return Fact(True, status.sources, f"disease status worsened{where}", status.when)
    basis = (
        "worsening predates the latest line"
        if status.value is DiseaseStatus.WORSENED
        else f"latest disease status {status.value}"
    )
    return Fact(False, status.sources, basis, status.when)
