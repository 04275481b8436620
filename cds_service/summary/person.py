"""The person: age from ``Patient.birthDate`` and death from ``Patient.deceased[x]`` (or a note on the
disease that records it), which gate
active treatment (R3: no cards after death; paediatric and elderly patients are treated apart), and
pregnancy, which the guideline statements do not address (a caution card)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.patient import Patient

from cds_service.summary.codes import codes
from cds_service.summary.concepts import codes_of, has_code, lookup_prefix, text_of
from cds_service.summary.conditions import clinical_status
from cds_service.summary.context import Context
from cds_service.summary.dates import condition_onset, to_date
from cds_service.summary.model import Fact, Finding, FindingKind
from cds_service.summary.notes import Said, phrase_table
from cds_service.summary.observations import Reading, Readings
from cds_service.summary.parse import Entry


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


def oldest_age_of(person: Patient | None, age: Fact[int] | None, ctx: Context) -> Fact[int] | None:
    """The oldest the patient can be: with a partial birth date, its first possible day. Gates that a
    higher age closes (combination chemotherapy from 75) read this one, so a "1951" born patient who
    may be 75 is not treated as 74 (R3)."""
    if person is None or age is None or age.when is None:
        return None
    oldest = _years(age.when, ctx.today)  # ``when`` is the first possible day of a partial date
    precision = len(str(person.birthDate))
    basis = "from the birth date" if oldest == age.value else f"birth {'year' if precision == 4 else 'month'} only"
    return Fact(oldest, age.sources, basis, age.when)


def _month_end(born: date) -> date:
    following = date(born.year + (born.month == 12), born.month % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1)


def deceased_of(person: Patient | None, ref: str | None, deaths: Readings | None = None) -> Fact[bool] | None:
    """True when ``deceasedBoolean`` is true or a ``deceasedDateTime`` is recorded, else when an
    Observation records the death (date or cause of death)."""
    if person is None or not (person.deceasedDateTime or person.deceasedBoolean):
        recorded = next(iter(deaths or ()), None)
        if recorded is not None:
            return Fact(True, (recorded.ref,), "death recorded", recorded.when)
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


def death_noted_of(
    deceased: Fact[bool] | None,
    said: Sequence[Said],
    in_status_reasons: Sequence[tuple[str, date | None]] = (),
    in_conditions: Sequence[tuple[str, date | None]] = (),
) -> Fact[bool] | None:
    """A note on the disease says plainly that the patient died, a diagnosis is coded as the death, or
    medication records give the death as their status reason (reference, date), and the Patient record
    does not: a safety card asks to confirm and treatment options wait (a note never silences the
    chart, R2)."""
    if deceased is not None and deceased.value:
        return None
    death = next((s for s in said if s.judgement == "deceased" and s.value == "true"), None)
    if death is not None:
        return Fact(True, (death.note.ref,), death.basis, death.note.when)
    if in_conditions:
        when = max((day for _, day in in_conditions if day), default=None)
        refs = tuple(sorted(ref for ref, _ in in_conditions))
        return Fact(True, refs, "a diagnosis records the patient's death", when)
    if not in_status_reasons:
        return None
    when = max((day for _, day in in_status_reasons if day), default=None)
    refs = tuple(sorted(ref for ref, _ in in_status_reasons))
    return Fact(True, refs, "a medication record stopped or not given because the patient died", when)


def deaths_in_conditions(
    entries: Sequence[Entry[Condition]], today: date, last_dose: date | None = None
) -> list[tuple[str, date | None]]:
    """Conditions coded as the patient's death (``codes.yaml`` ``death_codes``), not refuted or entered
    in error, with their dates; not one whose words name another person ("grief reaction following the
    death of her husband"), nor one dated before a dose of treatment given since."""
    excluded = codes()["condition"]["excluded_verification_status"]
    others = phrase_table().judgements["deceased"].hedges
    found = []
    for entry in entries:
        condition = entry.resource
        verification = codes_of(condition.verificationStatus)
        if not has_code(condition.code, codes()["death_codes"]) or (verification and verification[0][1] in excluded):
            continue
        words = " ".join([text_of(condition.code), *(n.text for n in condition.note or () if n.text)]).lower()
        when = condition_onset(condition)
        if any(re.search(rf"\b{re.escape(o)}\b", words) for o in others):
            continue
        if (when is None or when <= today) and not (when and last_dose and last_dose > when):
            found.append((entry.ref, when))
    return found


def pregnant_of(
    conditions: Sequence[Entry[Condition]],
    status: Readings,
    person: Patient | None,
    ctx: Context,
    dating: Readings | None = None,
) -> Fact[bool] | None:
    """Pregnant, from an active pregnancy Condition begun within the table's days (or undated), a
    recent dating of a delivery still to come (an estimated delivery date, a gestational age), or a
    recent pregnancy-status Observation or test; the latest decides. Unknown without any. A man's hCG
    is a tumour marker: his pregnancy statuses and tests are not read."""
    table = codes()["pregnancy"]
    since = ctx.today - timedelta(days=int(table["recent_days"]))
    readable = () if person is not None and person.gender in table["not_read_for"] else status
    said = next((r for r in readable if r.when is not None and since <= r.when <= ctx.today and _said(r, table)), None)
    found = [
        (when, entry.ref)
        for entry in conditions
        if _pregnancy(entry.resource, table, ctx.today)
        and ((when := condition_onset(entry.resource)) is None or since <= when <= ctx.today)
    ]
    found += [
        (r.when, r.ref) for r in dating or () if r.when is not None and since <= r.when and _due(r, table, ctx.today)
    ]
    recorded = max(found, key=lambda pair: (pair[0] or date.min, pair[1]), default=None)
    later = said is not None and said.when is not None and (recorded is None or (recorded[0] or date.max) <= said.when)
    ended = _ended(conditions, table, ctx.today)
    if said is not None and later and ended is not None and said.when is not None and ended[0] >= said.when:
        return Fact(False, (ended[1],), f"pregnancy recorded as ended on {ended[0].isoformat()}", ended[0])
    if said is not None and later:
        value = has_code(said.observation.valueCodeableConcept, table["pregnant_values"])
        return Fact(value, (said.ref,), "pregnant or a positive pregnancy test" if value else "not pregnant", said.when)
    if recorded is not None:
        when, ref = recorded
        if ended is not None and ended[0] >= (when or date.max):
            return Fact(False, (ended[1],), f"pregnancy recorded as ended on {ended[0].isoformat()}", ended[0])
        return Fact(True, (ref,), "pregnancy recorded" + (f" on {when.isoformat()}" if when else ""), when)
    return None


def _ended(conditions: Sequence[Entry[Condition]], table: Mapping[str, Any], today: date) -> tuple[date, str] | None:
    """The latest end of a pregnancy: a pregnancy Condition recorded as ended (its abatement date), or
    a Condition of its outcome (a miscarriage, a delivery), with its record."""
    ends = [
        (when, entry.ref)
        for entry in conditions
        if _pregnancy(entry.resource, table, today, active=False)
        and (when := to_date(entry.resource.abatementDateTime)) is not None
    ]
    ends += [  # a pregnancy's outcome (a miscarriage, a delivery), dated when it happened
        (when, entry.ref)
        for entry in conditions
        if _outcome(entry.resource, table) and (when := condition_onset(entry.resource)) is not None and when <= today
    ]
    return max(ends, default=None)


def _outcome(condition: Condition, table: Mapping[str, Any]) -> bool:
    coded = table["outcome"]
    verification = codes_of(condition.verificationStatus)
    if verification and verification[0][1] in codes()["condition"]["excluded_verification_status"]:
        return False
    return has_code(condition.code, {"snomed": coded["snomed"]}) or (
        lookup_prefix(condition.code, "icd10", dict.fromkeys(coded["icd10"], True)) is not None
    )


def _due(reading: Reading, table: Mapping[str, Any], today: date) -> bool:
    """A delivery still to come, within a pregnancy's length: an estimated delivery date after today,
    or a gestational age from which term falls after today."""
    observation = reading.observation
    due = to_date(observation.valueDateTime)
    weeks = observation.valueQuantity
    if due is None and weeks is not None and weeks.value is not None and reading.when is not None:
        unit = (weeks.code or weeks.unit or "").lower()
        days = float(weeks.value) * (
            7 if unit in ("wk", "week", "weeks", "w") else 1 if unit in ("d", "day", "days") else 0
        )
        due = reading.when + timedelta(weeks=int(table["term_weeks"])) - timedelta(days=days) if days else None
    return due is not None and today < due <= today + timedelta(days=int(table["recent_days"]))


def _said(reading: Reading, table: Mapping[str, Any]) -> bool:
    value = reading.observation.valueCodeableConcept
    return has_code(value, table["pregnant_values"]) or has_code(value, table["not_pregnant_values"])


def _pregnancy(condition: Condition, table: Mapping[str, Any], today: date, *, active: bool = True) -> bool:
    """A pregnancy Condition, active (or, ``active=False``, one recorded as ended)."""
    conf = codes()["condition"]
    verification = codes_of(condition.verificationStatus)
    if verification and verification[0][1] in conf["excluded_verification_status"]:
        return False
    status = clinical_status(condition, today)
    is_active = status is None or status in conf["active_clinical_status"]
    if is_active is not active:
        return False
    coded = table["condition"]
    return has_code(condition.code, {"snomed": coded["snomed"]}) or (
        lookup_prefix(condition.code, "icd10", dict.fromkeys(coded["icd10"], True)) is not None
    )
