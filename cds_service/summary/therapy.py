"""Systemic therapy: exposures per ingredient and course, their setting and line, and the facts
cards use (lines of therapy, prior drugs, anthracycline exposure; R4, S28-S43, G6).

Records of one drug within ``course_gap_days`` form one course. A course is "advanced" when it
starts on or after the first distant metastasis or local recurrence, else "perioperative". Only
anticancer drugs given for this sarcoma make lines (``lines``); supportive drugs, immunosuppressants
and drugs for another indication never do; a drug for another cancer is no line but still
anthracycline exposure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from fhir.resources.R4B.codeableconcept import CodeableConcept

from cds_service.summary.codes import codes, match_text
from cds_service.summary.context import Context
from cds_service.summary.dates import days_after, days_before
from cds_service.summary.drugs import DrugClass, drugs, ingredients
from cds_service.summary.lines import (
    ADVANCED,
    Progression,
    given_now,
    line_in_progress,
    number_lines,
    perioperative_in_progress,
)
from cds_service.summary.medications import ANTICANCER, OTHER_CANCER, Use, read_uses
from cds_service.summary.model import (
    DiseaseStatus,
    Fact,
    FactValues,
    Finding,
    FindingKind,
    TherapyExposure,
    TreatmentWish,
)
from cds_service.summary.notes import Note, sentences
from cds_service.summary.pretreatment import PERIOPERATIVE, anthracycline_pretreated

__all__ = ["Therapy", "first_treatment", "read_uses", "therapy_of"]


@dataclass(frozen=True)
class Therapy:
    """The exposures, the facts cards use, and when perioperative treatment ended."""

    therapies: tuple[TherapyExposure, ...]
    facts: FactValues
    perioperative_end: Fact[date] | None  # last perioperative anticancer dose


def _courses(uses: Sequence[Use]) -> list[list[Use]]:
    """Records of one ingredient and purpose merged while each starts within the gap after the course so far."""
    gap = timedelta(days=drugs().course_gap_days)
    courses: list[list[Use]] = []
    by_drug: dict[tuple[str, str], list[Use]] = {}
    for use in uses:
        by_drug.setdefault((use.ingredient, use.purpose), []).append(use)
    for key in sorted(by_drug):
        dated = sorted((u for u in by_drug[key] if u.start), key=lambda u: (u.start, u.ref))
        courses += [[u] for u in sorted((u for u in by_drug[key] if not u.start), key=lambda u: u.ref)]
        current: list[Use] = []
        last = date.min  # latest end (or start) of the course so far
        for use in dated:
            assert use.start is not None
            if not current or use.start - last > gap:
                current = []
                courses.append(current)
            current.append(use)
            last = max(last, use.end or use.start)
    return courses


def _setting(start: date | None, end: date | None, advanced: _Advanced, course: Sequence[Use]) -> str:
    """Advanced if given with palliative intent, if begun after the primary was judged unresectable
    (and it was not resected since) unless the record names it neoadjuvant or adjuvant, or if the
    course began, or went on for a cycle or more, after advanced disease was known (a palliative
    course before metastases treats advanced disease)."""
    advanced_from, metastatic = advanced.since, advanced.metastatic
    unresectable = advanced.unresectable_from
    if any(u.palliative for u in course):
        return ADVANCED
    if _around_surgery_of_a_recurrence(start, end, advanced, course):
        return PERIOPERATIVE
    if start is not None and unresectable is not None and start >= unresectable:
        if not any(u.perioperative for u in course):
            return ADVANCED
    if start is None:
        return ADVANCED if metastatic else PERIOPERATIVE
    if advanced_from is None:
        return PERIOPERATIVE
    went_on = end is not None and end >= advanced_from + timedelta(days=drugs().line_window_days)
    return ADVANCED if start >= advanced_from or went_on else PERIOPERATIVE


def _around_surgery_of_a_recurrence(
    start: date | None, end: date | None, advanced: _Advanced, course: Sequence[Use]
) -> bool:
    """Named adjuvant or neoadjuvant and given after a local recurrence but before any distant
    metastasis (and not for a line window past it): curative treatment of the recurrence, not a line."""
    distant = advanced.distant_from
    if start is None or advanced.since is None or start < advanced.since or not any(u.perioperative for u in course):
        return False
    return distant is None or (end or start) < days_after(distant, drugs().line_window_days)


@dataclass(frozen=True)
class _Advanced:
    """What makes a course one for advanced disease: the first metastasis or local recurrence
    (``since``), the first distant metastasis, whether the disease is metastatic, and a judgement
    that the primary is unresectable."""

    since: date | None
    metastatic: bool
    unresectable_from: date | None = None
    distant_from: date | None = None


def _exposure(course: list[Use], advanced: _Advanced) -> TherapyExposure:
    last = max(course, key=lambda u: (u.start or date.min, u.ref))
    reasons = [u for u in course if u.stop_reason]
    reason = max(reasons, key=lambda u: (u.start or date.min, u.ref)).stop_reason if reasons else None
    ends = [when for when in (u.end or u.start for u in course) if when]
    start, end = course[0].start, max(ends, default=None)
    return TherapyExposure(
        ingredient=last.ingredient,
        rxnorm=last.rxnorm,
        start=start,
        end=end,
        status=last.status,
        stop_reason=reason,
        setting=_setting(start, end, advanced, course),
        line=None,
        sources=tuple(sorted({u.ref for u in course})),
        purpose=last.purpose,
        held=_latest_order_status(course) == "on-hold",
        stopped=_latest_order_status(course) == "stopped",
    )


def _latest_order_status(course: Sequence[Use]) -> str | None:
    """The status of the course's latest order or statement: its current state (a dose given is
    always "completed", so administrations and dispenses say nothing of it)."""
    orders = [u for u in course if u.ref.startswith(("MedicationRequest/", "MedicationStatement/"))]
    return max(orders, key=lambda u: (u.start or date.min, u.ref)).status if orders else None


def _listed_again(undated: TherapyExposure, anticancer: Sequence[TherapyExposure]) -> bool:
    """An undated record of a drug still taken (a medication-list entry, "Votrient, patient-reported")
    beside dated records of the same drug that are still being given: the course already on record."""
    current = drugs().ongoing_status
    return undated.status in current and any(
        e.ingredient == undated.ingredient and e.start is not None and e.status in current for e in anticancer
    )


def _check_settings(
    exposures: Sequence[TherapyExposure], advanced_from: date | None, metastatic: bool, ctx: Context
) -> None:
    """A course whose setting cannot be told makes the line count incomplete (G6: an uncounted
    line must not read as "no prior therapy")."""
    anticancer = [e for e in exposures if e.purpose == ANTICANCER]
    undated = sorted(s for e in anticancer if e.start is None and not _listed_again(e, anticancer) for s in e.sources)
    if undated:
        ctx.add(
            Finding(
                FindingKind.INCOMPLETE,
                "lines_of_therapy",
                "medication without a date: its line of therapy is unknown",
                tuple(undated),
            )
        )
    if metastatic and advanced_from is None:
        dated = sorted(s for e in anticancer if e.start is not None for s in e.sources)
        if dated:
            ctx.add(
                Finding(
                    FindingKind.INCOMPLETE,
                    "lines_of_therapy",
                    "the date the disease spread or recurred is not recorded: whether the drugs were "
                    "perioperative or for advanced disease cannot be told",
                    tuple(dated),
                )
            )


def _refs(exposures: Iterable[TherapyExposure]) -> tuple[str, ...]:
    return tuple(sorted({s for e in exposures for s in e.sources}))


def _line_count(therapies: Sequence[TherapyExposure]) -> Fact[int]:
    lined = [e for e in therapies if e.line is not None]
    count = max((e.line for e in lined if e.line is not None), default=0)
    return Fact(
        count,
        _refs(lined),
        f"{count} line(s) of anticancer treatment for advanced disease (drugs given "
        f"together, or added within {drugs().line_window_days} days, form one line)",
    )


def _prior_drugs(therapies: Sequence[TherapyExposure]) -> Fact[frozenset[str]]:
    anticancer = [e for e in therapies if e.purpose == ANTICANCER]
    names = frozenset(e.ingredient for e in anticancer)
    return Fact(
        names,
        _refs(anticancer),
        "anticancer drugs given for this tumour (any setting)"
        if names
        else "no anticancer drug recorded for this tumour",
    )


def _prior_chemotherapy(therapies: Sequence[TherapyExposure]) -> Fact[bool]:
    """Cytotoxic chemotherapy given for this sarcoma, in any setting ("after chemotherapy": S42); a
    targeted drug or immunotherapy is not chemotherapy."""
    table = drugs().ingredients
    given = [
        e
        for e in therapies
        if e.purpose == ANTICANCER and e.ingredient in table and table[e.ingredient].drug_class is DrugClass.CYTOTOXIC
    ]
    return Fact(
        bool(given),
        _refs(given),
        "chemotherapy given for this tumour (any setting)" if given else "no chemotherapy recorded for this tumour",
    )


def _prior_anthracycline(therapies: Sequence[TherapyExposure]) -> Fact[bool]:
    """Any anthracycline, for any cancer and in any setting: cumulative-dose caution (S28, S29). The
    basis names each course, when it was given and for what, for the clinician to add up the dose."""
    given = sorted((e for e in therapies if e.ingredient in drugs().anthracyclines), key=lambda e: e.start or date.min)
    if not given:
        return Fact(False, (), "no anthracycline recorded")
    return Fact(True, _refs(given), "; ".join(_course_words(e) for e in given))


def _course_words(course: TherapyExposure) -> str:
    """ "doxorubicin 2019-03-01 to 2019-07-15, for another cancer"."""
    start, end = course.start, course.end or course.start
    when = "" if start is None else f" {start.isoformat()}" + (f" to {end.isoformat()}" if end and end != start else "")
    purpose = ", for another cancer" if course.purpose == OTHER_CANCER else ""
    return f"{course.ingredient}{when}{purpose}"


def _anthracycline_again(therapies: Sequence[TherapyExposure], today: date) -> Fact[bool]:
    """An anthracycline course being given now, with another anthracycline (for any cancer) given
    before it: each cycle adds to the lifetime dose (G10)."""
    given = [e for e in therapies if e.ingredient in drugs().anthracyclines and e.start]
    now = [e for e in given if given_now([e], today)]
    began = min((e.start for e in now if e.start), default=None)
    courses = {_treatment(e) for e in now}  # its own earlier cycles, split by a delay, are not "earlier"
    earlier = [
        e
        for e in given
        if began is not None and (e.end or e.start or date.max) < began and _treatment(e) not in courses
    ]
    if not earlier:
        return Fact(False, (), "no earlier anthracycline beside one given now")
    names = ", ".join(sorted({e.ingredient for e in now}))
    return Fact(True, _refs([*earlier, *now]), f"{names} given now, after an earlier anthracycline")


def _treatment(e: TherapyExposure) -> tuple[str, str, int | None]:
    """Which treatment a course belongs to: what it was given for, its setting and its line."""
    return (e.purpose, e.setting, e.line)


def _perioperative_end(therapies: Sequence[TherapyExposure]) -> Fact[date] | None:
    courses = [e for e in therapies if e.purpose == ANTICANCER and e.setting == PERIOPERATIVE and e.start]
    if not courses:
        return None
    last = max(when for when in (e.end or e.start for e in courses) if when)
    return Fact(last, _refs(courses), "perioperative anticancer drug", last)


def therapy_of(
    uses: Sequence[Use],
    *,
    advanced_from: date | None,
    metastatic: bool,
    ctx: Context,
    progressions: Sequence[Progression] = (),
    unresectable_from: date | None = None,
    distant_from: date | None = None,
    procedures: Sequence[tuple[str, date, date]] = (),
) -> Therapy:
    """Exposures with purpose, setting and line, and the facts cards use; uses planned to start after
    today are named (``planned_drugs``), never counted. ``procedures``: chemotherapy recorded as a
    Procedure (reference, start, end)."""
    given = [u for u in uses if u.given and not _planned(u, ctx.today)]
    _drugs_not_on_record(procedures, given, ctx)
    advanced = _Advanced(advanced_from, metastatic, unresectable_from, distant_from)
    exposures = [_exposure(c, advanced) for c in _courses(given)]
    _check_settings(exposures, advanced_from, metastatic, ctx)
    therapies = tuple(
        sorted(number_lines(exposures, progressions), key=lambda e: (e.start or date.min, e.ingredient, e.sources))
    )
    current, ongoing = line_in_progress(therapies, progressions, ctx.today)
    facts: FactValues = {
        "lines_of_therapy": _line_count(therapies),
        "prior_drugs": _prior_drugs(therapies),
        "prior_anthracycline": _prior_anthracycline(therapies),
        "prior_chemotherapy": _prior_chemotherapy(therapies),
        "anthracycline_pretreated": anthracycline_pretreated(therapies, advanced_from, metastatic, distant_from),
        "current_line": current,
        "line_ongoing": ongoing,
        "perioperative_in_progress": perioperative_in_progress(therapies, ctx.today),
        "anthracycline_again": _anthracycline_again(therapies, ctx.today),
        "planned_drugs": _planned_drugs(uses, ctx.today),
        "high_dose_drugs": _high_dose(given),
        "drugs_not_given": _not_given(uses),
    }
    return Therapy(therapies, facts, _perioperative_end(therapies))


def _drugs_not_on_record(procedures: Sequence[tuple[str, date, date]], given: Sequence[Use], ctx: Context) -> None:
    """Chemotherapy recorded only as a procedure (given elsewhere, say): with no anticancer drug of
    this sarcoma on record within ``course_gap_days`` of it (an order still active runs to today), the
    drugs and lines are unknown (R4, G6)."""
    conf = drugs()
    gap = conf.course_gap_days

    def runs(u: Use) -> tuple[date, date]:
        assert u.start is not None
        return u.start, ctx.today if u.status in conf.ongoing_status else (u.end or u.start)

    spans = [runs(u) for u in given if u.purpose == ANTICANCER and u.start]
    for ref, start, end in procedures:
        after, before = days_after(end, gap), days_before(start, gap) or date.min
        if not any(first <= after and last >= before for first, last in spans):
            why = "chemotherapy recorded as a procedure, its drugs not in the medication record: the lines are unknown."
            ctx.incomplete("MedicationAdministration", why, (ref,))


def response_without_drugs(
    status: Fact[DiseaseStatus] | None, therapies: Sequence[TherapyExposure], metastatic: bool, ctx: Context
) -> None:
    """Advanced disease recorded as responding while no anticancer drug for it is on record (a patient
    transferred with the treatment given elsewhere): the lines of therapy are not known (R4, G6)."""
    if not metastatic or status is None or status.value is not DiseaseStatus.IMPROVED:
        return
    if any(t.purpose == ANTICANCER for t in therapies):
        return
    why = "a response of the disease is recorded but no anticancer drug is: the treatment given is not on record."
    ctx.incomplete("MedicationAdministration", why, status.sources)


def drugs_named_in_notes(notes: Sequence[Note], therapies: Sequence[TherapyExposure], ctx: Context) -> None:
    """A note saying an anticancer drug was given ("4 cycles of doxorubicin given at Regional Hospital")
    that the medication record does not hold (given elsewhere): the lines of therapy are unknown (G6)."""
    on_record = {t.ingredient for t in therapies}
    for note in notes:
        for sentence in sentences(note.text):
            if match_text(sentence.lower(), drugs().given_in_notes) is None:
                continue
            named = {i.name for i in ingredients(CodeableConcept(text=sentence)) if i.drug_class.antineoplastic}
            if named - on_record:
                what = ", ".join(sorted(named - on_record))
                why = (
                    f"a note says {what} was given, but the medication record does not hold it: the lines are unknown."
                )
                ctx.incomplete("MedicationAdministration", why, (note.ref,))
                return


def _high_dose(given: Sequence[Use]) -> Fact[frozenset[str]]:
    """Anticancer drugs for this sarcoma the record names as given at high dose ("HD-IFO")."""
    high = [u for u in given if u.high_dose and u.purpose == ANTICANCER]
    names = frozenset(u.ingredient for u in high)
    return Fact(names, tuple(sorted({u.ref for u in high})), "named as given at high dose" if names else "none named")


def _planned(use: Use, today: date) -> bool:
    return use.start is not None and use.start > today


def _planned_drugs(uses: Sequence[Use], today: date) -> Fact[frozenset[str]] | None:
    """Anticancer drugs for this sarcoma ordered to start after today, from the earliest start."""
    planned = [u for u in uses if u.given and _planned(u, today) and u.purpose == ANTICANCER]
    if not planned:
        return None
    first = min(u.start for u in planned if u.start)
    refs = tuple(sorted({u.ref for u in planned}))
    return Fact(frozenset(u.ingredient for u in planned), refs, f"ordered to start on {first}", first)


def ended_by(progression: Fact[bool] | None, facts: FactValues) -> FactValues:
    """The therapy facts, with the current line no longer ongoing when progression on it is recorded
    by evidence read after the lines were drawn (a lesion measured larger since it began)."""
    current = facts.get("current_line")
    if progression is None or not progression.value or current is None or current.when is None:
        return facts
    if progression.when is None or progression.when <= current.when:
        return facts
    basis = f"progression recorded on line {current.value} on {progression.when.isoformat()}"
    ended = Fact(False, tuple(sorted({*current.sources, *progression.sources})), basis)
    return {**facts, "current_line": None, "line_ongoing": ended}


def refusal_of(uses: Sequence[Use]) -> Fact[TreatmentWish] | None:
    """The patient declining chemotherapy, from the latest anticancer order stopped for a coded refusal
    (``codes.yaml`` ``refusal_reason``), unless a dose was given after it began."""
    reasons = set(codes()["refusal_reason"]["snomed"])
    refused = [u for u in uses if u.purpose == ANTICANCER and u.stop_reason in reasons]
    if not refused:
        return None
    last = max(refused, key=lambda u: (u.start or date.min, u.ref))
    since = last.start or date.min
    if any(u.purpose == ANTICANCER and u.given and u.start is not None and u.start > since for u in uses):
        return None
    return Fact(TreatmentWish.NO_CHEMOTHERAPY, (last.ref,), "anticancer order refused by the patient", last.start)


def _not_given(uses: Sequence[Use]) -> Fact[frozenset[str]] | None:
    """Anticancer drugs for this sarcoma whose only record is an order stopped, or on hold, before a dose
    was given."""
    stopped = [u for u in uses if not u.given and u.purpose == ANTICANCER]
    if not stopped:
        return None
    first = min((u.start for u in stopped if u.start), default=None)
    refs = tuple(sorted({u.ref for u in stopped}))
    return Fact(frozenset(u.ingredient for u in stopped), refs, "ordered, no dose given", first)


def first_treatment(uses: Sequence[Use], today: date) -> date | None:
    """When anticancer drug treatment of this sarcoma began (sizes measured later cannot set T, R1)."""
    return min(
        (u.start for u in uses if u.given and u.start and u.purpose == ANTICANCER and u.start <= today), default=None
    )
