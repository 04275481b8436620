"""Metastatic extent (S17): regional nodes vs distant organs, and when metastases appeared.

Distant organs are counted across active SecondaryCancerConditions (lung and pleura separately;
mCODE SecondaryCancerCondition). Lymph nodes regional to the primary site are N1, not an organ; distant ones are an
organ ("lymph-nodes"); nodes whose region or primary site is unknown make the extent ambiguous. An
active distant secondary makes M1 whatever an older M0 says; an M0 recorded on or after a metastasis is a contradiction.
Synchronous = first distant metastasis within ``synchronous_months`` of the primary's onset (5.5). A
metastasis resolved since (resected, in remission) still dates the first one: therapy given after it was
for advanced disease, and the card says the disease has been metastatic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

from cds_service.summary.codes import codes, match_text
from cds_service.summary.concepts import has_code, text_of
from cds_service.summary.conditions import CancerCondition, side_of
from cds_service.summary.context import Context
from cds_service.summary.dates import months_between, to_date
from cds_service.summary.model import Extent, Fact, Finding, FindingKind, MetastasisTiming, SiteClass
from cds_service.summary.notes import stated
from cds_service.summary.observations import Readings
from cds_service.summary.reports import ChestScan
from cds_service.summary.site import limb_of

NODES = "nodes"  # prefix of the lymph-node region values in codes.yaml
DISTANT_NODES = "lymph-nodes"


@dataclass(frozen=True)
class Spread:
    n: Fact[str] | None
    m: Fact[str] | None
    extent: Fact[Extent] | None
    organs: Fact[tuple[str, ...]] | None
    timing: Fact[MetastasisTiming] | None
    disease_free_interval_months: Fact[float] | None
    first_metastasis: date | None
    metastases: tuple[tuple[date, str], ...] = ()  # (onset, reference) of each dated distant metastasis
    resolved: Fact[tuple[str, ...]] | None = None  # organs of earlier distant metastases, now resolved


def _earliest(conditions: Sequence[CancerCondition]) -> date | None:
    return min((c.onset for c in conditions if c.onset is not None), default=None)


def _refs(conditions: Sequence[CancerCondition]) -> tuple[str, ...]:
    return tuple(sorted(c.ref for c in conditions))


def _reconcile(
    recorded: Fact[str] | None, evidence: Sequence[CancerCondition], value: str, about: str, ctx: Context
) -> Fact[str] | None:
    """A recorded category, raised to ``value`` (N1/M1) by active secondary Conditions."""
    if not evidence:
        return recorded
    first = _earliest(evidence)
    if recorded is not None and recorded.value == value:
        return Fact(
            value,
            tuple(sorted(set(recorded.sources) | set(_refs(evidence)))),
            f"{recorded.basis}; active secondary cancer Condition",
            min(filter(None, (recorded.when, first)), default=None),
        )
    if recorded is not None and recorded.when is not None and first is not None and recorded.when >= first:
        message = f"{recorded.value} recorded on or after a metastasis Condition; {value} used"
        sources = tuple(sorted(set(recorded.sources) | set(_refs(evidence))))
        for key in (about, "extent"):  # the extent rests on the same disagreement (G7)
            ctx.add(Finding(FindingKind.CONTRADICTION, key, message, sources))
    return Fact(value, _refs(evidence), "active secondary cancer Condition", first)


def _extent(
    m: Fact[str] | None, n: Fact[str] | None, distant: Sequence[CancerCondition], ctx: Context
) -> tuple[Fact[Extent] | None, Fact[tuple[str, ...]] | None]:
    if m is None:
        return None, None  # M status unknown: so is the extent (R1)
    if m.value != "M1":
        sources = tuple(sorted(set(m.sources) | set(n.sources if n else ())))
        if n is not None and n.value == "N1":
            return Fact(Extent.NODAL, sources, f"regional nodal disease (N1); M0 {m.basis}"), Fact(())
        return Fact(Extent.NONE, m.sources, f"M0: {m.basis}"), Fact(())
    organs = tuple(sorted({c.organ for c in distant if c.organ}))
    unknown = [c.ref for c in distant if not c.organ]
    sources = tuple(sorted(set(m.sources) | set(_refs(distant))))
    organ_fact = Fact(organs, sources, "organs of active secondary cancer Conditions") if organs else None
    if len(organs) >= 2:
        return Fact(Extent.DISSEMINATED, sources, f"{len(organs)} distant organs: {', '.join(organs)}"), organ_fact
    if unknown or not organs:
        why = "the organ of a metastasis is not coded: limited or disseminated unknown"
        ctx.add(Finding(FindingKind.AMBIGUOUS, "metastatic_organs", f"M1 but {why}", tuple(unknown) or m.sources))
        return Fact(Extent.DISTANT, sources, f"distant metastasis (M1); {why}"), organ_fact
    if n is not None and n.value == "N1":  # not lung-only, nor limited, for metastasectomy (R5)
        both = tuple(sorted(set(sources) | set(n.sources)))
        return Fact(
            Extent.DISSEMINATED, both, f"{organs[0]} metastases and regional nodes: more than one site"
        ), organ_fact
    value = Extent.LUNG_ONLY if organs == ("lung",) else Extent.LIMITED
    return Fact(value, sources, f"one distant organ: {organs[0]}"), organ_fact


def _diagnosed(
    primary: CancerCondition, first: date | None, treated: date | None, synchronous_months: float
) -> date | None:
    """When the primary counts from for timing its metastases: its onset, or the date its diagnosis
    was recorded when the metastasis was found within the synchronous window after that and before any
    treatment of the primary (a lump noticed long before the biopsy: metastases found at the first
    staging are synchronous; a record made at a transfer of care, after the resection, is not a diagnosis)."""
    recorded = to_date(primary.condition.recordedDate)
    onset = primary.onset
    if onset is None or recorded is None or first is None or not onset < recorded <= first:
        return onset
    if treated is not None and treated <= first:
        return onset
    return recorded if months_between(recorded, first) <= synchronous_months else onset


def _timing(
    primary_onset: date | None, first: date | None, sources: tuple[str, ...], synchronous_months: float, ctx: Context
) -> tuple[Fact[MetastasisTiming] | None, Fact[float] | None]:
    if first is None or primary_onset is None:
        missing = "metastasis date" if first is None else "primary onset date"
        ctx.add(
            Finding(
                FindingKind.MISSING,
                "metastasis_timing",
                f"synchronous or metachronous unknown: {missing} missing",
                sources,
            )
        )
        return None, None
    months = months_between(primary_onset, first)
    if months <= synchronous_months:
        basis = f"first distant metastasis {months:.1f} months after primary onset (<= {synchronous_months:g})"
        return Fact(MetastasisTiming.SYNCHRONOUS, sources, basis, first), None
    basis = f"first distant metastasis {months:.1f} months after primary onset (> {synchronous_months:g})"
    interval = Fact(round(months, 1), sources, "primary onset to first distant metastasis", first)
    return Fact(MetastasisTiming.METACHRONOUS, sources, basis, first), interval


def _own(
    secondaries: Sequence[CancerCondition], primary: CancerCondition | None, foreign: frozenset[str], ctx: Context
) -> list[CancerCondition]:
    """Active secondaries of this primary: those linked to another primary are left out; with
    several primaries, an unlinked one could belong to either (ambiguous extent, G7)."""
    active = [c for c in secondaries if c.active]
    others = [c for c in active if c.related & foreign and not (primary and primary.ref in c.related)]
    if others:
        ctx.add(
            Finding(
                FindingKind.INFO, "extent", "metastases linked to another primary cancer are not counted", _refs(others)
            )
        )
    unlinked = [c for c in active if not c.related]
    if foreign and unlinked:
        message = "more than one primary cancer and a metastasis not linked to either: whose it is cannot be told"
        for key in ("extent", "stage"):  # a stage IV resting on that metastasis is in doubt too (G7)
            ctx.add(Finding(FindingKind.AMBIGUOUS, key, message, _refs(unlinked)))
    return [c for c in active if c not in others]


def _resolved(
    secondaries: Sequence[CancerCondition], primary: CancerCondition | None, foreign: frozenset[str]
) -> list[CancerCondition]:
    """Confirmed distant metastases of this primary that are no longer active (resected, resolved): the
    disease has been metastatic, so therapy given since the first of them was for advanced disease."""
    mine = (c for c in secondaries if (primary is not None and primary.ref in c.related) or not (c.related or foreign))
    return [c for c in mine if not c.active and c.confirmed and not (c.organ or "").startswith(NODES)]


def _history(resolved: Sequence[CancerCondition]) -> Fact[tuple[str, ...]] | None:
    if not resolved:
        return None
    organs = tuple(sorted({c.organ or "site not coded" for c in resolved}))
    basis = "secondary cancer Conditions recorded as resolved or inactive"
    return Fact(organs, _refs(resolved), basis, max(filter(None, (c.onset for c in resolved)), default=None))


def _sort_nodes(
    active: Sequence[CancerCondition],
    site: SiteClass | None,
    ctx: Context,
    side: str | None = None,
    limb: str | None = None,
) -> tuple[list[CancerCondition], list[CancerCondition]]:
    """(regional node metastases, distant metastases), node regions judged against the primary site;
    for a limb primary (``side``, ``limb``: its side and limb, if recorded), nodes on the other side,
    or of the other limb (the axilla for a thigh tumour), are distant."""
    table = codes()["regional_nodes"]
    key = limb if site is SiteClass.EXTREMITY and limb else site.value if site else None
    regional_regions = set(table.get(key, ())) if key else set()
    regional, distant, unclear = [], [], []
    for c in active:
        other_side = site is SiteClass.EXTREMITY and side is not None and side_of(c) not in (None, side)
        if not (c.organ or "").startswith(NODES):
            distant.append(c)
        elif c.organ in regional_regions and not other_side:
            regional.append(c)
        elif c.organ == NODES or site is None:
            unclear.append(c)
            regional.append(c)
        else:
            distant.append(replace(c, organ=DISTANT_NODES))
    if unclear:
        ctx.add(
            Finding(
                FindingKind.AMBIGUOUS,
                "extent",
                "lymph-node metastasis whose region or primary "
                "site is not known: regional (N1) or distant cannot be told",
                _refs(unclear),
            )
        )
    return regional, distant


def _nodes_unknown_as_n0(n: Fact[str] | None) -> Fact[str]:
    """AJCC 8 has no NX for STS: nodes not recorded read as N0."""
    return (
        n
        if n is not None
        else Fact(
            "N0", (), "N0 (none or unknown): nodes not recorded read as N0, as AJCC 8 does for soft tissue sarcoma"
        )
    )


@dataclass(frozen=True)
class Relapse:
    """A disease event after which an earlier M0 no longer holds (local recurrence, progression)."""

    what: str
    when: date | None
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Scan:
    """The latest staging scan of the chest: M0 when its coded result is negative, else what it leaves open."""

    m0: Fact[str] | None = None
    unsettled: str | None = None


def staging_scan(imaging: Readings, reports: Sequence[ChestScan] = (), since: date | None = None) -> Scan:
    """M0 from the latest staging imaging of the chest when its coded result is negative (R1): an
    Observation, or a report whose conclusion is coded. A scan from before ``since`` (well before the
    tumour was diagnosed: a CT for a suspected embolism last year) stages nothing."""
    older = [r.when for r in imaging if since and r.when and r.when < since] + [
        r.when for r in reports if since and r.when and r.when < since
    ]
    imaging = imaging.where(lambda r: since is None or r.when is None or r.when >= since)
    reports = [r for r in reports if since is None or r.when is None or r.when >= since]
    if older and next(iter(imaging), None) is None and not reports:
        return Scan(unsettled=f"the only CT of the chest, of {max(older)}, was done before the sarcoma was diagnosed")
    latest = next(iter(imaging), None)
    # of one day's reports, one with a coded negative result settles it (another in words only does not)
    report = max((r for r in reports if r.when), key=lambda r: (r.when, r.negative, r.ref), default=None)
    if report is not None and report.when and (latest is None or latest.when is None or report.when > latest.when):
        if report.negative:
            return Scan(Fact("M0", (report.ref,), f"staging CT of the chest on {report.when}: negative", report.when))
        return Scan(unsettled=f"the CT of the chest of {report.when} is reported in words only ({report.ref})")
    if latest is None:
        return Scan()
    result = [latest.observation.valueCodeableConcept, *(latest.observation.interpretation or ())]
    negative = any(has_code(concept, codes()["negative_imaging"]) for concept in result if concept is not None)
    if latest.when is None or not negative:
        when = f" of {latest.when}" if latest.when else " (undated)"
        return Scan(unsettled=f"the latest staging CT of the chest{when} is not recorded as negative ({latest.ref})")
    return Scan(Fact("M0", (latest.ref,), f"staging imaging of the chest on {latest.when}: negative", latest.when))


def _m_evidence(
    m: Fact[str] | None,
    evidence: Sequence[Fact[str]],
    relapses: Sequence[Relapse],
    staged: bool,
    scan: Scan,
    ctx: Context,
) -> Fact[str] | None:
    """M0 only from positive evidence: a recorded M0, else the latest of a recorded stage group I-III
    and a negative staging scan; an M0 dated before a later relapse is superseded (restaging needed).
    Unknown is unknown (R1)."""
    m0 = m if m is not None else max(evidence, key=lambda f: (f.when or date.min, f.sources), default=None)
    if m0 is None or m0.value != "M0":
        if m0 is None and staged:
            missing = (
                f"M status not settled: {scan.unsettled}"
                if scan.unsettled
                else "M status (staging CT of the chest) not recorded"
            )
            ctx.add(Finding(FindingKind.MISSING, "extent", missing))
        return m0
    later = [r for r in relapses if r.when is None or m0.when is None or r.when > m0.when]
    if not later:
        return m0
    restaged = [f for f in evidence if f.when and all(r.when is not None and f.when > r.when for r in later)]
    if restaged:  # a negative staging CT (or stage I-III) after the relapse: the restaging it needed
        return max(restaged, key=lambda f: (f.when or date.min, f.sources))
    event = later[0]
    ctx.add(
        Finding(
            FindingKind.MISSING,
            "extent",
            f"M0 ({m0.basis}) predates the {event.what}: restaging needed",
            tuple(sorted(set(m0.sources) | set(event.sources))),
        )
    )
    return None


def _cleared_after(metastases: Sequence[CancerCondition], cleared: Fact[str] | None, what: str, ctx: Context) -> None:
    """A record that finds no disease (a negative staging CT of the chest for lung metastases, a disease
    status of no evidence of disease for any) dated after an active metastasis was recorded: which of the
    two is current the record does not say, so M and the extent are in doubt (G7)."""
    dated = [c for c in metastases if c.onset is not None]
    if cleared is None or cleared.when is None or not dated:
        return
    latest = max(c.onset for c in dated if c.onset is not None)
    if cleared.when > latest:
        message = f"{cleared.basis}, after a {what} recorded on {latest}: which is current is not recorded"
        sources = tuple(sorted({*cleared.sources, *_refs(dated)}))
        for key in ("m", "extent", "stage"):
            ctx.add(Finding(FindingKind.CONTRADICTION, key, message, sources))


def _metastatic_in_words(primary: CancerCondition, ctx: Context) -> None:
    """A diagnosis that says in words (not negated: "non-metastatic", "no metastases") that the disease
    has spread, while no metastasis is coded: the data-quality card quotes it, so that "extent not
    known" is not read as localised."""
    code = primary.condition.code
    if code is None or match_text(text_of(code), codes()["secondary"]["spread_text"], stated) is None:
        return
    quoted = next((w for w in (code.text, *(c.display for c in code.coding or ())) if w), "")
    message = f'the diagnosis reads "{quoted[:120]}" but no metastasis is coded'
    ctx.add(Finding(FindingKind.AMBIGUOUS, "extent", message, (primary.ref,)))


def _suspected(secondaries: Sequence[CancerCondition], m: Fact[str] | None, ctx: Context) -> None:
    """A suspected (unconfirmed) metastasis is not counted, but leaves the spread in doubt unless an
    M0 was recorded on or after it: the staging that settled it."""
    for c in secondaries:
        settled = m is not None and m.when is not None and c.onset is not None and m.when >= c.onset
        if c.suspected and not settled:
            message = (
                "metastasis recorded as not confirmed and no staging recorded since: whether the disease "
                "has spread is in doubt"
            )
            for about in ("extent", "stage"):
                ctx.add(Finding(FindingKind.AMBIGUOUS, about, message, (c.ref,)))


def spread(
    secondaries: Sequence[CancerCondition],
    *,
    n: Fact[str] | None,
    m: Fact[str] | None,
    implied_m0: Fact[str] | None,
    relapses: Sequence[Relapse],
    primary: CancerCondition | None,
    site: SiteClass | None,
    foreign: frozenset[str],
    ctx: Context,
    staged: bool = True,
    scan: Scan = Scan(),
    no_disease: Fact[str] | None = None,
    treated: date | None = None,
) -> Spread:
    """N and M reconciled with this primary's secondary Conditions, extent, organs, and timing.
    ``staged`` is False for a histology not staged by imaging in practice (DFSP): with no metastasis
    recorded its extent reads as localised, and M status is not asked for."""
    side = side_of(primary) if primary is not None else None
    limb = limb_of(primary) if primary is not None else None
    regional, distant = _sort_nodes(_own(secondaries, primary, foreign, ctx), site, ctx, side, limb)
    n = _nodes_unknown_as_n0(_reconcile(n, regional, "N1", "n", ctx))
    m = _reconcile(
        m if distant else _m_evidence(m, [f for f in (implied_m0, scan.m0) if f], relapses, staged, scan, ctx),
        distant,
        "M1",
        "m",
        ctx,
    )
    _cleared_after([c for c in distant if c.organ == "lung"], scan.m0, "lung metastasis", ctx)
    _cleared_after(distant, no_disease, "metastasis", ctx)
    extent, organs = _extent(m, n, distant, ctx)
    if m is None and primary is not None and staged:
        _metastatic_in_words(primary, ctx)
    if m is None and not staged and not regional:
        basis = "no metastasis recorded; staging imaging is not routine for this histology"
        extent = Fact(Extent.NONE, (primary.ref,) if primary else (), basis)
    resolved = _resolved(secondaries, primary, foreign)
    earlier = _earliest(resolved)
    if m is None or m.value != "M1":
        _suspected(secondaries, m, ctx)
        return Spread(n, m, extent, organs, None, None, earlier, resolved=_history(resolved))
    first = min(filter(None, (_earliest(distant), m.when, earlier)), default=None)
    onset = _diagnosed(primary, first, treated, ctx.synchronous_months) if primary else None
    timing, interval = _timing(onset, first, m.sources, ctx.synchronous_months, ctx)
    dated = tuple(sorted((c.onset, c.ref) for c in distant if c.onset is not None))
    return Spread(n, m, extent, organs, timing, interval, first, dated, _history(resolved))
