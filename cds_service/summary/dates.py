"""FHIR dates to ``datetime.date``: partial dates take their first day; times drop to the date."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

DAYS_PER_MONTH = 365.25 / 12


def to_date(value: Any) -> date | None:
    """``2019`` -> 2019-01-01, ``2019-04`` -> 2019-04-01, datetimes -> their (recorded) date."""
    if value is None:
        return None
    if type(value) is not str:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
    text = str(value)
    if len(text) >= 10 and text[4] == "-" and text[7] == "-":  # the common full date: read in C
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            pass  # not plain ASCII digits, or no such day: read below as before
    try:
        parts = [int(part) for part in text[:10].split("-")]
        return date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
    except (ValueError, IndexError, OverflowError):  # OverflowError: a "year" of more digits than C's int
        return None


def first_date(*values: Any) -> date | None:
    """The first of ``values`` that reads as a date (FHIR choice elements, in preference order)."""
    for value in values:
        found = to_date(value)
        if found is not None:
            return found
    return None


def period_start(period: Any) -> date | None:
    return None if period is None else first_date(period.start, period.end)


def period_end(period: Any) -> date | None:
    return None if period is None else first_date(period.end, period.start)


def condition_onset(condition: Any) -> date | None:
    """When a Condition began: onsetDateTime / onsetPeriod / onsetString naming a month ("February
    2024"), else recordedDate."""
    return first_date(
        condition.onsetDateTime,
        period_start(condition.onsetPeriod),
        written_month(condition.onsetString),
        condition.recordedDate,
    )


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_YEAR = re.compile(r"\s*(?:\d{1,2}\s+)?([a-z]{3})[a-z]*\.?,?\s+(\d{4})\s*", re.I)


def written_month(text: Any) -> date | None:
    """A date written as words ("February 2024", "12 Feb 2024"): the first day of its month, as a
    partial FHIR date is read; an ISO date in a string as ``to_date``; anything vaguer: ``None``."""
    if not isinstance(text, str):
        return None
    match = _MONTH_YEAR.fullmatch(text)
    if match and match.group(1).lower() in _MONTHS and int(match.group(2)) >= 1:  # "Feb 0000" is no date
        return date(int(match.group(2)), _MONTHS.index(match.group(1).lower()) + 1, 1)
    return to_date(text.strip()) if re.fullmatch(r"\s*\d{4}-\d{2}(?:-\d{2})?\s*", text) else None


def days_before(day: date | None, days: int) -> date | None:
    """``days`` before ``day`` (the first date there is, for a day in year 1)."""
    if day is None:
        return None
    return day - timedelta(days=days) if day.toordinal() > days else date.min


def days_after(day: date, days: int) -> date:
    """``days`` after ``day`` (the last date there is, for a day in year 9999)."""
    return day + timedelta(days=days) if date.max.toordinal() - day.toordinal() > days else date.max


def months_between(start: date, end: date) -> float:
    return (end - start).days / DAYS_PER_MONTH
