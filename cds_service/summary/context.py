"""What every step of one summary shares: the date the record is read on, the settings, and the
gaps and contradictions found so far."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from cds_service.summary.model import Finding, FindingKind, facts_fed_by


@dataclass
class Context:
    """One summary's shared state. ``synchronous_months`` is the synchronous/metachronous threshold
    (default 3 months)."""

    today: date
    synchronous_months: float = 3.0
    findings: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def incomplete(self, record: str, why: str, sources: Iterable[str] = ()) -> None:
        """The facts ``record`` feeds may rest on partial data (G6, G7): it could not be read or obtained."""
        refs = tuple(sources)
        self.findings += [Finding(FindingKind.INCOMPLETE, fact, why, refs) for fact in facts_fed_by(record)]

    def sorted_findings(self) -> tuple[Finding, ...]:
        return tuple(sorted(set(self.findings), key=lambda f: (f.kind.value, f.about, f.message, f.sources)))
