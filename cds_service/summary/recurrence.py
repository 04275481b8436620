"""The course of the primary: local recurrence (S15), from the primary's clinicalStatus
recurrence/relapse or an active Condition coded as a recurrent tumour (SNOMED 25173007, or "local
recurrence" in its text); and remission (S04), from its clinicalStatus remission/inactive."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from cds_service.summary.codes import codes
from cds_service.summary.conditions import CancerCondition, Role
from cds_service.summary.model import Fact


def local_recurrence(primary: CancerCondition, conditions: Sequence[CancerCondition]) -> Fact[bool]:
    """True with its sources and earliest known date, else False."""
    recurrences = sorted((c for c in conditions if c.role is Role.RECURRENCE and c.active),
                         key=lambda c: (c.onset or date.max, c.ref))
    if recurrences:
        return Fact(True, tuple(c.ref for c in recurrences), "active local recurrence Condition",
                    recurrences[0].onset)
    if primary.status in codes()["condition"]["recurrence_clinical_status"]:
        return Fact(True, (primary.ref,), f"primary clinicalStatus {primary.status}")
    return Fact(False, (primary.ref,), "no local recurrence recorded")


def in_remission(primary: CancerCondition) -> Fact[bool]:
    """Whether the primary is recorded in remission or inactive: no evidence of disease (S04)."""
    status = primary.status or "not recorded"
    return Fact(primary.status in codes()["condition"]["follow_up_clinical_status"], (primary.ref,),
                f"primary clinicalStatus {status}")
