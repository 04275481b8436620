"""The course of the primary: local recurrence (S15), from an active Condition coded as a recurrent
tumour (SNOMED 25173007, or "local recurrence" in its text), else from a dated note that records it
plainly (on the primary, or on the re-excision of the recurrence); relapse, from the primary's
clinicalStatus recurrence/relapse; and remission (S04), from its clinicalStatus remission/inactive."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from cds_service.summary.codes import codes
from cds_service.summary.conditions import CancerCondition, Role, side_of
from cds_service.summary.context import Context
from cds_service.summary.dates import first_date, period_end
from cds_service.summary.indication import condition_ref
from cds_service.summary.model import Fact, Finding, FindingKind
from cds_service.summary.notes import Note, notes_of, read_notes
from cds_service.summary.parse import Entry
from cds_service.summary.procedures import tables
from cds_service.summary.site import body_site_class


def local_recurrence(
    primary: CancerCondition, conditions: Sequence[CancerCondition], notes: Sequence[Note], ctx: Context
) -> Fact[bool] | None:
    """True with its sources and the date it was last recorded as new, False, or unknown. ``notes``:
    the dated notes on the primary and on its resections.

    A relapse status on the primary alone does not say where the disease came back (R1): with
    active metastases it is distant relapse, otherwise local or distant is unknown."""
    recurrences = sorted(
        (c for c in conditions if c.active and (c.role is Role.RECURRENCE or (c.recurrent and c.ref == primary.ref))),
        key=lambda c: (c.onset or date.max, c.ref),
    )
    noted = _noted(notes)
    if recurrences:
        return Fact(
            True, tuple(c.ref for c in recurrences), "recorded as a local recurrence", _latest(recurrences, noted)
        )
    if noted is not None:
        return noted
    if not relapsed(primary):
        return Fact(False, (primary.ref,), "no local recurrence recorded")
    if any(c.role is Role.SECONDARY and c.active for c in conditions):
        return Fact(False, (primary.ref,), "relapse recorded on the primary, with active metastases: distant relapse")
    ctx.add(
        Finding(
            FindingKind.AMBIGUOUS,
            "local_recurrence",
            "relapse recorded on the primary without its site: local or distant not recorded",
            (primary.ref,),
        )
    )
    return None


def spread_elsewhere(
    index: CancerCondition | None, conditions: Sequence[CancerCondition], ctx: Context
) -> list[CancerCondition]:
    """The conditions, with a tumour recorded as recurrent in another body region than the index
    primary's (``codes.yaml`` ``recurrence_regions``), or in the limb of the other side, read as a
    metastasis there: a thigh liposarcoma "recurrent" in the retroperitoneum, or in the other thigh, has
    spread. In an adjoining region (a thigh primary, the trunk wall) local or distant is left in doubt
    (the recurrence is set aside). Where either region (or side) is not known, it stays local."""
    regions: Mapping[str, tuple[str, str]] = codes()["recurrence_regions"]
    home = regions.get(body_site_class(index) or "") if index is not None else None
    if index is None or home is None:
        return list(conditions)
    adjoining = {frozenset(pair) for pair in codes()["adjoining_regions"]}
    found = []
    for c in conditions:
        there = regions.get(body_site_class(c) or "") if c.role is Role.RECURRENCE and c.ref != index.ref else None
        if there is not None and frozenset((there[0], home[0])) in adjoining and not _other_limb(index, c):
            why = f"a recurrence in the {there[1]} beside a {home[1]} primary: local or distant is not recorded"
            for about in ("local_recurrence", "extent"):
                ctx.add(Finding(FindingKind.AMBIGUOUS, about, why, (c.ref,)))
            continue
        if there is not None and (there[0] != home[0] or _other_limb(index, c)):
            c = replace(c, role=Role.SECONDARY, organ=there[1], related=frozenset({index.ref}))
        found.append(c)
    return found


def _other_limb(index: CancerCondition, recurrence: CancerCondition) -> bool:
    """A limb tumour "recurrent" in the other side's limb: both limbs, sides recorded and different."""
    limbs = body_site_class(index) == body_site_class(recurrence) == "extremity"
    sides = side_of(index), side_of(recurrence)
    return limbs and None not in sides and sides[0] != sides[1]


def notes_on(primary: CancerCondition, procedures: Iterable[Entry[Any]]) -> list[Note]:
    """The primary's own dated notes, and the notes of completed procedures done for it (dated when
    done): where a recurrence is written down when no Condition records it."""
    found = notes_of(primary.ref, primary.condition, None)
    for entry in procedures:
        done = entry.resource
        reasons = {condition_ref(r.reference) for r in done.reasonReference or ()}
        if done.status in tables().counted_status and primary.ref in reasons:
            found += notes_of(entry.ref, done, first_date(done.performedDateTime, period_end(done.performedPeriod)))
    return found


def first_recurred(recurrence: Fact[bool] | None, conditions: Sequence[CancerCondition]) -> date | None:
    """The earliest recorded local recurrence: where advanced disease began."""
    if recurrence is None or not recurrence.value:
        return None
    onsets = [c.onset for c in conditions if c.ref in recurrence.sources and c.role is Role.RECURRENCE and c.onset]
    return min([*onsets, *([recurrence.when] if recurrence.when else [])], default=None)


def _latest(recurrences: Sequence[CancerCondition], noted: Fact[bool] | None) -> date | None:
    """When the recurrence was last recorded as new: a later note ("second local recurrence") moves it
    on. The onset of a primary recorded as recurrent ("Recurrent DFSP") dates the tumour, not its
    recurrence: with no recurrence Condition or note, when it came back is not recorded."""
    dates = [c.onset for c in recurrences if c.role is Role.RECURRENCE and c.onset]
    return max([*dates, *([noted.when] if noted is not None and noted.when else [])], default=None)


def _noted(notes: Sequence[Note]) -> Fact[bool] | None:
    """The latest dated note that records a local recurrence plainly (negations and hedges are
    ``notes``' concern: "no local recurrence", "?local recurrence" say nothing here)."""
    said = sorted(
        (s for s in read_notes(notes) if s.judgement == "local_recurrence" and s.value == "true" and s.note.when),
        key=lambda s: (s.note.when or date.min, s.note.ref),
    )
    if not said:
        return None
    last = said[-1]
    return Fact(True, (last.note.ref,), last.basis, last.note.when)


def relapsed(primary: CancerCondition) -> bool:
    """The primary's clinical status says the disease came back (recurrence, relapse)."""
    return primary.status in codes()["condition"]["recurrence_clinical_status"]


def in_remission(primary: CancerCondition) -> Fact[bool]:
    """Whether the primary is recorded in remission or inactive: no evidence of disease (S04)."""
    if primary.past is not None:  # an active problem worded as a past diagnosis (R5)
        return Fact(True, (primary.ref,), f'recorded as a past diagnosis: "{primary.past}"')
    status = primary.status or "not recorded"
    return Fact(
        primary.status in codes()["condition"]["follow_up_clinical_status"],
        (primary.ref,),
        f"primary clinicalStatus {status}",
    )


def undated_relapse(
    conditions: Sequence[CancerCondition], own: frozenset[str], line_starts: Sequence[date], ctx: Context
) -> None:
    """A metastasis of this sarcoma whose clinical status says it came back (recurrence, relapse) with
    only its first onset on record, older than the latest line: whether the disease progressed on that
    line is not recorded, so progression is in doubt (G7) rather than read as none."""
    latest = max(line_starts, default=None)
    recurred = [
        c.ref
        for c in conditions
        if c.role is Role.SECONDARY
        and c.ref in own
        and c.status in codes()["condition"]["recurrence_clinical_status"]
        and latest is not None
        and (c.onset is None or c.onset < latest)
    ]
    if recurred:
        why = "a metastasis is recorded as recurred, but not when: progression on the latest line is not recorded"
        ctx.add(Finding(FindingKind.AMBIGUOUS, "progression", why, tuple(sorted(recurred))))
