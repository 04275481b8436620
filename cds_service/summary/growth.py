"""Growth of one lesion from its serial TumorSize Observations, read RECIST-like (R2, a structured proxy).

Sizes are of the same lesion when they share a ``focus`` reference (mCODE: the tumour they measure)
or, without focus, the same ``bodySite``; sizes of no named lesion are never compared. The latest
size is compared with the smallest one measured at least ``min_weeks`` before it: at least
``min_larger_percent`` and ``min_larger_mm`` larger is growing, otherwise not growing
(thresholds in ``codes.yaml`` ``judgements.recist``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from cds_service.summary.codes import codes
from cds_service.summary.concepts import codes_of, text_of
from cds_service.summary.model import Fact, Growth
from cds_service.summary.observations import Reading, Readings
from cds_service.summary.tnm import _size_value as size_cm


@dataclass(frozen=True)
class Size:
    ref: str
    when: date
    cm: float


def _lesion(reading: Reading) -> Hashable | None:
    """What identifies the measured lesion: its focus, else its body site; ``None`` if neither."""
    if reading.focus:
        return reading.focus
    site = reading.observation.bodySite
    return (tuple(codes_of(site)), text_of(site)) if site is not None else None


def _by_lesion(sizes: Readings) -> dict[Hashable, list[Size]]:
    lesions: dict[Hashable, list[Size]] = {}
    for reading in sizes:
        key, cm = _lesion(reading), size_cm(reading)
        if key is not None and reading.when is not None and cm is not None and cm > 0:
            lesions.setdefault(key, []).append(Size(reading.ref, reading.when, round(cm, 3)))
    return lesions


def _cm(value: float) -> str:
    return f"{value:g} cm"


def _compare(series: list[Size], rule: Mapping[str, Any]) -> Fact[Growth] | None:
    """The latest size against the smallest at least ``min_weeks`` earlier, or ``None`` if none is."""
    latest = max(series, key=lambda s: (s.when, s.ref))
    earlier = [s for s in series if (latest.when - s.when).days >= 7 * rule["min_weeks"]]
    if not earlier:
        return None
    nadir = min(earlier, key=lambda s: (s.cm, s.when))
    larger_mm = round((latest.cm - nadir.cm) * 10, 2)
    larger_percent = round(100 * (latest.cm - nadir.cm) / nadir.cm, 2)
    growing = larger_percent >= rule["min_larger_percent"] and larger_mm >= rule["min_larger_mm"]
    change = f"{larger_percent:+g} %, {larger_mm:+g} mm"
    basis = (
        f"same lesion {_cm(nadir.cm)} on {nadir.when} and {_cm(latest.cm)} on {latest.when} ({change}); "
        f"growing means at least {rule['min_larger_percent']} % and {rule['min_larger_mm']} mm larger "
        f"over at least {rule['min_weeks']} weeks"
    )
    value = Growth.GROWING if growing else Growth.NOT_GROWING
    return Fact(value, (nadir.ref, latest.ref), basis, latest.when)


@dataclass(frozen=True)
class Lesion:
    """One named lesion (its focus, else its body site) and its sizes."""

    key: Hashable
    sizes: tuple[Size, ...]

    def of(self, ref: str) -> bool:
        """Whether the lesion is the one a Condition ("Condition/x") names as its focus."""
        return isinstance(self.key, frozenset) and ref in self.key


def lesion_series(sizes: Readings) -> tuple[Lesion, ...]:
    """Each named lesion's sizes."""
    return tuple(Lesion(key, tuple(series)) for key, series in _by_lesion(sizes).items())


def lesion_growth(lesions: Sequence[Lesion]) -> list[Fact[Growth]]:
    """Growing or not growing, per lesion measured at least twice far enough apart; dated by the
    latest measurement."""
    rule = codes()["judgements"]["recist"]
    found = (_compare(list(lesion.sizes), rule) for lesion in lesions)
    return [fact for fact in found if fact is not None]


def grown_since(lesions: Sequence[Lesion], start: date, irradiated: tuple[str, date] | None = None) -> list[Fact[bool]]:
    """Lesions measured after ``start`` (a line's first dose) that grew, RECIST-like, from their
    smallest size since the last measurement before it (the baseline): progression on the line. Not
    the primary measured after radiotherapy to it began (``irradiated``: its reference and that day):
    swelling, bleeding and necrosis enlarge an irradiated tumour."""
    rule = codes()["judgements"]["recist"]
    found = []
    for lesion in lesions:
        ordered = sorted(lesion.sizes, key=lambda s: (s.when, s.ref))
        if irradiated is not None and lesion.of(irradiated[0]) and ordered[-1].when >= irradiated[1]:
            continue
        before = [s for s in ordered if s.when <= start]
        kept = [*before[-1:], *(s for s in ordered if s.when > start)]
        if len(kept) < 2 or kept[-1].when <= start:
            continue
        latest, nadir = kept[-1], min(kept[:-1], key=lambda s: (s.cm, s.when))
        larger_mm, larger_percent = (latest.cm - nadir.cm) * 10, 100 * (latest.cm - nadir.cm) / nadir.cm
        if larger_percent >= rule["min_larger_percent"] and larger_mm >= rule["min_larger_mm"]:
            basis = f"a measured lesion grew from {_cm(nadir.cm)} on {nadir.when} to {_cm(latest.cm)} on {latest.when}"
            found.append(Fact(True, (nadir.ref, latest.ref), basis, latest.when))
    return found
