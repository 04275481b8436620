"""Clinician free text -> what it says about a judgement the record rarely codes (R2, weakest evidence).

A sentence says something only when a phrase of ``phrases.yaml`` stands in it plainly: not hedged
("possibly unresectable", "?unresectable"), not placed in the past ("previously unresectable"), and
read through negations and answers ("not unresectable" = resectable, "resectable? no" = unresectable).
Which notes are read, and which are too old to count, is for ``judgements.py`` to decide.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, model_validator

from cds_service.summary.dates import to_date
from cds_service.summary.model import FACTS, Fact, ValueKind

QUOTE_MAX = 160
_SENTENCE_END = re.compile(r"(?<=[.!])\s+|[\r\n]+")
_CLAUSE_MARK = re.compile(r"[,;:()\[\]]")
# An answer after a phrase: "resectable? no", "Evidence of progression (Y/N): N", "progression - no;"
# (a dash reads as a space here, so a bare answer counts only where the clause ends after it)
_ANSWER = re.compile(r"\s*(?:\((?:y/n|yes/no)\)\s*)?(?:([?:=])\s*([a-z]+)?|([a-z]+)(?=\s*(?:[.;,)]|$)))")
# A word right after an answer word: "asymptomatic: no cough" lists findings, it does not answer "no"
_LISTED = re.compile(r"\s*[a-z0-9]")
# A year a sentence names: "2024", or a date written with a two-digit year ("11/14/24")
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)|(?<![\d/])\d{1,2}[/.]\d{1,2}[/.](\d{2})(?![\d/])")
_WORD = re.compile(r"[a-z0-9]+")


class _Judgement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    values: dict[str, tuple[str, ...]]
    negated: dict[str, str]
    hedges: tuple[str, ...] = ()  # this judgement's own hedges, before or just after a phrase
    # values that together say the first: "declines chemotherapy and wishes supportive care only"
    broader: dict[str, tuple[str, ...]] = {}
    # words anywhere in the sentence that leave it saying nothing of this judgement: another person
    # ("her mother"), another disease ("prostate cancer", "degenerative"), a mixed picture
    sentence_doubts: tuple[str, ...] = ()
    # a sentence naming a year before the note's own tells of the past ("progression on doxorubicin in 2024")
    past_years: bool = False
    # values growth does not undo: they hold through progression, until new disease or a resection
    lasting: tuple[str, ...] = ()


class _Counts(BaseModel):
    """How many lesions a sentence names ("12 pulmonary nodules", "more than ten metastases", ">10 lesions")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    judgement: str
    nouns: tuple[str, ...]
    between: int  # words allowed between the number and the noun
    units: tuple[str, ...]  # a number followed by one of these is a size, not a count ("12 mm nodule")
    places: tuple[str, ...] = ()  # a number just after one of these names a place ("segment 7 metastasis")
    times: tuple[str, ...]  # "mets x14": a multiplication sign between the lesions and their number
    more_than: tuple[str, ...]
    added: tuple[str, ...]
    many_words: tuple[str, ...]
    # "multiple pulmonary metastases, both lungs": more than one lesion, in both lungs, reads as many
    several_words: tuple[str, ...]
    bilateral: tuple[str, ...]
    numbers: dict[str, int]
    few_most: int
    many_least: int


class PhraseTable(BaseModel):
    """``phrases.yaml``: the phrase table and the words that negate, hedge or answer a phrase."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int
    negations: tuple[str, ...]
    hedges: tuple[str, ...]
    hedges_after: tuple[str, ...]
    past: tuple[str, ...]
    answers_no: tuple[str, ...]
    answers_yes: tuple[str, ...]
    clause_words: tuple[str, ...]
    comparisons: tuple[str, ...]
    since: tuple[str, ...]
    tumour_words: tuple[str, ...]
    judgements: dict[str, _Judgement]
    counts: _Counts

    @model_validator(mode="after")
    def _values_are_the_facts(self) -> PhraseTable:
        """Every judgement is a fact of the summary and every value one that fact takes."""
        for key, spec in self.judgements.items():
            declared = FACTS.get(key)
            if declared is None:
                raise ValueError(f"judgements.{key}: not a fact of the patient summary")
            allowed = {"true", "false"} if declared.kind is ValueKind.BOOL else declared.codes or frozenset()
            broader = {*spec.broader, *(v for values in spec.broader.values() for v in values)}
            for value in {*spec.values, *spec.negated, *spec.negated.values(), *broader, *spec.lasting} - allowed:
                raise ValueError(f"judgements.{key}: {value!r} is not a value of this fact")
        return self


@cache
def phrase_table() -> PhraseTable:
    """``phrases.yaml``, checked and parsed once per process (a bad file stops start-up)."""
    text = resources.files(__package__).joinpath("phrases.yaml").read_text(encoding="utf-8")
    return PhraseTable.model_validate(yaml.safe_load(text))


@dataclass(frozen=True)
class Note:
    """Free text a clinician wrote on a resource, dated by the note or else by the resource."""

    ref: str
    when: date | None
    text: str
    # written on no record of this disease (a progress note without focus, an imaging report): beside
    # another cancer it may be about that one
    general: bool = False
    kind: str = "note"  # what the words are, as the card names them: "note", "report", "diagnosis text"


@dataclass(frozen=True)
class Said:
    """What one sentence of a note says about a judgement, e.g. resectability: unresectable."""

    judgement: str
    value: str
    sentence: str
    note: Note

    @property
    def basis(self) -> str:
        """How a fact resting on this sentence was obtained, quoted on the card."""
        return f"per {self.note.kind} on {self.note.ref}, {self.note.when}: '{self.sentence}'"


NOTE_BASES = tuple(f"per {kind} on " for kind in ("note", "report", "diagnosis text"))


def from_note(fact: Fact[Any]) -> bool:
    """Whether the fact rests on a clinician's words (a note, a report, a diagnosis's text: cards quote them, R2)."""
    return fact.basis.startswith(NOTE_BASES)


def _normalise(text: str) -> str:
    """Lower case, hyphens and dashes as spaces: same length, so positions stay those of the text."""
    return text.lower().translate(str.maketrans("-\u2010\u2011\u2012\u2013\u2014", "      "))


def _words(phrase: str) -> str:
    return r"\s+".join(re.escape(word) for word in _normalise(phrase).split())


@cache
def _phrases() -> tuple[re.Pattern[str], Mapping[str, list[tuple[str, str]]]]:
    """One pattern for every phrase (longest first, so "no symptoms" beats "symptoms") and what each
    says (a phrase may speak to two judgements: "stable disease" to growth and disease status)."""
    said: dict[str, list[tuple[str, str]]] = {}
    for judgement, spec in phrase_table().judgements.items():
        for value, phrases in spec.values.items():
            for p in phrases:
                said.setdefault(" ".join(_normalise(p).split()), []).append((judgement, value))
    ordered = sorted(said, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(_words(p) for p in ordered) + r")(?!\w)"), said


@cache
def _any_of(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)(?:" + "|".join(_words(w) for w in sorted(words, key=len, reverse=True)) + r")(?!\w)")


def names_tumour(text: str) -> bool:
    """Whether free text names the tumour (for text-only Conditions that are not cancer Conditions)."""
    return bool(_any_of(phrase_table().tumour_words).search(_normalise(text)))


def _clause_before(text: str) -> str:
    """The text of the clause that leads up to a phrase: after the last , ; : ( or clause word."""
    cut = max((m.end() for m in _CLAUSE_MARK.finditer(text)), default=0)
    cut = max([cut] + [m.end() for m in _any_of(phrase_table().clause_words).finditer(text)])
    return text[cut:]


@cache
def _comparison() -> re.Pattern[str]:
    """A comparison with an earlier scan and the rest of its clause ("#" in a phrase is a number)."""
    number = r"\d+(?:\.\d+)?(?![\d/])"
    phrases = sorted(phrase_table().comparisons, key=len, reverse=True)
    either = "|".join(_words(p).replace(re.escape("#"), number) for p in phrases)
    return re.compile(r"(?<!\w)(?:" + either + r")[^,;:.()\[\]]*")


def _earlier_year(text: str, year: int | None) -> bool:
    """Whether the sentence names a year before ``year`` other than when the present course began
    ("since starting doxorubicin in 10/2025")."""
    if year is None:
        return False
    since = phrase_table().since
    for match in _YEAR.finditer(text):
        lead = " ".join(_WORD.findall(_clause_before(text[: match.start()]))[-(phrase_table().window + 3) :])
        if _year(match) < year and not _mentions(since, lead):
            return True
    return False


def _mentions(words: tuple[str, ...], text: str) -> bool:
    return bool(words) and _any_of(words).search(text) is not None


def _reading(
    sentence: str, match: re.Match[str], own_hedges: tuple[str, ...], *, past_is_doubt: bool = True
) -> tuple[bool, bool]:
    """(conclusive, negated) for one phrase found in a normalised sentence; "previously resectable"
    says nothing of now unless ``past_is_doubt`` is False (a diagnosis named as history is still named)."""
    table = phrase_table()
    before, after = sentence[: match.start()], sentence[match.end() :]
    lead = " ".join(_WORD.findall(_clause_before(before))[-(table.window + 1) :])
    trail = " ".join(_WORD.findall(after)[:4])
    if (
        before.rstrip().endswith("?")
        or _mentions(table.hedges, lead)
        or (past_is_doubt and _mentions(table.past, lead))
        or _mentions(own_hedges, f"{lead} {trail}")
    ):
        return False, False
    negated = _mentions(table.negations, lead)
    answer = _ANSWER.match(after)
    if answer is not None and answer.group(1) in (":", "=") and _LISTED.match(after, answer.end()):
        answer = None  # "asymptomatic: no cough, no breathlessness": what follows the colon, not an answer
    if answer is not None:
        mark, word, bare = answer.groups()
        if (word or bare) in table.answers_no:
            return True, not negated
        if mark == "?" and word not in table.answers_yes:
            return False, False
    if _any_of(table.hedges_after).match(trail):
        return False, False
    return True, negated


def stated(text: str, found: re.Match[str], doubts: tuple[str, ...] = ()) -> bool:
    """Whether ``text`` names what ``found`` matched in it: not negated, hedged or a question ("not
    liposarcoma", "?liposarcoma vs UPS"), nor followed or led by one of ``doubts``; "history of" still names it."""
    conclusive, negated = _reading(_normalise(text), found, doubts, past_is_doubt=False)
    return conclusive and not negated


def _year(match: re.Match[str]) -> int:
    four, two = match.groups()
    return int(four) if four else 2000 + int(two)


def _sentence_says(sentence: str, year: int | None = None) -> dict[str, str | None]:
    """Judgement -> value for one sentence of a note written in ``year``; ``None`` where its phrases
    disagree."""
    pattern, said = _phrases()
    text = _normalise(sentence)
    context = _comparison().sub(" ", text)
    earlier = _earlier_year(context, year)
    found: dict[str, str | None] = {}
    for match in pattern.finditer(text):
        for judgement, value in said[" ".join(match.group(0).split())]:
            spec = phrase_table().judgements[judgement]
            if _mentions(spec.sentence_doubts, context) or (spec.past_years and earlier):
                continue
            conclusive, negated = _reading(text, match, spec.hedges)
            reading = (spec.negated.get(value) if negated else value) if conclusive else None
            if reading is not None:
                found[judgement] = combined(judgement, found[judgement], reading) if judgement in found else reading
    return found


def combined(judgement: str, one: str | None, other: str | None) -> str | None:
    """Two readings of one judgement: the same, or the broader where the table says one covers the
    other ("declines chemotherapy" and "supportive care only"); otherwise they disagree (``None``)."""
    if one == other:
        return one
    for wide, narrow in phrase_table().judgements[judgement].broader.items():
        if {one, other} <= {wide, *narrow} and wide in (one, other):
            return wide
    return None


def _count_words() -> tuple[str, str, str]:
    """The alternations of a count: a number (digits or words), "more than" and the lesions."""
    conf = phrase_table().counts
    number = "|".join([r"\d+", *sorted(conf.numbers, key=len, reverse=True)])
    more = "|".join(_words(w) for w in sorted(conf.more_than, key=len, reverse=True))
    return number, more, "|".join(_words(w) for w in conf.nouns)


@cache
def _count_pattern() -> re.Pattern[str]:
    number, more, nouns = _count_words()
    between = phrase_table().counts.between
    return re.compile(
        rf"(?<!\w)(?:(?P<more>{more})\s*)?(?P<n>{number})\s+(?P<gap>(?:[a-z]+\s+){{0,{between}}}?)(?:{nouns})(?!\w)"
    )


@cache
def _bracketed_pattern() -> re.Pattern[str]:
    """The lesions, then their number in brackets: "nodules (at least 8)", "metastases (3)"."""
    number, more, nouns = _count_words()
    return re.compile(rf"(?<!\w)(?:{nouns})\s*\(\s*(?:(?P<more>{more})\s*)?(?P<n>{number})\s*\)")


@cache
def _many_pattern() -> re.Pattern[str]:
    conf = phrase_table().counts
    many = "|".join(_words(w) for w in sorted(conf.many_words, key=len, reverse=True))
    nouns = "|".join(_words(w) for w in conf.nouns)
    return re.compile(rf"(?<!\w)(?:{many})\s+(?:[a-z]+\s+){{0,{conf.between}}}?(?:{nouns})(?!\w)")


@cache
def _several_pattern() -> re.Pattern[str]:
    conf = phrase_table().counts
    several = "|".join(_words(w) for w in conf.several_words)
    nouns = "|".join(_words(w) for w in conf.nouns)
    # before the lesions ("multiple pulmonary metastases"), or just after them ("metastases (multiple, ...)")
    return re.compile(
        rf"(?<!\w)(?:(?:{several})\s+(?:[a-z]+\s+){{0,{conf.between}}}?(?:{nouns})|(?:{nouns})\s+(?:{several}))(?!\w)"
    )


@cache
def _times_pattern() -> re.Pattern[str]:
    conf = phrase_table().counts
    times = "|".join(re.escape(w) for w in conf.times)
    nouns = "|".join(_words(w) for w in conf.nouns)
    return re.compile(rf"(?<!\w)(?:{nouns})\s*(?:{times})\s*(?P<n>\d+)(?!\w)")


def _counted(sentence: str) -> str | None:
    """ "many" or "few" from a number of lesions the sentence names, else None (4-5, sizes, or none)."""
    conf = phrase_table().counts
    bracketed = _normalise(sentence)
    text = bracketed.replace("(", " ").replace(")", " ")  # "multiple (at least 8) nodules"
    values = ["many" for _ in _many_pattern().finditer(text)]
    for match in _bracketed_pattern().finditer(bracketed):  # "pulmonary nodules (at least 8)"
        word = match.group("n")
        count = int(word) if word.isdigit() else conf.numbers[word]
        values.append("many" if count + (match.group("more") is not None) >= conf.many_least else "few")
    if _several_pattern().search(text) and _mentions(conf.bilateral, text):
        values.append("many")
    values += ["many" for m in _times_pattern().finditer(text) if int(m.group("n")) >= conf.many_least]
    for match in _count_pattern().finditer(text):
        if set(match.group("gap").split()) & set(conf.units) or _a_date(text, match) or _a_place(text, match):
            continue
        word = match.group("n")
        count = int(word) if word.isdigit() else conf.numbers[word]
        more = match.group("more") is not None or bool(set(match.group("gap").split()) & set(conf.added))
        if count + more >= conf.many_least:
            values.append("many")
        elif count <= conf.few_most and not more and count > 0:
            values.append("few")
    return values[0] if len(set(values)) == 1 else None


def _a_place(text: str, match: re.Match[str]) -> bool:
    """A number that names where, not how many: "segment 7 liver metastasis", "level 2 nodes"."""
    before = text[: match.start()].split()
    return bool(before) and before[-1] in phrase_table().counts.places


def _a_date(text: str, match: re.Match[str]) -> bool:
    """A number that is a year or part of a date ("3/2024 with lung mets") counts no lesions."""
    number = match.group("n")
    return (len(number) == 4 and number[:2] in ("19", "20")) or text[: match.start("n")].endswith(("/", "."))


def sentences(text: str) -> Iterator[str]:
    for sentence in _SENTENCE_END.split(text):
        if sentence.strip():
            yield " ".join(sentence.split())


def quote(sentence: str) -> str:
    """The sentence, a long one cut at the last whole word that fits."""
    if len(sentence) <= QUOTE_MAX:
        return sentence
    cut = sentence[:QUOTE_MAX]  # one character more than kept: a word ending exactly at the limit stays whole
    return cut[: cut.rfind(" ")].rstrip(" ,;:") + "…" if " " in cut else cut[: QUOTE_MAX - 1] + "…"


def says(note: Note) -> list[Said]:
    """What a note says, one entry per judgement and sentence that gives a plain conclusion."""
    found = []
    counts = phrase_table().counts.judgement
    for sentence in sentences(note.text):
        said = _sentence_says(sentence, note.when.year if note.when else None)
        if counts not in said and (counted := _counted(sentence)) is not None:
            said[counts] = counted
        for judgement, value in said.items():
            if value is not None:
                found.append(Said(judgement, value, quote(sentence), note))
    return found


def read_notes(notes: Iterable[Note]) -> list[Said]:
    """Everything the notes say plainly; the seam for notes of any resource type (Condition,
    Observation, Procedure)."""
    return [said for note in notes for said in says(note)]


def notes_of(ref: str, resource: Any, when: date | None) -> list[Note]:
    """``note`` annotations of a validated resource (each dated by its own time, else ``when``) and a
    text-only ``code``."""
    found = [Note(ref, to_date(a.time) or when, a.text) for a in getattr(resource, "note", None) or () if a.text]
    code = getattr(resource, "code", None)
    if code is not None and code.text and not code.coding:
        found.append(Note(ref, when, code.text, kind="diagnosis text"))
    return found


def has_raw_notes(raw: Mapping[str, Any]) -> bool:
    """Whether ``raw_notes`` may find anything: the resource has a ``note`` or a ``valueString``."""
    return "note" in raw or "valueString" in raw


def raw_notes(ref: str, raw: Mapping[str, Any], when: date | None, *, general: bool = False) -> list[Note]:
    """``note`` annotations and ``valueString`` of a resource still in raw JSON (Observations)."""
    found = []
    note = raw.get("note")
    for annotation in note if isinstance(note, list) else ():
        if isinstance(annotation, Mapping) and isinstance(annotation.get("text"), str):
            found.append(Note(ref, to_date(annotation.get("time")) or when, annotation["text"], general))
    if isinstance(raw.get("valueString"), str):
        found.append(Note(ref, when, raw["valueString"], general))
    return found
