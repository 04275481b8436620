"""The course of the primary: local recurrence (S15), from an active Condition coded as a recurrent
tumour (SNOMED 25173007, or "local recurrence" in its text); relapse, from the primary's
clinicalStatus recurrence/relapse; and remission (S04), from its clinicalStatus remission/inactive."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from cds_service.summary.codes import codes
from cds_service.summary.conditions import CancerCondition, Role
from cds_service.summary.context import Context
from cds_service.summary.model import Fact, Finding, FindingKind


def local_recurrence(
    primary: CancerCondition, conditions: Sequence[CancerCondition], ctx: Context
) -> Fact[bool] | None:
    """True with its sources and earliest known date, False, or unknown.

    A relapse status on the primary alone does not say where the disease came back (R1): with
    active metastases it is distant relapse, otherwise local or distant is unknown."""
    recurrences = sorted(
        (c for c in conditions if c.active and (c.role is Role.RECURRENCE or (c.recurrent and c.ref == primary.ref))),
        key=lambda c: (c.onset or date.max, c.ref),
    )
    if recurrences:
        return Fact(True, tuple(c.ref for c in recurrences), "active local recurrence Condition", recurrences[0].onset)
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
