"""Primary-site class for AJCC 8 staging: trunk and extremity, retroperitoneum, head and neck, visceral.

The ICD-10-CM (or ICD-O-3 topography) code gives the class; a coded bodySite clarifies it and wins
when the two disagree. C49.4/C49.5 (abdomen, pelvis) without a clarifying bodySite leave the site
unknown with an AMBIGUOUS finding: abdominal wall (trunk) and intra-abdominal (visceral) stage apart.
bodySite text is read in context: "neck of femur" or "head of pancreas" is not the head and neck.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import Any

from cds_service.summary.codes import codes, match_text
from cds_service.summary.concepts import describe, lookup, lookup_prefix, text_of
from cds_service.summary.conditions import CancerCondition
from cds_service.summary.context import Context
from cds_service.summary.model import Fact, Finding, FindingKind, SiteClass

AMBIGUOUS = "ambiguous"


def _topography(concepts: Iterable[Any]) -> tuple[str | None, str] | None:
    table = codes()["site"]["icd10"]
    for concept in concepts:
        hit = lookup_prefix(concept, "icd10", table) or lookup_prefix(concept, "icdo3", table)
        if hit is not None:
            return hit[0], describe(hit[1])
    return None


@cache
def _part_patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    table = codes()["site"]["body_site_parts"]
    parts = "|".join(map(re.escape, table["parts"]))
    owners = "|".join(map(re.escape, table["part_owners"]))
    sides = "|".join(map(re.escape, table["not_a_region"]))
    return (
        re.compile(rf"\b(?:{parts})\s+of\s+(?:the\s+)?"),
        re.compile(rf"\b({owners})\s+(?:{parts})\b"),
        re.compile(rf"\b(?:{sides})\b"),
    )


def _structure_text(text: str) -> str:
    """Body-site text with part words read as their structure: "neck of femur" and "femoral neck"
    are the femur, "head of pancreas" the pancreas, never the head and neck region; "left-hand
    side" names a side, not the hand."""
    part_of, owned_part, side = _part_patterns()
    return owned_part.sub(r"\1", part_of.sub("", side.sub("", text)))


def _body_site(concepts: Iterable[Any]) -> tuple[str, str] | None:
    conf = codes()["site"]
    for concept in concepts:
        hit = lookup(concept, {"snomed": conf["body_site_snomed"]})
        if hit is not None:
            return hit[0], f"bodySite {describe(hit[1])}"
        by_text = match_text(_structure_text(text_of(concept)), conf["body_site_text"])
        if by_text is not None:
            return by_text, "bodySite text"
    return None


def body_site_class(primary: CancerCondition) -> str | None:
    """The site class the primary's bodySite codes or words give, if any (no findings)."""
    found = _body_site(primary.condition.bodySite or ())
    return found[0] if found else None


def figo_site(primary: CancerCondition, site: Fact[SiteClass] | None) -> Fact[bool] | None:
    """A visceral primary of the uterus, staged by FIGO rather than AJCC 8 (``codes.yaml`` ``site.figo``)."""
    if site is None or site.value is not SiteClass.VISCERAL or not uterine(primary):
        return None
    return Fact(True, (primary.ref,), "uterine primary", primary.onset)


def uterine(primary: CancerCondition) -> bool:
    """The primary's code, body site or words name the uterus (``codes.yaml`` ``site.figo``)."""
    table = codes()["site"]["figo"]
    concepts = [primary.condition.code, *(primary.condition.bodySite or ())]
    snomed = {"snomed": table["snomed"]}
    coded = any(
        lookup_prefix(c, "icd10", table["icd10"]) or lookup_prefix(c, "icdo3", table["icd10"]) or lookup(c, snomed)
        for c in concepts
    )
    return coded or match_text(_structure_text(" ".join(text_of(c) for c in concepts)), table["words"]) is not None


def site_of(primary: CancerCondition, ctx: Context) -> Fact[SiteClass] | None:
    """Site class of the index primary, or None (with a finding) when it cannot be told."""
    condition = primary.condition
    body = _body_site(condition.bodySite or ())
    topo = _topography([condition.code, *(condition.bodySite or ())])
    source = (primary.ref,)
    if body is not None:
        if topo is not None and topo[0] not in (None, AMBIGUOUS, body[0]):
            ctx.add(
                Finding(
                    FindingKind.CONTRADICTION,
                    "site",
                    f"{topo[1]} says {topo[0]} but {body[1]} says {body[0]}; bodySite used",
                    source,
                )
            )
        basis = body[1] + (f" clarifying {topo[1]}" if topo is not None and topo[0] == AMBIGUOUS else "")
        return Fact(SiteClass(body[0]), source, basis, primary.onset)
    named = match_text(_structure_text(text_of(condition.code)), codes()["site"]["body_site_text"])
    if named is not None and (topo is None or topo[0] in (None, AMBIGUOUS)):
        # no bodySite and no usable topography: the site the diagnosis names ("LMS of inferior vena cava")
        return Fact(SiteClass(named), source, "named in the diagnosis", primary.onset)
    if topo is None or topo[0] is None:
        ctx.add(Finding(FindingKind.MISSING, "site", "primary site not coded as a staging site class", source))
        return None
    if topo[0] == AMBIGUOUS:
        ctx.add(
            Finding(
                FindingKind.AMBIGUOUS,
                "site",
                f"{topo[1]}: abdominal/pelvic wall (trunk) or intra-abdominal/pelvic (visceral)? bodySite does not say",
                source,
            )
        )
        return None
    return Fact(SiteClass(topo[0]), source, topo[1], primary.onset)


def limb_of(primary: CancerCondition) -> str | None:
    """ "upper-limb" or "lower-limb" for a limb primary whose record says which (``codes.yaml`` ``limbs``);
    None when it does not, or names both."""
    table = codes()["limbs"]
    condition = primary.condition
    concepts = [condition.code, *(condition.bodySite or ())]
    coded = {
        hit[0]
        for c in concepts
        if (hit := lookup_prefix(c, "icd10", table["icd10"]) or lookup_prefix(c, "icdo3", table["icd10"]))
    }
    text = _structure_text(" | ".join(text_of(c) for c in concepts))
    worded = {value for words, value in table["words"] if match_text(text, [(words, value)])}
    found = coded or worded
    return found.pop() if len(found) == 1 else None
