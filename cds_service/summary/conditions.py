"""Cancer Conditions sorted into primaries, secondaries (metastases) and local recurrences.

A primary is any cancer Condition that is not a secondary (mCODE PrimaryCancerCondition,
mCODE); secondaries are SNOMED 128462008 and its site codes, ICD-10-CM C77-C79 or the
mCODE secondary profile (3.10). Entered-in-error and refuted Conditions are dropped; provisional,
differential and unconfirmed ones are not a diagnosis either (a suspected metastasis is kept aside:
it puts the extent in doubt unless an M0 is recorded after it). An active problem whose text records
a past diagnosis ("history of ...", "s/p ...") is not active disease.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from functools import cache
from typing import Any

from fhir.resources.R4B.condition import Condition

from cds_service.bundle import referenced_id
from cds_service.summary.codes import codes, match_text
from cds_service.summary.concepts import codes_of, has_code, lookup, lookup_prefix, text_of
from cds_service.summary.context import Context
from cds_service.summary.dates import condition_onset, to_date
from cds_service.summary.model import Finding, FindingKind
from cds_service.summary.notes import stated
from cds_service.summary.parse import Entry

ABATED = "inactive"  # the status of a Condition that records its abatement but no status


class Role(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"
    RECURRENCE = "recurrence"


@dataclass(frozen=True)
class CancerCondition:
    ref: str
    role: Role
    active: bool
    status: str | None  # clinicalStatus code as recorded
    onset: date | None
    condition: Condition
    organ: str | None = None  # secondaries: organ involved, or a lymph-node region ("nodes-...")
    related: frozenset[str] = frozenset()  # secondaries: the primaries they are linked to ("Condition/x")
    past: str | None = None  # text that records an active problem as a past diagnosis ("history of lms")
    suspected: bool = False  # secondaries recorded as provisional/unconfirmed: not counted, but not ignored
    confirmed: bool = True  # False when recorded as provisional/unconfirmed, whatever its clinical status
    recurrent: bool = False  # a primary known only from a record of its recurrence (``read_conditions``)


def _code(concept: Any) -> str | None:
    found = codes_of(concept)
    return found[0][1] if found else None


def clinical_status(condition: Condition, today: date) -> str | None:
    """The clinicalStatus code; a Condition with no status that records its abatement (on or before
    today) has abated, and FHIR then requires it to be inactive, resolved or in remission: inactive."""
    recorded = _code(condition.clinicalStatus)
    if recorded is not None:
        return recorded
    return ABATED if _abated(condition, today) else None


def _abated(condition: Condition, today: date) -> bool:
    if condition.abatementDateTime is not None:
        when = to_date(condition.abatementDateTime)
        return when is not None and when <= today
    return any(
        value is not None
        for value in (
            condition.abatementAge,
            condition.abatementPeriod,
            condition.abatementRange,
            condition.abatementString,
        )
    )


def _profiles(condition: Condition) -> set[str]:
    return {str(p).split("|")[0] for p in (condition.meta.profile or ())} if condition.meta else set()


def organ_of(site: Any) -> str | None:
    """The organ a body site names, by code or in words."""
    hit = lookup(site, {"snomed": codes()["body_site_organ"]})
    organ = hit[0] if hit else match_text(text_of(site), codes()["organ_text"])
    return str(organ) if organ else None


def visit_diagnosis(cancer: CancerCondition) -> bool:
    """Recorded only as a visit's diagnosis (category encounter-diagnosis): every visit may record the
    same tumour or lesion again."""
    categories = {code for concept in cancer.condition.category or () for _, code in codes_of(concept)}
    return bool(categories) and categories <= {"encounter-diagnosis"}


def body_site_organ(condition: Condition) -> str | None:
    """The organ a Condition's body site names."""
    return next((organ for site in condition.bodySite or () if (organ := organ_of(site))), None)


def _secondary_organ(condition: Condition) -> tuple[bool, str | None]:
    """Whether the Condition is a secondary cancer, and the organ it involves if stated."""
    table = codes()["secondary"]
    organ = body_site_organ(condition)
    by_code = lookup(condition.code, {"snomed": table["snomed"]}) or lookup_prefix(
        condition.code, "icd10", table["icd10"]
    )
    if by_code is not None:
        return True, by_code[0] or organ
    text = text_of(condition.code)
    # the secondary-cancer profile on a record that says "local recurrence": a recurrence at the primary
    # site, not a metastasis (only a secondary code makes it one)
    profiled = bool(_profiles(condition) & set(codes()["condition"]["secondary_profiles"]))
    if profiled and _local_recurrence(condition):
        return False, None
    worded = match_text(text, table["text"]) and not match_text(text, table["other_cancer_text"])
    if profiled or (not _looks_primary(condition) and worded):
        return True, organ or match_text(text, codes()["organ_text"])
    return False, None


def _looks_primary(condition: Condition) -> bool:
    """Coded as a cancer that names its type (sarcoma codes, GIST, other cancers) or mCODE primary."""
    conf = codes()
    if _profiles(condition) & set(conf["condition"]["primary_profiles"]):
        return True
    concept = condition.code
    morphology = [e for e in condition.extension or () if e.url == conf["condition"]["morphology_extension"]]
    return bool(
        morphology
        or lookup(concept, conf["histology"])
        or lookup_prefix(concept, "icd10", conf["histology"]["icd10"])
        or has_code(concept, conf["generic_sarcoma"])
        or lookup_prefix(concept, "icd10", dict.fromkeys(conf["generic_sarcoma"]["icd10"]))
        or has_code(concept, conf["ambiguous_histology"])
        or has_code(concept, conf["other_primary"])
        or lookup_prefix(concept, "icd10", dict.fromkeys(conf["other_primary"]["icd10"]))
    )


def _looks_primary_by_text(condition: Condition) -> bool:
    conf = codes()
    text = text_of(condition.code)
    if match_text(text, conf["condition"]["not_tumour_text"]):
        return False  # "Kaposi sarcoma-associated herpesvirus infection"
    return any(
        match_text(text, patterns)
        for patterns in (
            conf["histology"]["text"],
            conf["ambiguous_histology"]["text"],
            conf["generic_sarcoma"]["text"],
            conf["other_primary"]["text"],
        )
    )


def _names_tumour(condition: Condition) -> bool:
    return _looks_primary(condition) or _looks_primary_by_text(condition)


def _recurrent_tumour(condition: Condition) -> bool:
    """A Condition whose text names the tumour as recurrent ("Recurrent DFSP chest wall", "Recurrence of
    DFSP at scar"), coded as the tumour or in words only."""
    code = condition.code
    if code is None or not code.text:
        return False
    words = codes()["local_recurrence"]["recurrent_words"]
    return bool(match_text(code.text.lower(), words, stated)) and _names_tumour(condition)


def _local_recurrence(condition: Condition) -> bool:
    """Coded or written as a local recurrence ("Recurrent tumor", "Locally recurrent UPS L thigh")."""
    recurrence = codes()["local_recurrence"]
    return has_code(condition.code, recurrence) or bool(match_text(text_of(condition.code), recurrence["text"], stated))


def _role(condition: Condition) -> tuple[Role | None, str | None]:
    secondary, organ = _secondary_organ(condition)
    if secondary:
        return Role.SECONDARY, organ
    if _local_recurrence(condition):
        return Role.RECURRENCE, None
    if _recurrent_tumour(condition):
        # "Recurrent leiomyosarcoma - both lungs": the disease back in a distant organ, not at the primary site
        organ = body_site_organ(condition) or match_text(text_of(condition.code), codes()["organ_text"])
        if organ is not None and organ not in codes()["local_organs"]:
            return Role.SECONDARY, str(organ)
        return Role.RECURRENCE, None
    if _looks_primary(condition) or _looks_primary_by_text(condition):
        return Role.PRIMARY, None
    return None, None


def _related(condition: Condition) -> frozenset[str]:
    """The primaries a secondary is linked to, as "Condition/<id>" (absolute references shortened)."""
    urls = set(codes()["condition"]["related_primary_extensions"])
    refs = set()
    for extension in condition.extension or ():
        reference = getattr(extension.valueReference, "reference", None) if extension.url in urls else None
        if (ident := referenced_id(reference, "Condition")) is not None:
            refs.add(f"Condition/{ident}")
    return frozenset(refs)


@cache
def _dated_treatment() -> re.Pattern[str]:
    """A treatment word, then a year within 40 characters (group 1)."""
    words = "|".join(map(re.escape, codes()["past_diagnosis"]["dated_treatments"]))
    return re.compile(rf"\b(?:{words})\b\D{{0,40}}?\b((?:19|20)\d\d)\b")


def _past_treatment(text: str, today: date) -> bool:
    """A treatment named with a year ("s/p TAH 2015") that ended at least ``dated_treatment_min_months`` ago."""
    table = codes()["past_diagnosis"]
    for match in _dated_treatment().finditer(text):
        if (today.year - int(match.group(1))) * 12 + today.month - 12 >= int(table["dated_treatment_min_months"]):
            return True
    return False


def _past(condition: Condition, status: str | None, today: date) -> str | None:
    """The text of an active (or status-less) cancer problem when it records a past diagnosis."""
    conf = codes()["condition"]
    if status is not None and (
        status not in conf["active_clinical_status"] or status in conf["recurrence_clinical_status"]
    ):
        return None
    text = text_of(condition.code)
    if match_text(text, codes()["past_diagnosis"]["phrases"]) or _past_treatment(text, today):
        return text
    return None


def _unconfirmed(entry: Entry[Condition], status: str, ctx: Context) -> None:
    """A suspected primary cancer is not a diagnosis."""
    ctx.add(
        Finding(
            FindingKind.INFO,
            "diagnosis",
            f"cancer recorded as {status}, not confirmed: not counted as a diagnosis",
            (entry.ref,),
        )
    )


def read_conditions(entries: Iterable[Entry[Condition]], ctx: Context) -> list[CancerCondition]:
    """The cancer Conditions of the chart (any clinical status), in reference order."""
    conf: Mapping[str, Any] = codes()["condition"]
    found: list[CancerCondition] = []
    for entry in entries:
        condition = entry.resource
        verification = _code(condition.verificationStatus)
        if verification in conf["excluded_verification_status"]:
            continue
        role, organ = _role(condition)
        if role is None:
            continue
        if match_text(text_of(condition.code), conf["unconfirmed_text"]):
            verification = "unconfirmed"  # "under investigation", "suspected" ... in the diagnosis text
        suspected = verification is not None and verification in conf["unconfirmed_verification_status"]
        if suspected and verification is not None and role is not Role.SECONDARY:
            _unconfirmed(entry, verification, ctx)
            continue
        onset = condition_onset(condition)
        if onset is not None and onset > ctx.today:
            ctx.add(Finding(FindingKind.INVALID, "diagnosis", "onset in the future; ignored", (entry.ref,)))
            continue
        status = clinical_status(condition, ctx.today)
        past = _past(condition, status, ctx.today)
        if past is not None:
            ctx.add(
                Finding(
                    FindingKind.INFO,
                    "diagnosis",
                    f'active problem worded as a past diagnosis ("{past}"): not read as active disease',
                    (entry.ref,),
                )
            )
        active = (status is None or status in conf["active_clinical_status"]) and past is None and not suspected
        related = _related(condition) if role is Role.SECONDARY else frozenset()
        found.append(
            CancerCondition(
                entry.ref,
                role,
                active,
                status,
                onset,
                condition,
                organ,
                related,
                past,
                suspected and status in (None, *conf["active_clinical_status"]),
                not suspected,
            )
        )
    return _recurrence_as_primary(found)


def _recurrence_as_primary(found: list[CancerCondition]) -> list[CancerCondition]:
    """With no primary on record, the earliest recurrence that names the tumour stands for it (the
    record of the first presentation is missing), marked ``recurrent``: local recurrence."""
    if any(c.role is Role.PRIMARY for c in found):
        return found
    named = [c for c in found if c.role is Role.RECURRENCE and _names_tumour(c.condition)]
    if not named:
        return found
    first = min(named, key=lambda c: (c.onset or date.max, c.ref))
    return [replace(c, role=Role.PRIMARY, recurrent=True) if c is first else c for c in found]


def side_of(cancer: CancerCondition) -> str | None:
    """Left or right, from the bodySite (its words or SNOMED laterality qualifier) or the diagnosis
    text (``codes.yaml`` ``laterality``); None when neither or both are named."""
    table = codes()["laterality"]
    condition = cancer.condition
    sites = condition.bodySite or ()
    coded = {hit[0] for site in sites if (hit := lookup(site, {"snomed": table["snomed"]})) is not None}
    text = " ".join([*(text_of(s) for s in sites), text_of(condition.code)])
    words = {word for word, pattern in _side_words() if pattern.search(text)}
    found = coded | words
    return found.pop() if len(found) == 1 else None


@cache
def _side_words() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Each word naming a side (``codes.yaml`` ``laterality``), with its whole-word pattern."""
    return tuple((word, re.compile(rf"\b{word}\b")) for word in codes()["laterality"]["words"])
