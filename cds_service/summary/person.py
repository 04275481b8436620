"""The person: age from ``Patient.birthDate`` and death from ``Patient.deceased[x]``, which gate
active treatment (R3: no cards after death; paediatric and elderly patients are treated apart)."""

from __future__ import annotations

from datetime import date

from fhir.resources.R4B.patient import Patient

from cds_service.summary.context import Context
from cds_service.summary.dates import to_date
from cds_service.summary.model import Fact, Finding, FindingKind


def _years(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def age_of(person: Patient | None, ref: str | None, ctx: Context) -> Fact[int] | None:
    """Age in completed years on ``ctx.today``. A partial birth date (year or month only) is read as
    its last possible day, so the age is never overstated and an under-18 caution is never missed."""
    born = to_date(person.birthDate) if person is not None else None
    if born is None or ref is None:
        return None
    if born > ctx.today:
        ctx.add(Finding(FindingKind.INVALID, "age", "birth date in the future; ignored", (ref,)))
        return None
    precision = len(str(person.birthDate)) if person is not None else 10
    latest_birthday = {4: date(born.year, 12, 31), 7: _month_end(born)}.get(precision, born)
    years = _years(min(latest_birthday, ctx.today), ctx.today)
    return Fact(years, (ref,), "from the birth date", born)


def _month_end(born: date) -> date:
    following = date(born.year + (born.month == 12), born.month % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1)


def deceased_of(person: Patient | None, ref: str | None) -> Fact[bool] | None:
    """True when ``deceasedBoolean`` is true or a ``deceasedDateTime`` is recorded."""
    if person is None or ref is None:
        return None
    if person.deceasedDateTime is not None:
        return Fact(True, (ref,), f"deceased {str(person.deceasedDateTime)[:10]}", to_date(person.deceasedDateTime))
    if person.deceasedBoolean is not None:
        return Fact(
            bool(person.deceasedBoolean),
            (ref,),
            "recorded deceased" if person.deceasedBoolean else "recorded as living",
        )
    return None
