"""Observations grouped by what they report (T, N, M, stage, grade, size, ECOG ...), in one pass."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from fhir.resources.R4B.observation import Observation

from cds_service.summary.codes import codes
from cds_service.summary.concepts import codes_of, has_code, lookup
from cds_service.summary.dates import observation_date
from cds_service.summary.model import Finding, FindingKind
from cds_service.summary.parse import Entry

NOT_RESULTS = frozenset({"entered-in-error", "cancelled"})
FACT_KEY = {"size": "tumour_size_cm", "karnofsky": "ecog"}  # kind -> PatientSummary field


@dataclass(frozen=True)
class Reading:
    """One usable Observation: reference, date, and the model for value access."""

    ref: str
    when: date | None
    observation: Observation

    @property
    def focus(self) -> frozenset[str]:
        return frozenset(f.reference for f in self.observation.focus or () if f.reference)

    @property
    def pathological(self) -> bool:
        return has_code(self.observation.code, codes()["pathological_codes"])

    @property
    def edition(self) -> int | None:
        """AJCC edition from Observation.method (897275008 = 8th, 443830009 = 7th ...)."""
        found = lookup(self.observation.method, codes()["editions"])
        return None if found is None else int(found[0])


@cache
def _kind_index() -> Mapping[tuple[str, str], str]:
    kinds: Mapping[str, Mapping[str, tuple[str, ...]]] = codes()["observation_kinds"]
    return {(system, code): kind for kind, by_system in kinds.items()
            for system, group in by_system.items() for code in group}


def kind_of(observation: Observation) -> str | None:
    index = _kind_index()
    for code in codes_of(observation.code):
        if code in index:
            return index[code]
    return None


def by_kind(entries: Iterable[Entry[Observation]], today: date,
            findings: list[Finding]) -> dict[str, list[Reading]]:
    """Usable Observations by kind; entered-in-error/cancelled dropped, future-dated ones reported."""
    grouped: dict[str, list[Reading]] = {}
    for entry in entries:
        observation = entry.resource
        kind = kind_of(observation)
        if kind is None or observation.status in NOT_RESULTS:
            continue
        when = observation_date(observation)
        if when is not None and when > today:
            findings.append(Finding(FindingKind.INVALID, FACT_KEY.get(kind, kind), "dated in the future; ignored",
                                    (entry.ref,)))
            continue
        grouped.setdefault(kind, []).append(Reading(entry.ref, when, observation))
    return grouped


def latest(readings: Iterable[Reading], key: Any = None) -> Reading | None:
    """The latest reading (undated ones count as oldest); ties broken by reference."""
    rank = key or (lambda r: (r.when or date.min, r.ref))
    return max(readings, key=rank, default=None)
