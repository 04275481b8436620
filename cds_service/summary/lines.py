"""Lines of therapy for advanced disease (R4, G6, S38-S43).

One line = the anticancer drugs given together and continued with the usual delays. Courses of this
sarcoma's anticancer drugs in the advanced setting are taken in date order; a course starts a new
line when progression was recorded after the current line began, or when it brings a drug the line
does not hold and starts more than ``line_window_days`` after the line's start, unless it is added
to the line's drugs while they are still given, within ``course_gap_days`` of its start (a drug held
at cycle 1 and given from cycle 2). A delayed cycle of a drug of the line stays in the line.
Progression is a "worsened" cancer disease status, or a drug of the line stopped for no response
(metastasis Conditions are not used: staging results trickle in around the start of a line).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from cds_service.summary.codes import codes
from cds_service.summary.concepts import lookup
from cds_service.summary.drugs import drugs
from cds_service.summary.medications import ANTICANCER
from cds_service.summary.model import Fact, TherapyExposure
from cds_service.summary.observations import Readings
from cds_service.summary.pretreatment import PERIOPERATIVE

ADVANCED = "advanced"


@dataclass(frozen=True)
class Progression:
    """A recorded progression of the disease. New disease (a metastasis or local recurrence) counts
    against a line only ``margin_days`` after the line began: staging of the disease the line was
    started for comes in around its start."""

    when: date
    sources: tuple[str, ...]
    margin_days: int = 0

    def after(self, start: date) -> bool:
        return self.when > start + timedelta(days=self.margin_days)


def new_disease(events: Sequence[tuple[date, str]]) -> list[Progression]:
    """Metastases and local recurrences of this primary, as progressions of the line they arose on."""
    margin = drugs().new_disease_margin_days
    return [Progression(when, (ref,), margin) for when, ref in sorted(events)]


@dataclass(frozen=True)
class _Line:
    number: int
    start: date
    drugs: frozenset[str]
    until: date  # the last dose of its drugs so far


def progressions_of(status_readings: Readings) -> tuple[Progression, ...]:
    """Dated "worsened" cancer disease statuses (mCODE CancerDiseaseStatus)."""
    values = codes()["disease_status_values"]
    found = []
    for reading in status_readings:
        hit = lookup(reading.observation.valueCodeableConcept, values)
        if hit is not None and hit[0] == "worsened" and reading.when is not None:
            found.append(Progression(reading.when, (reading.ref,)))
    return tuple(sorted(found, key=lambda p: (p.when, p.sources)))


def in_lines(exposure: TherapyExposure) -> bool:
    """Whether a course counts toward the lines: this sarcoma's anticancer drug, advanced, dated."""
    return exposure.purpose == ANTICANCER and exposure.setting == ADVANCED and exposure.start is not None


def _starts_new_line(line: _Line | None, course: TherapyExposure, progressions: Sequence[Progression]) -> bool:
    assert course.start is not None
    if line is None or any(p.after(line.start) and p.when <= course.start for p in progressions):
        return True
    if course.ingredient in line.drugs or course.start <= line.start + timedelta(days=drugs().line_window_days):
        return False
    # added to drugs given on past its start, by the next cycles (held at cycle 1, given from cycle 2)
    added = course.start <= line.start + timedelta(days=drugs().course_gap_days) and line.until > course.start
    return not added


def number_lines(exposures: Sequence[TherapyExposure], progressions: Sequence[Progression]) -> list[TherapyExposure]:
    """The exposures, those that count toward the lines numbered (1-based), in date order."""
    numbered: list[TherapyExposure] = []
    line: _Line | None = None
    for course in sorted(exposures, key=lambda e: (e.start or date.max, e.ingredient, e.sources)):
        if not in_lines(course):
            numbered.append(replace(course, line=None))
            continue
        assert course.start is not None
        last = course.end or course.start
        if _starts_new_line(line, course, progressions):
            line = _Line(line.number + 1 if line else 1, course.start, frozenset({course.ingredient}), last)
        else:
            assert line is not None
            line = replace(line, drugs=line.drugs | {course.ingredient}, until=max(line.until, last))
        numbered.append(replace(course, line=line.number))
    return numbered


def _refs(exposures: Sequence[TherapyExposure]) -> tuple[str, ...]:
    return tuple(sorted({s for e in exposures for s in e.sources}))


def _stopped_for_no_response(members: Sequence[TherapyExposure]) -> list[Progression]:
    reasons = set(codes()["no_response_reason"]["snomed"])
    return [Progression(e.end or e.start or date.min, e.sources) for e in members if e.stop_reason in reasons]


def given_now(members: Sequence[TherapyExposure], today: date) -> bool:
    """A record of the line still active, or a dose recent enough for the next cycle to be due; not a
    drug whose order was stopped since (for toxicity, say)."""
    recent = today - timedelta(days=drugs().course_gap_days)
    return any(
        not e.stopped and (e.status in drugs().ongoing_status or (e.end or e.start or date.min) >= recent)
        for e in members
    )


def perioperative_in_progress(therapies: Sequence[TherapyExposure], today: date) -> Fact[frozenset[str]] | None:
    """The anticancer drugs of a perioperative course still being given (neoadjuvant before surgery, or
    adjuvant): the card names them, so that the plan reads as the next step of that course."""
    given = [t for t in therapies if t.setting == PERIOPERATIVE and t.purpose == ANTICANCER and t.start]
    course = [t for t in given if given_now([t], today)]
    if not course:
        return None
    start = min(t.start for t in course if t.start is not None)
    names = frozenset(t.ingredient for t in course)
    basis = f"perioperative {', '.join(sorted(names))} since {start.isoformat()}, still given"
    return Fact(names, _refs(course), basis, start)


def line_in_progress(
    therapies: Sequence[TherapyExposure], progressions: Sequence[Progression], today: date
) -> tuple[Fact[int] | None, Fact[bool]]:
    """(current line, ongoing): the latest line when it is still given and no progression has been
    recorded since it began (later-line statements wait for it, R4)."""
    lined = [t for t in therapies if t.line is not None]
    if not lined:
        return None, Fact(False, (), "no line of therapy for advanced disease")
    number = max(t.line for t in lined if t.line is not None)
    members = [t for t in lined if t.line == number]
    start = min(t.start for t in members if t.start is not None)
    names = ", ".join(sorted({t.ingredient for t in members}))
    sources = _refs(members)
    progressed = [p for p in progressions if p.after(start)] + _stopped_for_no_response(members)
    if progressed:
        refs = tuple(sorted(set(sources) | {s for p in progressed for s in p.sources}))
        first = min(p.when for p in progressed)
        return None, Fact(False, refs, f"progression recorded on line {number} ({names}) on {first.isoformat()}")
    if not given_now(members, today):
        last = max(t.end or t.start or start for t in members)
        return None, Fact(
            False, sources, f"line {number} ({names}) last given {last.isoformat()}; no progression recorded since"
        )
    basis = f"line {number} ({names}) since {start.isoformat()}, no progression recorded since"
    return Fact(number, sources, basis, start), Fact(True, sources, basis, start)
