"""What earlier curative treatment means for advanced disease (R4).

Perioperative (neoadjuvant/adjuvant) chemotherapy is not a line for advanced disease, but a relapse
within ``perioperative_relapse_months`` of its last dose makes the patient anthracycline-pretreated:
first-line doxorubicin is not offered again (S28-S32) and pazopanib applies (S42). The disease-free
interval runs from the end of curative treatment (last resection, curative radiotherapy or
perioperative dose), not from diagnosis.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date

from cds_service.summary.dates import months_between
from cds_service.summary.drugs import drugs
from cds_service.summary.medications import ANTICANCER
from cds_service.summary.model import Fact, TherapyExposure

PERIOPERATIVE = "perioperative"


def add_months(day: date, months: int) -> date:
    """The same day ``months`` calendar months later (the month's last day if it is shorter)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _refs(exposures: Sequence[TherapyExposure]) -> tuple[str, ...]:
    return tuple(sorted({s for e in exposures for s in e.sources}))


def anthracycline_pretreated(
    therapies: Sequence[TherapyExposure],
    advanced_from: date | None,
    metastatic: bool,
    distant_from: date | None = None,
) -> Fact[bool] | None:
    """An anthracycline for this sarcoma in a line for advanced disease, or perioperatively with its last
    dose at most ``perioperative_relapse_months`` before the disease came back (the first advanced-disease
    event; after a course given around the surgery of a local recurrence, the first distant metastasis);
    unknown when the sarcoma is advanced but the date it became so is not, or an anthracycline is undated."""
    given = [t for t in therapies if t.purpose == ANTICANCER and t.ingredient in drugs().anthracyclines]
    advanced = [t for t in given if t.line is not None]
    if any(t.start is None for t in given) and not advanced:
        return None
    if advanced:
        names = ", ".join(sorted({t.ingredient for t in advanced}))
        return Fact(True, _refs(advanced), f"{names} in line {min(t.line or 0 for t in advanced)} for advanced disease")
    before = [t for t in given if t.setting == PERIOPERATIVE and (t.end or t.start)]
    if not before:
        return Fact(False, (), "no anthracycline for this tumour")
    if advanced_from is None:
        return None if metastatic else Fact(False, _refs(before), "perioperative anthracycline; no relapse recorded")
    last = max(t.end or t.start or date.min for t in before)
    first = min(t.start or t.end or date.max for t in before)
    if first >= advanced_from and (distant_from is None or distant_from >= first):
        # given around the surgery of a local recurrence: the disease came back when it spread
        if distant_from is None:
            return Fact(False, _refs(before), "perioperative anthracycline; no relapse recorded since")
        advanced_from = distant_from
    months = drugs().perioperative_relapse_months
    within = advanced_from <= add_months(last, months)
    how = f"{months} months or less" if within else f"more than {months} months"
    return Fact(
        within,
        _refs(before),
        f"perioperative {', '.join(sorted({t.ingredient for t in before}))}, last "
        f"dose {last.isoformat()}; disease back on {advanced_from.isoformat()}, {how} later",
        advanced_from,
    )


def curative_end(ends: Sequence[Fact[date] | None], before: date | None) -> Fact[date] | None:
    """The last curative treatment (resection, radiotherapy, perioperative dose) before advanced disease."""
    dated = [e for e in ends if e is not None and e.value is not None and (before is None or e.value <= before)]
    if not dated:
        return None
    last = max(dated, key=lambda e: (e.value, e.sources))  # one day: the same one named every time
    sources = tuple(sorted({s for e in dated for s in e.sources}))
    return Fact(last.value, sources, f"last {last.basis} on {last.value.isoformat()}", last.value)


def disease_free_interval(from_onset: Fact[float] | None, end: Fact[date] | None) -> Fact[float] | None:
    """Months from the end of curative treatment to the first distant metastasis (``from_onset.when``);
    with no curative treatment recorded before it, the patient was never known to be disease-free: none."""
    if from_onset is None or from_onset.when is None or end is None or end.value > from_onset.when:
        return None
    months = round(months_between(end.value, from_onset.when), 1)
    sources = tuple(sorted(set(from_onset.sources) | set(end.sources)))
    return Fact(
        months,
        sources,
        f"from the end of curative treatment ({end.basis}) to the first distant metastasis",
        from_onset.when,
    )
