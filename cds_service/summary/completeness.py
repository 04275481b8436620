"""Which facts may rest on partial data, because a record could not be read or obtained (G6, G7).

``codes.yaml`` ``feeds`` lists the facts each kind of record can change. A record that failed
validation, or a whole resource type the EHR could not provide, marks those facts INCOMPLETE; the
data-quality guardrail withholds the facts it watches and names the cause on its card.
"""

from __future__ import annotations

from collections.abc import Iterable

from cds_service.summary.codes import codes
from cds_service.summary.model import Finding, FindingKind


def facts_fed_by(resource_type: str) -> tuple[str, ...]:
    """The facts records of this type can change (for Observations: of every kind)."""
    if resource_type == "Observation":
        kinds = codes()["observation_feeds"].values()
        return tuple(sorted({fact for facts in kinds for fact in facts}))
    return tuple(codes()["feeds"].get(resource_type, ()))


def incomplete(facts: Iterable[str], why: str, sources: tuple[str, ...] = ()) -> list[Finding]:
    return [Finding(FindingKind.INCOMPLETE, fact, why, sources) for fact in facts]


def unreadable_records(findings: Iterable[Finding]) -> list[Finding]:
    """INCOMPLETE findings for the facts fed by records that failed validation.

    Observations are not listed in ``feeds`` by type: they are read per kind, newest first, and an
    unreadable one is reported for its kind where it is met (``observations``).
    """
    out: list[Finding] = []
    for finding in findings:
        if finding.kind is not FindingKind.INVALID or finding.about != "resource":
            continue
        for ref in finding.sources:
            facts = codes()["feeds"].get(ref.split("/", 1)[0], ())
            out += incomplete(facts, f"{ref} could not be read; this may rest on partial data.", (ref,))
    return out
