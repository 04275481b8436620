"""Observations grouped by what they report (T, N, M, stage, grade, size, ECOG ...), in one pass.

Grouping and dating read the raw JSON; validation with ``fhir.resources`` happens newest-first,
only as far as the summary reads (``Readings``). Most facts are "the latest usable reading", so a
chart with hundreds of ECOG scores validates the few it uses, not all of them (FHIR validation is
most of a hook call's cost). Invalid readings met on the way become findings; readings never
reached are not used, so their validity does not matter to any fact.

A TNM staging panel (``codes.yaml`` ``staging_panel``) gives its T, N, M and stage-group components
as readings of those kinds: the whole panel is validated, each component read with the panel's date,
focus, method and status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache, cached_property
from typing import Any

from fhir.resources.R4B.observation import Observation

from cds_service.bundle import is_object
from cds_service.summary.codes import codes
from cds_service.summary.concepts import has_code, lookup, normal_code
from cds_service.summary.context import Context
from cds_service.summary.dates import first_date, to_date
from cds_service.summary.model import Finding, FindingKind
from cds_service.summary.parse import Entry, named_kind, profile_kind, validate

NOT_RESULTS = frozenset({"entered-in-error", "cancelled"})
PANEL = "staging_panel"
PANEL_PARTS = frozenset({"t", "n", "m", "stage"})
ASSESSMENT_PARTS = frozenset({"ecog", "karnofsky"})  # components of a panel of no kind read (nursing assessment)
_Pending = tuple[date | None, str, Mapping[str, Any], int | None]  # when, ref, raw, panel component
FACT_KEY = {"size": "tumour_size_cm", "karnofsky": "ecog"}  # kind -> PatientSummary field


@dataclass(frozen=True)
class Reading:
    """One usable Observation: reference, date, and the model for value access. What it is about,
    whether it is pathological and its AJCC edition are read once, as the summary asks again and again."""

    ref: str
    when: date | None
    observation: Observation

    @cached_property
    def focus(self) -> frozenset[str]:
        return frozenset(f.reference for f in self.observation.focus or () if f.reference)

    @cached_property
    def pathological(self) -> bool:
        return has_code(self.observation.code, codes()["pathological_codes"])

    @cached_property
    def edition(self) -> int | None:
        """AJCC edition from Observation.method (897275008 = 8th, 443830009 = 7th ...)."""
        found = lookup(self.observation.method, codes()["editions"])
        return None if found is None else int(found[0])


@cache
def _kind_index() -> Mapping[tuple[str, str], str]:
    kinds: Mapping[str, Mapping[str, tuple[str, ...]]] = codes()["observation_kinds"]
    return {
        (system, code): kind
        for kind, by_system in kinds.items()
        for system, group in by_system.items()
        for code in group
    }


@cache
def _kind_by_uri() -> Mapping[tuple[str, str], str]:
    """``_kind_index`` by system URI and code as written, for the codes ``normal_code`` leaves as they are."""
    systems: Mapping[str, str] = codes()["systems"]
    index = _kind_index()
    return {
        (uri, code): kind
        for uri, name in systems.items()
        for (system, code), kind in index.items()
        if system == name and normal_code(uri, code) == (name, code)
    }


def _coding_kind(system: Any, code: Any) -> str | None:
    """What a coding reports (``_kind_index``), looked up as written when it can be."""
    if type(system) is str and type(code) is str and (kind := _kind_by_uri().get((system, code))) is not None:
        return kind
    return _kind_index().get(normal_code(system, code))


def _raw_kind(raw: Mapping[str, Any]) -> str | None:
    """What an Observation reports, from raw JSON before validation: by its code, else by the mCODE
    profile it declares, else by the name of its code."""
    code = raw.get("code")
    codings = code.get("coding") if is_object(code) else None
    for coding in codings if isinstance(codings, list) else ():
        if is_object(coding) and coding.get("code") is not None:
            kind = _coding_kind(coding.get("system"), coding["code"])
            if kind is not None:
                return kind
    return profile_kind(raw) or named_kind(raw)


def _raw_date(raw: Mapping[str, Any]) -> date | None:
    """When an Observation applies, from raw JSON: effective[x], else issued."""
    when = to_date(raw.get("effectiveDateTime"))
    if when is not None:  # the usual case: one look-up
        return when
    period = raw.get("effectivePeriod")
    start, end = (period.get("start"), period.get("end")) if is_object(period) else (None, None)
    return first_date(start, end, raw.get("effectiveInstant"), raw.get("issued"))


class _Validated:
    """One kind's raw Observations, newest first, validated on demand and remembered."""

    def __init__(self, kind: str, pending: list[_Pending], ctx: Context, models: dict[str, Any]) -> None:
        self._kind = kind
        self._pending = sorted(pending, key=lambda item: (item[0] or date.min, item[1]), reverse=True)
        self._next = 0
        self._done: list[Reading] = []
        self._ctx = ctx
        self._models = models  # by reference, shared by every kind: a staging panel is validated once

    def _validated(self, ref: str, raw: Mapping[str, Any]) -> Observation | None:
        if ref not in self._models:
            self._models[ref] = validate("Observation", ref, raw, self._ctx)
        observation: Observation | None = self._models[ref]
        return observation

    def reading(self, index: int) -> Reading | None:
        """The index-th valid reading, validating further entries only if needed."""
        while len(self._done) <= index and self._next < len(self._pending):
            when, ref, raw, part = self._pending[self._next]
            self._next += 1
            observation = self._validated(ref, raw)
            if observation is not None and part is not None:
                observation = _component(observation, part)
            if observation is None:
                why = f"{ref} could not be read; an older reading may have been used."
                self._ctx.incomplete(f"Observation:{self._kind}", why, (ref,))
            else:
                self._done.append(Reading(ref, when, observation))
        return self._done[index] if index < len(self._done) else None


class Readings:
    """A kind's usable readings, newest first (undated last, ties by reference), lazily validated."""

    def __init__(self, source: _Validated | None = None, keep: Callable[[Reading], bool] | None = None) -> None:
        self._source = source
        self._keep = keep

    def __iter__(self) -> Iterator[Reading]:
        index = 0
        while self._source is not None and (reading := self._source.reading(index)) is not None:
            index += 1
            if self._keep is None or self._keep(reading):
                yield reading

    def where(self, keep: Callable[[Reading], bool]) -> Readings:
        """The readings ``keep`` accepts, in the same order, still validated on demand."""
        outer = self._keep
        return Readings(self._source, keep if outer is None else lambda r: outer(r) and keep(r))


class ByKind(dict[str, Readings]):
    """Readings by kind; a kind with none recorded gives an empty ``Readings``."""

    def __missing__(self, kind: str) -> Readings:
        return Readings()


def by_kind(entries: Iterable[Entry[Mapping[str, Any]]], ctx: Context) -> ByKind:
    """Usable Observations by kind; entered-in-error/cancelled dropped, future-dated ones reported."""
    pending: dict[str, list[_Pending]] = {}
    for entry in entries:
        raw = entry.resource
        kind = _raw_kind(raw)
        status = raw.get("status")
        if isinstance(status, str) and status in NOT_RESULTS:
            continue
        parts = _parts(kind, raw)
        if not parts:
            continue
        when = _raw_date(raw)
        if when is not None and when > ctx.today:
            ctx.add(
                Finding(
                    FindingKind.INVALID,
                    FACT_KEY.get(about := parts[0][0], about),
                    "dated in the future; ignored",
                    (entry.ref,),
                )
            )
            continue
        for part_kind, part in parts:
            pending.setdefault(part_kind, []).append((when, entry.ref, raw, part))
    models: dict[str, Observation | None] = {}
    return ByKind({kind: Readings(_Validated(kind, items, ctx, models)) for kind, items in pending.items()})


def _parts(kind: str | None, raw: Mapping[str, Any]) -> tuple[tuple[str, int | None], ...]:
    """The kinds an Observation reports: its own; for a staging panel, those of its components; for
    one of no kind (a local assessment panel), its performance-status components."""
    if kind is not None and kind != PANEL:
        return ((kind, None),)
    wanted = PANEL_PARTS if kind == PANEL else ASSESSMENT_PARTS
    components = raw.get("component")
    found: list[tuple[str, int | None]] = []
    for i, component in enumerate(components if isinstance(components, list) else ()):
        part = _raw_kind(component) if is_object(component) else None
        if part in wanted:
            found.append((part, i))
    return tuple(found)


def _component(panel: Observation, index: int) -> Observation | None:
    """The panel's ``index``-th component as an Observation of its own (code and value[x])."""
    components = panel.component or []
    if index >= len(components):
        return None
    part = components[index]
    values = {name: getattr(part, name, None) for name in Observation.model_fields if name.startswith("value")}
    return panel.model_copy(update={"code": part.code, "component": None, **values})
