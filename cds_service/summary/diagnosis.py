"""Which cancer the patient has: diagnosis (STS, GIST, desmoid ... G1-G3) and histology.

Histology precedence for a primary: the mCODE histology-morphology
extension, then a HistologicBehaviorAndType Observation (LOINC 31206-6), then Condition.code, then
display text (whole words: "sarcomatoid carcinoma" is not a sarcoma). Active primaries count, and so
does a primary whose own linked metastases are active; when there is none, a primary in remission or
inactive counts (a patient under follow-up, S04, or with metastatic relapse); a resolved primary, or
one recorded as a past diagnosis ("history of ..."), counts only while metastases are active.
Several primaries are each typed on their own: an STS governs the summary and the other kinds are
reported beside it (``other_primaries``) so that their own guardrail card shows too (G1-G3).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from cds_service.summary.codes import codes, match_text
from cds_service.summary.concepts import Code, describe, has_code, lookup, lookup_prefix, text_of
from cds_service.summary.conditions import CancerCondition, Role, side_of, visit_diagnosis
from cds_service.summary.context import Context
from cds_service.summary.model import Diagnosis, Fact, Finding, FindingKind, Histology
from cds_service.summary.notes import stated
from cds_service.summary.observations import Readings
from cds_service.summary.site import body_site_class

SARCOMA_FAMILY = frozenset({Diagnosis.STS, Diagnosis.GIST, Diagnosis.DESMOID, Diagnosis.OUT_OF_SCOPE_SARCOMA})


@dataclass(frozen=True)
class Typing:
    """What one source says about the tumour type."""

    diagnosis: Diagnosis
    histology: Histology | None
    detail: str | None
    basis: str
    sources: tuple[str, ...]
    ambiguous: bool = False
    from_text: bool = False  # read from display text only: any code that names the type decides first


@dataclass(frozen=True)
class Diagnosed:
    diagnosis: Fact[Diagnosis]
    histology: Fact[Histology] | None
    detail: Fact[str] | None
    index: CancerCondition | None  # the primary the rest of the summary describes
    primaries: tuple[CancerCondition, ...]
    other_primaries: Fact[tuple[Diagnosis, ...]] | None = None  # kinds of the primaries that do not govern
    tumours: Fact[int] | None = None  # active primaries of the governing kind at different body sites
    # other primary records of the index tumour itself: same kind and histology, not apart by site or side
    same_tumour: frozenset[str] = frozenset()
    unnamed: Fact[str] | None = None  # a recorded subtype these guidelines do not name, as the record names it
    # cancers of another kind recorded as past or resolved ("history of breast cancer"): a metastasis
    # linked to no primary may be theirs
    earlier_others: frozenset[str] = frozenset()


def _from_entry(entry: Mapping[str, Any], basis: str, sources: tuple[str, ...]) -> Typing:
    histology = Histology(entry["histology"])
    diagnosis = Diagnosis(codes()["histology_diagnosis"].get(histology.value, Diagnosis.STS.value))
    return Typing(diagnosis, histology, entry.get("detail"), basis, sources)


def _from_concept(concept: Any, where: str, sources: tuple[str, ...]) -> Typing | None:
    """Typing from coded histology, then generic/ambiguous sarcoma codes, then other cancers."""
    conf = codes()
    hit: tuple[Any, Code] | None = lookup(concept, conf["histology"]) or lookup_prefix(
        concept, "icd10", conf["histology"]["icd10"]
    )
    if hit is not None:
        return _from_entry(hit[0], f"{describe(hit[1])} ({hit[0]['histology']}) in {where}", sources)
    generic = conf["generic_sarcoma"]
    sarcoma_prefix = lookup_prefix(concept, "icd10", dict.fromkeys(generic["icd10"]))
    if has_code(concept, generic) or sarcoma_prefix:
        return Typing(Diagnosis.STS, None, None, f"sarcoma without subtype in {where}", sources)
    if has_code(concept, conf["ambiguous_histology"]):
        return Typing(Diagnosis.STS, None, None, f"rhabdomyosarcoma without subtype in {where}", sources, True)
    coded = {system: dict.fromkeys(found) for system, found in conf["other_histology"].items() if system != "text"}
    other = lookup(concept, coded)
    if other is not None:
        return Typing(Diagnosis.OTHER_CANCER, None, None, f"{describe(other[1])} (not a sarcoma) in {where}", sources)
    return None


def _decisive(typing: Typing | None) -> bool:
    """A histology record that names the tumour type: a sarcoma subtype or a non-sarcoma histology."""
    return typing is not None and (typing.histology is not None or typing.diagnosis is Diagnosis.OTHER_CANCER)


def _stated(text: str, found: re.Match[str]) -> bool:
    """The diagnosis text names this histology as the diagnosis, not as excluded or one of a differential."""
    return stated(text, found, tuple(codes()["histology"]["text_doubts"]))


def _from_text(text: str, where: str, sources: tuple[str, ...]) -> Typing | None:
    conf = codes()
    if (other := match_text(text, conf["other_histology"]["text"])) is not None:
        return Typing(Diagnosis.OTHER_CANCER, None, None, f"{other} (not a soft tissue sarcoma) in {where}", sources)
    entry = match_text(text, conf["histology"]["text"], _stated)
    if entry is not None:
        return replace(_from_entry(entry, f"display text of {where}", sources), from_text=True)
    if match_text(text, conf["ambiguous_histology"]["text"]):
        if (subtype := match_text(text, conf["ambiguous_histology"]["subtype_text"], _stated)) is not None:
            return replace(_from_entry(subtype, f"display text of {where}", sources), from_text=True)
        return Typing(Diagnosis.STS, None, None, f"rhabdomyosarcoma without subtype in {where}", sources, True, True)
    if match_text(text, conf["generic_sarcoma"]["text"]):
        return Typing(Diagnosis.STS, None, None, f"sarcoma without subtype in {where}", sources, from_text=True)
    return None


def _recurred_as(typing: Typing, *, index: CancerCondition, conditions: Sequence[CancerCondition]) -> Typing:
    """A local recurrence recorded with its own subtype of the tumour's histology (a well-differentiated
    liposarcoma that recurs dedifferentiated): the latest such subtype is the tumour's now."""
    if typing.histology is None:
        return typing
    later = [
        (c.onset or date.min, c.ref, found)
        for c in conditions
        if c.role is Role.RECURRENCE
        and c.active
        and c.ref != index.ref
        and (found := _morphology(c)) is not None
        and found.histology is typing.histology
        and found.detail is not None
        and found.detail != typing.detail
        and (index.onset is None or c.onset is None or c.onset >= index.onset)
    ]
    if not later:
        return typing
    latest = max(later, key=lambda t: (t[0], t[1]))[2]
    return replace(typing, detail=latest.detail, basis=latest.basis, sources=(*typing.sources, *latest.sources))


def _spread_as(typing: Typing, *, index: CancerCondition, conditions: Sequence[CancerCondition]) -> Typing:
    """A sarcoma whose own record names no subtype, typed by a metastasis linked to it whose biopsy
    does (its histology extension): the tumour's histology."""
    if typing.diagnosis is not Diagnosis.STS or typing.histology is not None:
        return typing
    typed = sorted(
        (c.onset or date.min, c.ref, found)
        for c in conditions
        if c.role is Role.SECONDARY
        and index.ref in c.related
        and (found := _morphology(c)) is not None
        and found.diagnosis is Diagnosis.STS
    )
    if not typed or len({t[2].histology for t in typed}) != 1:
        return typing
    found = typed[-1][2]
    return replace(found, sources=(*typing.sources, *found.sources))


def _morphology(primary: CancerCondition) -> Typing | None:
    url = codes()["condition"]["morphology_extension"]
    for extension in primary.condition.extension or ():
        if extension.url == url:
            typing = _from_concept(
                extension.valueCodeableConcept, f"the histology extension of {primary.ref}", (primary.ref,)
            )
            if _decisive(typing):
                return typing
    return None


def _observed(primary: CancerCondition, readings: Readings) -> Typing | None:
    """Latest HistologicBehaviorAndType Observation focused on this primary or on nothing."""
    for reading in readings.where(lambda r: not r.focus or primary.ref in r.focus):
        typing = _from_concept(reading.observation.valueCodeableConcept, reading.ref, (primary.ref, reading.ref))
        if _decisive(typing):
            return typing
    return None


def _coded(primary: CancerCondition) -> Typing:
    """Codes decide; display text is the fallback (R5). A code that says sarcoma without naming the
    subtype (site-only ICD-10-CM C49.22 beside "Pleomorphic liposarcoma, left thigh") leaves the
    histology to the text, read by the same whole-word tables as a text-only diagnosis."""
    code = primary.condition.code
    where = primary.ref
    found = _from_concept(code, where, (where,))
    text = _from_text(text_of(code), where, (where,))
    if found is None:
        found = text
    elif _site_only_sarcoma(found) and text is not None and text.histology is not None:
        found = replace(text, basis=f"{found.basis}; histology from the {text.basis}", from_text=False)
    return found or Typing(Diagnosis.OTHER_CANCER, None, None, f"primary cancer {where} is not a sarcoma", (where,))


def _site_only_sarcoma(typing: Typing) -> bool:
    """A code that says soft tissue sarcoma but not which one (C49.x, C48.0, SNOMED sarcoma NOS)."""
    return typing.diagnosis is Diagnosis.STS and typing.histology is None and not typing.ambiguous


def type_primary(primary: CancerCondition, readings: Readings, ctx: Context) -> Typing:
    """Typing of one primary; a contradiction between specific histologies is reported."""
    coded = _coded(primary)
    preferred = _morphology(primary) or _observed(primary, readings)
    if preferred is None:
        return coded
    specific = {h for h in (coded.histology, preferred.histology) if h not in (None, Histology.SARCOMA_NOS)}
    if len(specific) > 1:
        ctx.add(
            Finding(
                FindingKind.CONTRADICTION,
                "histology",
                f"Condition.code says {coded.histology}, histology record says "
                f"{preferred.histology}; the histology record is used",
                tuple(sorted(set(coded.sources + preferred.sources))),
            )
        )
    if preferred.diagnosis is Diagnosis.OTHER_CANCER and coded.diagnosis in SARCOMA_FAMILY and not coded.from_text:
        ctx.add(
            Finding(
                FindingKind.CONTRADICTION,
                "histology",
                "the diagnosis names a sarcoma, the histology "
                "record a tumour that is not a sarcoma; the diagnosis is used",
                tuple(sorted(set(coded.sources + preferred.sources))),
            )
        )
        return coded
    return preferred


def _candidates(conditions: Sequence[CancerCondition], ctx: Context) -> list[CancerCondition]:
    """Active primaries and those whose own linked metastases are active; failing those, primaries
    in remission or inactive (under follow-up); failing those, while metastases or a local recurrence
    are active, the resolved (e.g. resected) or past primaries they may come from."""
    primaries = [c for c in conditions if c.role is Role.PRIMARY]
    metastases = [c for c in conditions if c.role is Role.SECONDARY and c.active]
    linked = {ref for c in metastases for ref in c.related}
    revived = [c for c in primaries if not c.active and c.ref in linked]
    if revived:
        ctx.add(
            Finding(
                FindingKind.INFO,
                "diagnosis",
                "primary not active but metastases linked to it are: the primary is counted",
                tuple(c.ref for c in revived),
            )
        )
    current = [c for c in primaries if c.active or c in revived]
    conf = codes()["condition"]
    dormant = [c for c in primaries if c.status in conf["follow_up_clinical_status"]]
    if current:
        return current + dormant
    if dormant:
        ctx.add(
            Finding(
                FindingKind.INFO,
                "diagnosis",
                "no active primary; primary in remission or inactive counted (follow-up)",
                tuple(c.ref for c in dormant),
            )
        )
        return dormant
    recurrences = [c for c in conditions if c.role is Role.RECURRENCE and c.active]
    if not metastases and not recurrences:
        return []
    resolved = [c for c in primaries if c.status in conf["resolved_clinical_status"] or c.past is not None]
    if resolved:
        ctx.add(
            Finding(
                FindingKind.INFO,
                "diagnosis",
                "primary resolved (e.g. resected) or recorded as past "
                "but metastases or a local recurrence are active: the primary is counted",
                tuple(c.ref for c in resolved),
            )
        )
    return resolved


def _choose(typed: Mapping[str, Typing]) -> tuple[Diagnosis, tuple[Diagnosis, ...]]:
    """The kind that governs the summary (an STS first) and the other kinds present, in that order."""
    order = [Diagnosis(d) for d in codes()["diagnosis_precedence"]]
    present = [d for d in order if d in {t.diagnosis for t in typed.values()}]
    return present[0], tuple(present[1:])


def _name(typing: Typing) -> str:
    """A primary's kind in words, with its histology where the kind has several (Kaposi sarcoma, ...)."""
    name = codes()["diagnosis_names"][typing.diagnosis.value]
    several = list(codes()["histology_diagnosis"].values()).count(typing.diagnosis.value) > 1
    return f"{name}: {typing.histology.value.replace('-', ' ')}" if typing.histology and several else name


def _others(
    chosen: Diagnosis, kinds: tuple[Diagnosis, ...], typed: Mapping[str, Typing], ctx: Context
) -> Fact[tuple[Diagnosis, ...]]:
    """The primaries that do not govern, each named, for the card of its own guideline (G1-G3)."""
    if not kinds:
        return Fact((), tuple(sorted(typed)), "no other primary cancer")
    refs = tuple(sorted(ref for ref, t in typed.items() if t.diagnosis is not chosen))
    named = "; ".join(f"{_name(typed[ref])} ({ref})" for ref in refs)
    governing = codes()["diagnosis_names"][chosen.value]
    ctx.add(Finding(FindingKind.INFO, "diagnosis", f"{governing} governs this summary; also present: {named}", refs))
    return Fact(kinds, refs, f"also present: {named}")


def diagnose(conditions: Sequence[CancerCondition], histology_readings: Readings, ctx: Context) -> Diagnosed:
    """Diagnosis, histology and the index primary: among those of the diagnosis, a problem-list record
    before a visit's diagnosis (a visit's record stays "active" long after the tumour was treated;
    procedures name the former), an active one before one in remission (a new primary after an old one
    was treated), then one with metastases recorded as its own (R5: a sarcoma with its own metastases is
    never hidden by an older one), then the earliest onset,
    then one that names its histology (a site-only code of the same tumour, "C49.22", is the lesser record)."""
    primaries = _candidates(conditions, ctx)
    if not primaries:
        if any(c.active and c.role is Role.SECONDARY for c in conditions):
            ctx.add(
                Finding(
                    FindingKind.MISSING, "diagnosis", "metastatic cancer recorded without a primary cancer Condition"
                )
            )
        return Diagnosed(Fact(Diagnosis.NONE, (), "no active primary cancer Condition"), None, None, None, ())
    typed = {p.ref: type_primary(p, histology_readings, ctx) for p in primaries}
    chosen, kinds = _choose(typed)
    spread_from = {
        ref for c in conditions if c.role is Role.SECONDARY and c.active and not c.suspected for ref in c.related
    }
    mine = sorted(
        (p for p in primaries if typed[p.ref].diagnosis is chosen),
        key=lambda p: (
            visit_diagnosis(p),
            not p.active,
            p.ref not in spread_from,
            p.onset or date.max,
            typed[p.ref].histology is None,
            p.ref,
        ),
    )
    index = mine[0]
    typing = _spread_as(typed[index.ref], index=index, conditions=conditions)
    typing = _recurred_as(typing, index=index, conditions=conditions)
    different = frozenset(p.ref for p in mine[1:] if _differs(typing, typed[p.ref]))
    if different and not _spread_is_its_own(index, conditions):
        _another_sarcoma(typing, [typed[ref] for ref in sorted(different)], ctx)
    fact = Fact(chosen, tuple(p.ref for p in mine), typing.basis, index.onset)
    histology, detail, unnamed = _histology_facts(chosen, typing, index, ctx)
    return Diagnosed(
        fact,
        histology,
        detail,
        index,
        tuple(primaries),
        _others(chosen, kinds, typed, ctx),
        _tumours(index, mine[1:], different, ctx),
        frozenset(p.ref for p in mine[1:] if p.ref not in different and not _apart(index, p)),
        unnamed,
        _earlier_others(conditions, primaries, histology_readings, ctx.today),
    )


def _earlier_others(
    conditions: Sequence[CancerCondition], counted: Sequence[CancerCondition], readings: Readings, today: date
) -> frozenset[str]:
    """Primaries of another kind than sarcoma that are not counted (past or resolved)."""
    earlier = [c for c in conditions if c.role is Role.PRIMARY and c not in counted]
    scratch = Context(today)  # their typing says nothing the card needs
    return frozenset(c.ref for c in earlier if type_primary(c, readings, scratch).diagnosis is Diagnosis.OTHER_CANCER)


def _differs(index: Typing, other: Typing) -> bool:
    return None not in (index.histology, other.histology) and index.histology != other.histology


def _spread_is_its_own(index: CancerCondition, conditions: Sequence[CancerCondition]) -> bool:
    """Every metastasis on record is linked to the index primary (or there is none): a second
    primary of another histology then leaves the index's own histology and extent clear."""
    spread = [c for c in conditions if c.role is Role.SECONDARY and c.active and not c.suspected]
    return all(index.ref in c.related for c in spread)


def _another_sarcoma(index: Typing, different: Sequence[Typing], ctx: Context) -> None:
    """A second primary of another histology, with metastases not linked to the index: which tumour
    they came from is not known, so the histology governing their treatment is in doubt (G7) rather
    than one tumour's options shown as the patient's (R5)."""
    named = ", ".join(sorted({str(t.histology).replace("-", " ") for t in (index, *different)}))
    ctx.add(
        Finding(
            FindingKind.AMBIGUOUS,
            "histology",
            f"more than one sarcoma primary of different histology ({named}): each needs its own review",
            tuple(sorted({ref for t in (index, *different) for ref in t.sources})),
        )
    )


def _tumours(
    index: CancerCondition, others: Sequence[CancerCondition], different: frozenset[str], ctx: Context
) -> Fact[int]:
    """How many active primaries of this kind the record holds at different sites. More than one is
    another tumour (or a metastasis recorded as a primary) that the cards do not describe: the
    data-quality card names each, for its own review (R5). Two records are apart when their histologies
    differ, or when their
    coded sites are of different site classes or sides (left, right): "left thigh" and "left lower
    limb" may be one tumour recorded twice."""
    apart = [
        p for p in others if index.active and p.active and p.confirmed and (p.ref in different or _apart(index, p))
    ]
    refs = tuple(sorted(p.ref for p in (index, *apart)))
    if apart:
        named = "; ".join(_site_words(p) for p in (index, *apart))
        ctx.add(
            Finding(
                FindingKind.AMBIGUOUS,
                "primary_tumours",
                f"more than one active primary sarcoma at different sites ({named}): each tumour needs its own "
                f"review; the options shown are for the {_site_words(index)} tumour",
                refs,
            )
        )
    return Fact(1 + len(apart), refs, "active primary sarcomas at different sites")


def _apart(one: CancerCondition, other: CancerCondition) -> bool:
    classes = body_site_class(one), body_site_class(other)
    sides = side_of(one), side_of(other)
    return (None not in classes and classes[0] != classes[1]) or (None not in sides and sides[0] != sides[1])


_STRUCTURE = re.compile(r"^structure of\s+|\s+structure$|\s*\(body structure\)$", re.IGNORECASE)


def _site_words(primary: CancerCondition) -> str:
    """The first body site as the record words it: its text, else its first display in plain words
    (SNOMED CT's "Uterine structure", "Structure of left thigh" read "Uterine", "left thigh")."""
    if not primary.condition.bodySite:
        return "site not named"
    site = primary.condition.bodySite[0]
    display = next((c.display for c in site.coding or () if c.display), None)
    return site.text or (_STRUCTURE.sub("", display).strip() if display else None) or "site not named"


def _unnamed(primary: CancerCondition) -> tuple[str, str | None]:
    """Why no subtype is known: none recorded, or a morphology code these guidelines do not name (then
    also its name as recorded, when the code has a display)."""
    url = codes()["condition"]["morphology_extension"]
    for extension in primary.condition.extension or ():
        if extension.url == url and extension.valueCodeableConcept is not None:
            for coding in extension.valueCodeableConcept.coding or ():
                if coding.code:
                    named = f" ({coding.display})" if coding.display else ""
                    why = f"histology recorded as ICD-O-3 {coding.code}{named}, a subtype these guidelines do not name"
                    return why, coding.display or None
    return "histological subtype not recorded", None


def _histology_facts(
    diagnosis: Diagnosis, typing: Typing, index: CancerCondition, ctx: Context
) -> tuple[Fact[Histology] | None, Fact[str] | None, Fact[str] | None]:
    """Histology and its detail; without a histology named here, the recorded subtype's name."""
    if typing.ambiguous:
        ctx.add(
            Finding(
                FindingKind.AMBIGUOUS,
                "histology",
                "rhabdomyosarcoma subtype not recorded (embryonal/alveolar are out of scope, G2)",
                typing.sources,
            )
        )
    if typing.histology is None:
        if diagnosis is not Diagnosis.STS or typing.ambiguous:
            return None, None, None
        why, name = _unnamed(index)
        ctx.add(Finding(FindingKind.MISSING, "histology", why, typing.sources))
        unnamed = None if name is None else Fact(name, (index.ref,), "morphology code", index.onset)
        return None, None, unnamed
    histology = Fact(typing.histology, typing.sources, typing.basis, index.onset)
    detail = None if typing.detail is None else Fact(typing.detail, typing.sources, typing.basis, index.onset)
    return histology, detail, None
