"""AJCC 8th-edition stage group: recorded, computed from T/N/M/G by site, and the one used.

Recorded stages come from Condition.stage.summary of the index primary and from stage-group
Observations; a 6th/7th-edition stage is set aside (INFO), pathological beats
clinical, the latest wins. Computation uses ``cds_service.staging`` (AJCC 8 tables as data),
with unknown N read as N0 (AJCC 8 has no NX) and, when no metastasis is on record, M0.
The stage used is the recorded one; with M1 it is IV (trunk/extremity/retroperitoneum). When
recorded and computed disagree the recorded stage is kept and a CONTRADICTION is reported (G7).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir.resources.R4B.codeableconcept import CodeableConcept

from cds_service import staging
from cds_service.summary.codes import codes, match_text
from cds_service.summary.concepts import codes_of, has_code, lookup, text_of
from cds_service.summary.conditions import CancerCondition
from cds_service.summary.context import Context
from cds_service.summary.dates import first_date
from cds_service.summary.model import Diagnosis, Fact, Finding, FindingKind, SiteClass, StageGroup
from cds_service.summary.observations import Reading
from cds_service.summary.tnm import Tnm

ROMAN = {"0": "0", "1": "I", "2": "II", "3": "III", "4": "IV"}
AJCC_CODE = re.compile(r"^([0-4])([A-C])?\d?$", re.IGNORECASE)
ROMAN_CODE = re.compile(r"^(?:stage\s*)?(0|IV|I{1,3})([A-C])?\d?$", re.IGNORECASE)
STAGE_TEXT = re.compile(r"\bstage\s+(0|IV|I{1,3}|[0-4])([abc])?\b", re.IGNORECASE)
USABLE_EDITIONS = frozenset({None, 8})
GROUPS = frozenset(g.value for g in StageGroup)


@dataclass(frozen=True)
class Candidate:
    value: str  # as written by AJCC: "IIIC", "IV"
    edition: int | None
    pathological: bool
    when: date | None
    ref: str

    def rank(self) -> tuple[bool, date, bool, bool, str]:
        """Pathological, then latest, then on the same day: IA over I, stated 8th edition over unstated."""
        return (self.pathological, self.when or date.min, self.value in GROUPS, self.edition == 8, self.ref)


@dataclass(frozen=True)
class Staging:
    t: Fact[str] | None  # recorded T, or derived from size and site
    stage: Fact[StageGroup] | None
    recorded: Fact[str] | None
    computed: Fact[StageGroup] | None


def _roman(number: str, letter: str | None) -> str:
    return ROMAN.get(number, number).upper() + (letter or "").upper()


def stage_value(concept: Any) -> str | None:
    """Stage as AJCC writes it ("IIIC") from SNOMED, AJCC-system ("3C") or display text."""
    hit = lookup(concept, codes()["stage_values"])
    if hit is not None:
        return str(hit[0])
    for _, code in codes_of(concept):
        match = AJCC_CODE.match(code) or ROMAN_CODE.match(code)
        if match:
            return _roman(match.group(1), match.group(2))
    match = STAGE_TEXT.search(text_of(concept))
    return _roman(match.group(1), match.group(2)) if match else None


def _edition(concept: Any) -> int | None:
    hit = lookup(concept, codes()["editions"])
    return None if hit is None else int(hit[0])


OTHER_SYSTEM = "a stage of another staging system (Enneking) is not an AJCC stage; not read"


def _other_system(*concepts: Any) -> bool:
    """A stage the record names as of another staging system (Enneking's stage III is metastatic)."""
    return any(match_text(text_of(c), codes()["other_stage_systems"]["text"]) for c in concepts)


def _from_condition(primary: CancerCondition, readings: Sequence[Reading], ctx: Context) -> list[Candidate]:
    """Condition.stage summaries; date and edition from stage.type, else from the assessment Observation."""
    by_ref = {r.ref: r for r in readings}
    found = []
    condition = primary.condition
    for stage in condition.stage or ():
        value = stage_value(stage.summary)
        if value is None:
            continue
        if _other_system(stage.type, stage.summary):
            ctx.add(Finding(FindingKind.INFO, "stage", OTHER_SYSTEM, (primary.ref,)))
            continue
        assessed = [by_ref[a.reference] for a in stage.assessment or () if a.reference in by_ref]
        when = first_date(*(r.when for r in assessed), condition.recordedDate) or primary.onset
        edition = _edition(stage.type) or next((r.edition for r in assessed if r.edition), None)
        pathological = has_code(stage.type, codes()["pathological_codes"]) or any(r.pathological for r in assessed)
        found.append(Candidate(value, edition, pathological, when, primary.ref))
    return found


def _from_observations(readings: Sequence[Reading], ctx: Context) -> list[Candidate]:
    found = []
    for reading in readings:
        observation = reading.observation
        concept = observation.valueCodeableConcept or (
            CodeableConcept(text=observation.valueString) if observation.valueString else None
        )
        value = stage_value(concept)
        if value is None:
            ctx.add(Finding(FindingKind.INVALID, "stage", "unrecognised stage value; ignored", (reading.ref,)))
            continue
        if _other_system(concept, observation.method, observation.code):
            ctx.add(Finding(FindingKind.INFO, "stage", OTHER_SYSTEM, (reading.ref,)))
            continue
        found.append(Candidate(value, reading.edition, reading.pathological, reading.when, reading.ref))
    return found


def recorded_stage(
    primary: CancerCondition | None, readings: Sequence[Reading], ctx: Context
) -> tuple[Fact[str] | None, Fact[str] | None]:
    """The best recorded 8th-edition (or edition-unstated) stage, older editions -> INFO; and the M0
    that the latest recorded stage group I-III of any edition implies (R1)."""
    candidates = _from_observations(readings, ctx)
    if primary is not None:
        candidates += _from_condition(primary, readings, ctx)
    for old in (c for c in candidates if c.edition not in USABLE_EDITIONS):
        ctx.add(
            Finding(
                FindingKind.INFO,
                "stage",
                f"AJCC {old.edition}th-edition stage {old.value} recorded; not used as an AJCC 8th-edition stage",
                (old.ref,),
            )
        )
    usable = [c for c in candidates if c.edition in USABLE_EDITIONS]
    m0 = _implied_m0(max(candidates, key=Candidate.rank, default=None))
    if not usable:
        return None, m0
    best = max(usable, key=Candidate.rank)
    kind = "pathological" if best.pathological else "clinical"
    edition = "AJCC 8th" if best.edition == 8 else "edition not stated, read as AJCC 8th"
    return Fact(best.value, (best.ref,), f"recorded ({kind}, {edition})", best.when), m0


def _t(tnm: Tnm, site: Fact[SiteClass] | None) -> Fact[str] | None:
    """Recorded T, else T from the greatest dimension by the site's size bands (2.2)."""
    if tnm.t is not None or tnm.size_cm is None or site is None:
        return tnm.t
    derived = staging.t_from_size(site.value.value, tnm.size_cm.value)
    if derived is None:
        return None
    basis = f"derived from tumour size {tnm.size_cm.value:g} cm ({site.value.value} size bands, AJCC 8)"
    return Fact(derived, tnm.size_cm.sources + site.sources, basis, tnm.size_cm.when)


def _computed(
    site: Fact[SiteClass], t: Fact[str] | None, tnm: Tnm, n: Fact[str] | None, m: Fact[str] | None, ctx: Context
) -> tuple[Fact[StageGroup] | None, str | None]:
    """Computed group, or None and what was missing (None when the site has no grouping)."""
    site_name = site.value.value
    if not staging.has_stage_groups(site_name):
        ctx.add(Finding(FindingKind.INFO, "stage", f"no AJCC stage group for this site ({site_name})", site.sources))
        return None, None
    values = (
        t.value if t else None,
        n.value if n else "N0",
        m.value if m else None,
        tnm.grade.value if tnm.grade else None,
    )
    grouping = staging.group(site_name, *values)
    if grouping.group is None:
        missing = {"T": "tumour size or T", "G": "grade", "M": "M status (staging CT of the chest)"}  # N is set
        words = [missing[c] + " missing" for c in grouping.missing] or [f"{values[0]} cannot be grouped"]
        return None, ", ".join(words)
    facts = [f for f in (site, t, n, m, tnm.grade) if f is not None]
    sources = tuple(sorted({s for f in facts for s in f.sources}))
    assumed = ["N0 (none or unknown)"] if n is None or not n.sources else []
    known = " ".join(v for v in values if v)
    unknown = [axis for axis, v in (("T", values[0]), ("grade", values[3])) if not v]  # N and M are known in any row
    notes = [*assumed, *([f"{' and '.join(unknown)} not known"] if unknown else [])]
    basis = f"computed from {known} by the AJCC 8 {grouping.table} table" + (f"; {', '.join(notes)}" if notes else "")
    return Fact(StageGroup(grouping.group), sources, basis), None


def _check_stage_iv(stage: Fact[StageGroup] | None, n: Fact[str] | None, m: Fact[str] | None, ctx: Context) -> None:
    """Stage IV needs M1 or regional nodes (N1): without either it contradicts the record (R1, G7)."""
    if stage is None or stage.value is not StageGroup.IV:
        return
    if (m is not None and m.value == "M1") or (n is not None and n.value == "N1"):
        return
    message = "stage IV recorded, but no metastasis and no regional node involvement is recorded"
    for key in ("stage", "extent"):
        ctx.add(Finding(FindingKind.CONTRADICTION, key, message, stage.sources))


def _decide(
    recorded: Fact[str] | None,
    computed: Fact[StageGroup] | None,
    m: Fact[str] | None,
    first_metastasis: date | None,
    ctx: Context,
    findings_from: date | None = None,
) -> Fact[StageGroup] | None:
    """The stage used: the recorded one, or the computed one where the record shows it is out of date
    (metastasis since; a higher stage from T, N or grade recorded since, as at resection: ``findings_from``)."""
    usable = recorded if recorded is not None and recorded.value in GROUPS else None
    if recorded is not None and usable is None:
        ctx.add(
            Finding(
                FindingKind.INVALID,
                "stage",
                f"recorded stage {recorded.value} is not an AJCC 8 soft tissue sarcoma stage group",
                recorded.sources,
            )
        )
    metastatic = m is not None and m.value == "M1"
    predates = bool(usable and usable.when and first_metastasis and usable.when < first_metastasis)
    if metastatic and usable is not None and usable.value != StageGroup.IV.value and not predates:
        message = f"recorded stage {usable.value} (no distant metastasis) dated on or after a recorded metastasis"
        sources = tuple(sorted(set(usable.sources) | set(m.sources if m else ())))
        # which one is right cannot be told (R1); a computed IV names the stage's own contradiction below
        for key in ("extent",) if computed is not None else ("stage", "extent"):
            ctx.add(Finding(FindingKind.CONTRADICTION, key, message, sources))
    if usable is None or computed is None or usable.value == computed.value.value:
        return Fact(StageGroup(usable.value), usable.sources, usable.basis, usable.when) if usable else computed
    if metastatic and predates:
        ctx.add(
            Finding(
                FindingKind.INFO,
                "stage",
                f"recorded stage {usable.value} predates the first metastasis; IV used",
                usable.sources,
            )
        )
        return computed
    if _upstaged(usable, computed, findings_from):
        message = (
            f"recorded stage {usable.value} predates the T, N or grade recorded since; {computed.value.value} used"
        )
        ctx.add(Finding(FindingKind.INFO, "stage", message, usable.sources))
        return computed
    ctx.add(
        Finding(
            FindingKind.CONTRADICTION,
            "stage",
            f"recorded stage {usable.value} but {computed.value.value} {computed.basis}",
            tuple(sorted(set(usable.sources) | set(computed.sources))),
        )
    )
    return computed if metastatic else Fact(StageGroup(usable.value), usable.sources, usable.basis, usable.when)


def _upstaged(recorded: Fact[str], computed: Fact[StageGroup], findings_from: date | None) -> bool:
    """A higher stage computed from a T, N or grade recorded after the stage was (a resection's pT and
    grade after a biopsy's clinical stage; a nodal relapse). A lower one is not taken: after neoadjuvant treatment the
    resection finds less tumour, and the clinical stage still describes the disease."""
    order = list(StageGroup)
    newer = findings_from is not None and recorded.when is not None and findings_from > recorded.when
    return newer and order.index(computed.value) > order.index(StageGroup(recorded.value))


def _implied_m0(latest: Candidate | None) -> Fact[str] | None:
    """A recorded stage group I-III implies M0 in any AJCC edition (R1: M0 only on positive evidence)."""
    if latest is None or latest.value.startswith("IV") or not latest.value.startswith("I"):
        return None
    edition = f", AJCC {latest.edition}th edition" if latest.edition not in (None, 8) else ""
    return Fact("M0", (latest.ref,), f"implied by the recorded stage {latest.value}{edition}", latest.when)


def stage_of(
    tnm: Tnm,
    *,
    diagnosis: Diagnosis,
    primary: CancerCondition | None,
    site: Fact[SiteClass] | None,
    n: Fact[str] | None,
    m: Fact[str] | None,
    first_metastasis: date | None,
    recorded: Fact[str] | None,
    ajcc_staged: bool,
    ctx: Context,
    treated_from: date | None = None,
) -> Staging:
    """Computed and decided stage beside the recorded one: only for an STS histology AJCC 8 stages
    (not DFSP, ``ajcc_staged``) at a site with stage groups."""
    t = _t(tnm, site)
    if diagnosis is not Diagnosis.STS:
        return Staging(t, None, recorded, None)
    if not ajcc_staged:
        if recorded is not None:
            ctx.add(
                Finding(
                    FindingKind.INFO,
                    "stage",
                    f"recorded stage {recorded.value} not used: AJCC 8 does not stage this histology",
                    recorded.sources,
                )
            )
        return Staging(t, None, recorded, None)
    computed: Fact[StageGroup] | None
    missing: str | None
    if site is None:
        computed, missing = None, "primary site class unknown"
    else:
        computed, missing = _computed(site, t, tnm, n, m, ctx)
    if site is not None and not staging.has_stage_groups(site.value.value):
        if recorded is not None:  # e.g. a FIGO stage of a uterine sarcoma: not an AJCC 8 STS group (2.5)
            ctx.add(
                Finding(
                    FindingKind.INFO,
                    "stage",
                    f"recorded stage {recorded.value} not used: AJCC 8 "
                    f"has no soft tissue sarcoma stage group for this site ({site.value.value})",
                    recorded.sources,
                )
            )
        return Staging(t, None, recorded, None)
    # a T or grade recorded after radiotherapy or drugs began is a post-treatment finding: it stages
    # nothing; regional nodes found since (a nodal relapse) are new disease
    before = [f for f in (t, tnm.grade) if f and f.when and (treated_from is None or f.when <= treated_from)]
    findings_from = max((f.when for f in (*before, n) if f is not None and f.when is not None), default=None)
    stage = _decide(recorded, computed, m, first_metastasis, ctx, findings_from)
    _check_stage_iv(stage, n, m, ctx)
    if stage is None and missing is not None:
        lead = "no stage recorded" if recorded is None else f"recorded stage {recorded.value} unusable"
        ctx.add(
            Finding(
                FindingKind.MISSING,
                "stage",
                f"{lead} and T/N/M/G incomplete: {missing}",
                (primary.ref,) if primary else (),
            )
        )
    return Staging(t, stage, recorded, computed)
