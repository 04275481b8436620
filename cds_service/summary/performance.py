"""Performance status as ECOG: the latest ECOG, a later Karnofsky score mapped by the rough
equivalence KPS 90-100 = 0, 70-80 = 1, 50-60 = 2, 30-40 = 3, 10-20 = 4, or a later score a clinician
wrote in a note; a range by its worse end; and whether it was recorded recently enough to judge
fitness for treatment (``performance_status_recent_days``, R3)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from functools import cache
from typing import Any

from cds_service.summary.codes import codes
from cds_service.summary.concepts import codes_of
from cds_service.summary.context import Context
from cds_service.summary.model import Fact, Finding, FindingKind
from cds_service.summary.notes import QUOTE_MAX, Note, quote
from cds_service.summary.observations import Reading, Readings

# A performance status that is not one score, later than the last one that is: (date, record, what was written)
Unscored = tuple[date, str, str]

# A score written as text: one number, at most with the scale's name ("3", "ECOG 3", "KPS 40%").
_SCALE = r"\s*(?:(?:ecog|who|zubrod|kps|karnofsky|performance|status|score|ps)[\s:=]*)*"
_SCORE_TEXT = re.compile(_SCALE + r"(\d{1,3})\s*%?\s*", re.I)
# Or a range: "3-4", "ECOG 2 to 3", "KPS 30-40%".
_RANGE_TEXT = re.compile(_SCALE + r"(\d{1,3})\s*%?\s*(?:-|\u2013|to|/)\s*(\d{1,3})\s*%?\s*", re.I)


# Or the score with the scale's words after it, as answer lists write it: "3 - Capable of only limited selfcare".
_DESCRIBED = re.compile(_SCALE + r"(\d{1,3})\s*%?\s*[-\u2013:]\s+[a-z].*", re.I | re.S)


def _score(observation: Any) -> int | None:
    """The score as a number: valueInteger, a whole valueQuantity, or text (valueString, or the text of
    a valueCodeableConcept) that is only the score or the score with its description."""
    if observation.valueInteger is not None:
        return int(observation.valueInteger)
    quantity = observation.valueQuantity
    if quantity is not None and quantity.value is not None and quantity.value == int(quantity.value):
        return int(quantity.value)
    concept = observation.valueCodeableConcept
    for text in (observation.valueString, concept.text if concept is not None else None):
        match = (_SCORE_TEXT.fullmatch(text) or _DESCRIBED.fullmatch(text)) if isinstance(text, str) else None
        if match:
            return int(match.group(1))
    return None


def _range(observation: Any) -> tuple[int, int] | None:
    """A score written as a range: a valueRange of whole numbers, or text such as "3-4"."""
    span = observation.valueRange
    if span is not None and span.low is not None and span.high is not None:
        low, high = span.low.value, span.high.value
        if low is not None and high is not None and low == int(low) and high == int(high):
            return int(low), int(high)
    text = observation.valueString
    match = _RANGE_TEXT.fullmatch(text) if isinstance(text, str) else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def _worse_end(better: int, worse: int) -> int | None:
    """An ECOG range read by its worse end, unless it straddles ECOG 3 (where active treatment is only
    exceptional): then the status is not known. A living patient is at most ECOG 4."""
    better, worse = min(better, worse), max(better, worse)
    if not 0 <= better <= worse <= 5 or better < 3 <= worse:
        return None
    return min(worse, 4) if better < 5 else 5


def _ecog_value(reading: Reading) -> int | None:
    observation = reading.observation
    score = _score(observation)
    if score is not None:
        return score if 0 <= score <= 5 else None
    span = _range(observation)
    if span is not None:
        return _worse_end(*span)
    answers = codes()["ecog_answers"]
    concepts = [observation.valueCodeableConcept, *(observation.interpretation or ())]
    for _, code in (c for concept in concepts for c in codes_of(concept)):
        if code in answers:
            return int(answers[code])
    return None


def _karnofsky_value(reading: Reading) -> int | None:
    """A Karnofsky score as ECOG; a range ("30-40%") by its worse end as ECOG ranges are."""
    score = _score(reading.observation)
    if score is not None:
        return karnofsky_to_ecog(score)
    span = _range(reading.observation)
    if span is None:
        return None
    ends = [karnofsky_to_ecog(end) for end in span]
    return (
        None
        if None in ends
        else _worse_end(min(e for e in ends if e is not None), max(e for e in ends if e is not None))
    )


def karnofsky_to_ecog(score: int) -> int | None:
    if not 0 <= score <= 100:
        return None
    return next(int(ecog) for floor, ecog in codes()["karnofsky_to_ecog"] if score >= int(floor))


def _latest(
    readings: Readings, value_of: Callable[[Reading], int | None], ctx: Context
) -> tuple[tuple[Reading, int] | None, Reading | None]:
    """The latest usable score, and the latest dated reading with no usable score above it, if any."""
    unusable: Reading | None = None
    for reading in readings:
        if reading.observation.dataAbsentReason is not None:
            continue  # no assessment ("asked, declined"): an earlier score still stands
        value = value_of(reading)
        if value is not None:
            return (reading, value), unusable
        ctx.add(Finding(FindingKind.INVALID, "ecog", "no usable score; ignored", (reading.ref,)))
        if unusable is None and reading.when is not None:
            unusable = reading
    return None, unusable


def _unscored(reading: Reading | None) -> Unscored | None:
    return None if reading is None or reading.when is None else (reading.when, reading.ref, _written(reading))


def _written(reading: Reading) -> str:
    observation = reading.observation
    text = observation.valueString
    if text is None and observation.valueCodeableConcept is not None:
        text = observation.valueCodeableConcept.text
    if not isinstance(text, str) or not text.strip():
        return "not a usable score"
    quoted = text.strip() if len(text.strip()) <= QUOTE_MAX else text.strip()[: QUOTE_MAX - 1] + "…"
    return f'written "{quoted}"'


def _superseded(fact: Fact[int] | None, unusable: Sequence[Unscored | None], ctx: Context) -> Fact[int] | None:
    """A later performance status that is not one score ("2-3") leaves the status unknown: an older
    score no longer describes the patient (R3), and the card quotes what was written."""
    later = [u for u in unusable if u and (fact is None or fact.when is None or u[0] > fact.when)]
    if not later:
        return fact
    when, ref, written = max(later)
    message = f"performance status not known: the latest, on {when.isoformat()}, is {written}"
    ctx.add(Finding(FindingKind.MISSING, "ecog", message, (ref,)))
    return None


def ecog_of(ecog: Readings, karnofsky: Readings, notes: Sequence[Note], ctx: Context) -> Fact[int] | None:
    """ECOG, from a Karnofsky score when that is more recent than any ECOG, or from the same day and
    worse (two scores of one day: the worse one counts); from a clinician's note when the latest
    performance status is written there, or the same day's and worse (a progress note, or a note on a
    disease status, a staging record or the tumour's Condition); unknown when a later one is not one score."""
    by_ecog, ecog_unusable = _latest(ecog, _ecog_value, ctx)
    by_kps, kps_unusable = _latest(karnofsky, _karnofsky_value, ctx)
    coded = _chosen(by_ecog, by_kps)
    noted, note_unusable = _in_notes(notes)
    if noted is not None and (coded is None or _note_replaces(noted, coded)):
        coded = noted
    return _superseded(coded, (_unscored(ecog_unusable), _unscored(kps_unusable), note_unusable), ctx)


def _note_replaces(noted: Fact[int], coded: Fact[int]) -> bool:
    """A note's score replaces a coded one when it is later, or of the same day and worse."""
    first, second = coded.when or date.min, noted.when or date.min
    return first < second or (first == second and noted.value > coded.value)


# A performance status a clinician wrote in a note: "ECOG 3", "WHO PS 2", "PS 1", "ECOG now 3", "ECOG of
# 2", "KPS 40%"; a change, "ECOG 1 -> 3" or "ECOG deteriorated from 1 to 3", by where it ended. Only
# notes that name a scale and give a number are read.
_NOTE_ECOG = re.compile(
    r"\b(?:ecog|who|zubrod|ps)(?:\s*(?:ps|performance\s+status|score))?"
    r"(?P<change>\s+(?:has\s+)?(?:deteriorated|worsened|improved|declined|dropped|fallen|changed)\s+from)?"
    r"(?:\s+(?:now|is|of|currently|today))*\s*[:=]?\s*(?P<score>\d)\b"
    r"(?:\s*(?P<sep>-|\u2013|to|/|or|->|\u2192)\s*(?P<other>\d)\b)?",
    re.I,
)
_CHANGED = ("->", "\u2192")
_NOTE_KPS = re.compile(r"\b(?:kps|karnofsky)(?:\s*(?:score|performance\s+status))?\s*[:=]?\s*(\d{1,3})\s*%?", re.I)


@cache
def _placed(when: str, words_between: int) -> re.Pattern[str]:
    """Words of ``codes.yaml`` ``performance_note_time`` just before a score (a few words between)."""
    words = "|".join(re.escape(w) for w in codes()["performance_note_time"][when])
    return re.compile(rf"\b(?:{words})\W+(?:\w+\W+){{0,{words_between}}}$", re.I)


def _note_scores(text: str) -> set[int | None]:
    """Each current ECOG a note gives (None for a range or a score that is no ECOG); scores placed in
    the past, or named as a rule ("reserved for ECOG 0-1"), are passed over, and a score said to be
    today's is the only one that counts."""
    before = [
        (m, lead)
        for m in _NOTE_ECOG.finditer(text)
        if not _placed("criterion", 2).search(lead := text[max(0, m.start() - 40) : m.start()])
    ]
    now = [m for m, lead in before if _placed("present", 1).search(lead)]
    found: set[int | None] = set()
    for match in now or [m for m, lead in before if not _placed("past", 2).search(lead)]:
        score, other = int(match["score"]), match["other"]
        if other is not None and (match["change"] or match["sep"] in _CHANGED):
            score, other = int(other), None  # a change: where it ended
        if other is None:
            found.add(score if score <= 5 else None)
        else:  # a range by its worse end, as a coded one; "2 or 3" is not known
            found.add(None if match["sep"] == "or" else _worse_end(score, int(other)))
    for match in _NOTE_KPS.finditer(text):
        found.add(karnofsky_to_ecog(int(match.group(1))))
    return found


def _noted(value: int, written: Sequence[str], when: date) -> str:
    """How a score written in a note is described: as written when it was a Karnofsky score only."""
    said = f"written in a clinician note on {when.isoformat()}"
    kps = {m.group(1) for text in written for m in _NOTE_KPS.finditer(text)}
    if len(kps) == 1 and not any(_NOTE_ECOG.search(text) for text in written):
        return f"Karnofsky {kps.pop()}% {said}, read as ECOG {value}"
    return f"ECOG {value} {said}"


def _in_notes(notes: Sequence[Note]) -> tuple[Fact[int] | None, Unscored | None]:
    """The latest dated record whose notes give a performance status: its ECOG when they give exactly
    one, else what was written as a later status that is not one score (R3: the latest counts)."""
    texts: dict[tuple[date, str], list[str]] = {}
    for note in notes:
        if note.when is not None:
            texts.setdefault((note.when, note.ref), []).append(note.text)
    for (when, ref), written in sorted(texts.items(), reverse=True):
        scored = [(text, _note_scores(text)) for text in written]
        scores = set().union(*(found for _, found in scored))
        if not scores:
            continue
        if len(scores) == 1 and None not in scores:
            value = scores.pop()
            assert value is not None
            return Fact(value, (ref,), _noted(value, written, when), when), None
        return None, (when, ref, f'written "{quote(next(text for text, found in scored if found))}"')
    return None, None


def _chosen(by_ecog: tuple[Reading, int] | None, by_kps: tuple[Reading, int] | None) -> Fact[int] | None:
    if by_kps is not None and (by_ecog is None or _later_or_worse(by_kps, by_ecog)):
        reading, value = by_kps
        score = _written_score(reading)
        why = (
            "later than any ECOG"
            if by_ecog is None or by_kps[0].when != by_ecog[0].when
            else "worse than that day's ECOG"
        )
        return Fact(value, (reading.ref,), f"Karnofsky {score} mapped to ECOG {value} ({why})", reading.when)
    if by_ecog is None:
        return None
    reading, value = by_ecog
    span = _range(reading.observation)
    basis = f"ECOG {span[0]}-{span[1]} recorded, the worse end counts" if span else "latest ECOG recorded"
    return Fact(value, (reading.ref,), basis, reading.when)


def _written_score(reading: Reading) -> str:
    score, span = _score(reading.observation), _range(reading.observation)
    return f"{span[0]}-{span[1]}" if score is None and span else str(score)


def _later_or_worse(kps: tuple[Reading, int], ecog: tuple[Reading, int]) -> bool:
    kps_day, ecog_day = kps[0].when or date.min, ecog[0].when or date.min
    return kps_day > ecog_day or (kps_day == ecog_day and kps[1] > ecog[1])


def recency_of(ecog: Fact[int] | None, ctx: Context) -> Fact[bool] | None:
    """Whether the performance status was recorded within the recency window; an older or undated
    one counts as "not recently recorded" (not fit for combination chemotherapy, R3)."""
    if ecog is None:
        return None
    window = int(codes()["performance_status_recent_days"])
    if ecog.when is None:
        return Fact(False, ecog.sources, "performance status recorded without a date")
    days = (ctx.today - ecog.when).days
    if days <= window:
        return Fact(
            True, ecog.sources, f"recorded {ecog.when.isoformat()}, {days} days ago (within {window})", ecog.when
        )
    return Fact(
        False,
        ecog.sources,
        f"not recently recorded: latest on {ecog.when.isoformat()}, {days} days ago (more than {window})",
        ecog.when,
    )
