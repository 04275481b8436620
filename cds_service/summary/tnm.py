"""T, N, M, grade and tumour size from mCODE staging Observations.

T and N: pathological beats clinical, then the latest wins. M: the latest wins (pM0 does not exist,
and a later cM1 supersedes an earlier pathological staging). Grade and size: the latest wins.
Observations focused on another primary cancer are not used. AJCC 6th/7th-edition T categories
are not 8th-edition T (the size bands differ) and are set aside with an INFO finding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.codeableconcept import CodeableConcept

from cds_service.bundle import referenced_id
from cds_service.summary.codes import codes, match_text
from cds_service.summary.concepts import codes_of, lookup, text_of
from cds_service.summary.conditions import organ_of
from cds_service.summary.context import Context
from cds_service.summary.model import Fact, Finding, FindingKind
from cds_service.summary.observations import ByKind, Reading, Readings

CODE_PATTERN = re.compile(r"^[cpyra]{0,3}([TNM])(X|IS|[0-4])([A-D]\d?)?$", re.IGNORECASE)
POST_TREATMENT = re.compile(r"^[cpra]{0,2}y", re.IGNORECASE)
TEXT_PATTERN = re.compile(r"\b[cpyra]{0,3}([TNM])(X|is|[0-4])([a-d]\d?)?\b", re.IGNORECASE)
GRADE_PATTERN = re.compile(r"\b(?:G|grade\s*|fnclcc\s*(?:grade\s*)?)([1-4X])\b", re.IGNORECASE)
OLD_EDITIONS = frozenset({6, 7})


@dataclass(frozen=True)
class Tnm:
    t: Fact[str] | None
    n: Fact[str] | None
    m: Fact[str] | None
    grade: Fact[str] | None
    size_cm: Fact[float] | None


def _normalise(letter: str, value: str) -> str:
    value = value.upper()
    return f"{letter.upper()}{'is' if value == 'IS' else value}"


def category_value(concept: Any, letter: str) -> str | None:
    """The T/N/M category a value states ("T2" from SNOMED 1228929004, AJCC "pT2b", or text)."""
    hit = lookup(concept, codes()["tnm_values"])
    if hit is not None:
        return hit[0] if hit[0].startswith(letter) else None
    for _, code in codes_of(concept):
        match = CODE_PATTERN.match(code)
        if match and match.group(1).upper() == letter:
            return _normalise(letter, match.group(2))
    for match in TEXT_PATTERN.finditer(text_of(concept)):
        if match.group(1).upper() == letter:
            return _normalise(letter, match.group(2))
    return None


def _value_concept(reading: Reading) -> Any:
    observation = reading.observation
    if observation.valueCodeableConcept is not None:
        return observation.valueCodeableConcept
    if observation.valueString:
        return CodeableConcept(text=observation.valueString)
    return None


def usable(readings: Readings, index_ref: str | None, foreign: frozenset[str]) -> Readings:
    """Readings about the index primary: not focused on another primary cancer."""
    return readings.where(lambda r: not (r.focus and (index_ref not in r.focus) and (r.focus & foreign)))


def _edition_words(reading: Reading) -> str:
    edition = reading.edition
    return "AJCC edition not stated" if edition is None else f"AJCC {edition}th edition"


def post_treatment(concept: Any) -> bool:
    """A y-prefixed category ("ypT2", "yT1"): staged after neoadjuvant treatment."""
    words = [code for _, code in codes_of(concept)] + [m.group(0) for m in TEXT_PATTERN.finditer(text_of(concept))]
    return any(POST_TREATMENT.match(word) for word in words)


def _category(
    readings: Iterable[Reading], letter: str, rank: Callable[[Reading], Any], ctx: Context
) -> Fact[str] | None:
    best: tuple[Any, Reading, str] | None = None
    for reading in readings:
        value = category_value(_value_concept(reading), letter)
        if value is not None and post_treatment(_value_concept(reading)):
            ctx.add(
                Finding(
                    FindingKind.INFO,
                    letter.lower(),
                    f"post-treatment (y) {value} kept apart from the pre-treatment stage",
                    (reading.ref,),
                )
            )
            continue
        if value is None:
            ctx.add(
                Finding(FindingKind.INVALID, letter.lower(), f"unrecognised {letter} value; ignored", (reading.ref,))
            )
            continue
        if letter == "T" and reading.edition in OLD_EDITIONS:
            ctx.add(
                Finding(
                    FindingKind.INFO,
                    "t",
                    f"{value} by {_edition_words(reading)} not used as an AJCC 8th-edition T",
                    (reading.ref,),
                )
            )
            continue
        if best is None or rank(reading) > best[0]:
            best = (rank(reading), reading, value)
    if best is None:
        return None
    _, reading, value = best
    kind = "pathological" if reading.pathological else "clinical"
    return Fact(value, (reading.ref,), f"{kind} {value} ({_edition_words(reading)})", reading.when)


def _pathological_first(r: Reading) -> tuple[bool, date, str]:
    return (r.pathological, r.when or date.min, r.ref)


def _latest_first(r: Reading) -> tuple[date, bool, str]:
    return (r.when or date.min, r.pathological, r.ref)


def _nodes(fact: Fact[str] | None) -> Fact[str] | None:
    if fact is None or fact.value != "NX":
        return fact
    return Fact("N0", fact.sources, f"{fact.basis}: NX read as N0 (AJCC 8 has no NX for STS)", fact.when)


def _metastasis(fact: Fact[str] | None, ctx: Context) -> Fact[str] | None:
    if fact is None or fact.value != "MX":
        return fact
    ctx.add(Finding(FindingKind.INFO, "m", "MX is not an AJCC 8 category; M treated as unknown", fact.sources))
    return None


def _grade_value(reading: Reading) -> str | None:
    conf = codes()["grade_values"]
    observation = reading.observation
    concept = _value_concept(reading)
    hit = lookup(concept, conf)
    if hit is not None:
        value = hit[0]
    elif observation.valueInteger is not None and 1 <= observation.valueInteger <= 4:
        value = f"G{observation.valueInteger}"
    else:
        text = text_of(concept)
        match = GRADE_PATTERN.search(text)
        value = f"G{match.group(1).upper()}" if match else match_text(text, conf["text"])
    return None if value is None else conf["four_tier"].get(value, value)


def _grade(readings: Readings, ctx: Context) -> Fact[str] | None:
    for reading in readings:
        value = _grade_value(reading)
        if value is not None:
            return Fact(value, (reading.ref,), f"histologic grade {value} recorded", reading.when)
        ctx.add(Finding(FindingKind.INVALID, "grade", "unrecognised grade value; ignored", (reading.ref,)))
    return None


# UCUM codes and common unit words of a length, in centimetres
_CM_PER_UNIT = {"cm": 1.0, "mm": 0.1, "m": 100.0, "[in_i]": 2.54, "in": 2.54, "inch": 2.54, "inches": 2.54}


def _centimetres(quantity: Any) -> float | None:
    if quantity is None or quantity.value is None:
        return None
    unit = (quantity.code or quantity.unit or "").strip().lower()
    factor = _CM_PER_UNIT.get(unit)
    return None if factor is None else float(Decimal(quantity.value)) * factor


def _size_value(reading: Reading) -> float | None:
    wanted = codes()["size_component"]["loinc"]
    for component in reading.observation.component or ():
        if ("loinc", wanted) in codes_of(component.code):
            return _centimetres(component.valueQuantity)
    return _centimetres(reading.observation.valueQuantity)


def _related(tumour: Any) -> set[str]:
    """The Conditions an mCODE Tumor BodyStructure is related to ("Condition/<id>")."""
    urls = set(codes()["condition"]["related_primary_extensions"])
    return {
        f"Condition/{ident}"
        for extension in tumour.extension or ()
        if extension.url in urls
        and (ident := referenced_id(getattr(extension.valueReference, "reference", None), "Condition")) is not None
    }


def _size(readings: Readings, ctx: Context, known: Mapping[str, Any]) -> Fact[float] | None:
    """The primary's greatest dimension before treatment, or of its resection specimen (R1); none when
    the sizes measure different tumours (mCODE Tumor BodyStructures), one not on record (``known``), so
    that which is the primary cannot be told: a lung nodule's size must not set the primary's T."""
    tumours = {ref for r in readings for ref in r.focus if ref.startswith("BodyStructure/")}
    if len(tumours) > 1 and not tumours <= known.keys():
        message = "sizes of different tumours are recorded; which one is the primary is not recorded"
        ctx.add(Finding(FindingKind.AMBIGUOUS, "tumour_size_cm", message, tuple(sorted(tumours))))
        return None
    for reading in readings:
        size = _size_value(reading)
        if size is not None and size > 0:
            return Fact(round(size, 2), (reading.ref,), "greatest tumour dimension recorded", reading.when)
        ctx.add(Finding(FindingKind.INVALID, "tumour_size_cm", "no size in a unit of length; ignored", (reading.ref,)))
    return None


def _primary_size(
    readings: Readings,
    index_ref: str | None,
    treated_from: date | None,
    primary_organ: str | None,
    structures: Mapping[str, Any],
) -> Readings:
    """Sizes that may set T: not of another lesion (a Condition other than the primary, such as a
    metastasis; a lesion of another organ than the primary's, such as a liver haemangioma; an mCODE
    Tumor BodyStructure of another condition or organ, in ``structures``), not measured after
    treatment began (R1)."""

    def elsewhere(site: Any) -> bool:
        organ = organ_of(site) if site else None
        return organ is not None and organ not in codes()["local_organs"] and organ != primary_organ

    def of_primary(r: Reading) -> bool:
        tumours = [structures[ref] for ref in r.focus if ref in structures]
        if any(_related(t) - {index_ref} or elsewhere(t.location) for t in tumours):
            return False
        return not elsewhere(r.observation.bodySite) and not any(
            ref.startswith("Condition/") and ref != index_ref for ref in r.focus
        )

    return readings.where(
        lambda r: of_primary(r) and (treated_from is None or r.when is None or r.when <= treated_from)
    )


def read_tnm(
    by_kind: ByKind,
    index_ref: str | None,
    foreign: frozenset[str],
    ctx: Context,
    *,
    treated_from: date | None = None,
    primary_organ: str | None = None,
    structures: Mapping[str, Any] | None = None,
) -> Tnm:
    """T/N/M/grade/size as recorded for the index primary (no derivation here); ``treated_from``:
    when anticancer treatment began; ``primary_organ``: the organ its body site names, if any."""

    structures = structures or {}

    def of(kind: str) -> Readings:
        return usable(by_kind[kind], index_ref, foreign)

    return Tnm(
        t=_category(of("t"), "T", _pathological_first, ctx),
        n=_nodes(_category(of("n"), "N", _latest_first, ctx)),  # nodes found at restaging count (R5)
        m=_metastasis(_category(of("m"), "M", _latest_first, ctx), ctx),
        grade=_grade(of("grade"), ctx),
        size_cm=_size(_primary_size(of("size"), index_ref, treated_from, primary_organ, structures), ctx, structures),
    )
