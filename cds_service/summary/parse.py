"""Raw FHIR JSON -> validated ``fhir.resources`` R4B models, bucketed by type in one pass.

Only the types the summary reads are kept. Observations are kept only when their code is one the
summary uses (``codes.yaml`` ``observation_kinds``), so a chart of thousands of labs and vitals
costs a dictionary lookup each; they stay raw here and are validated newest-first as far as the
summary reads them (``observations.Readings``). Other resources are validated here (``validate``:
the same models and verdicts as ``fhir.resources``, faster). Invalid resources become
``Finding(INVALID)`` and are skipped; duplicates (same type and id) are reduced to one, chosen
independently of input order. Resources fetched from the FHIR server arrive already checked
(``precheck``, run page by page by ``fhir.gather`` while further pages are on the wire).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Generic, TypeVar

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure

from cds_service.bundle import MalformedBundle, entries, is_object
from cds_service.summary.codes import codes
from cds_service.summary.context import Context
from cds_service.summary.model import Finding, FindingKind
from cds_service.summary.validate import MODELS, Prechecked, check

R = TypeVar("R")
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# the records of a drug given, ordered or handed over (a pharmacy's dispenses of an oral drug)
MEDICATION_USES = ("MedicationStatement", "MedicationRequest", "MedicationAdministration", "MedicationDispense")


@dataclass(frozen=True)
class Entry(Generic[R]):
    """A validated resource and its reference ("Observation/tnm-t") for provenance."""

    ref: str
    resource: R


@dataclass(frozen=True)
class Chart:
    """The resources the summary reads, each bucket sorted by reference."""

    patient: str | None
    person: Patient | None  # the Patient resource, for age and death
    conditions: tuple[Entry[Condition], ...]
    observations: tuple[Entry[Mapping[str, Any]], ...]  # raw: validated when read
    medication_uses: tuple[Entry[Any], ...]
    medications: Mapping[str, Medication]
    procedures: tuple[Entry[Procedure], ...] = ()
    reports: tuple[Entry[DiagnosticReport], ...] = ()  # imaging and pathology reports (their conclusion)
    structures: Mapping[str, Any] = field(default_factory=dict)  # mCODE tumours (BodyStructure) by reference


@cache
def _observation_codes() -> frozenset[str]:
    kinds: Mapping[str, Mapping[str, tuple[str, ...]]] = codes()["observation_kinds"]
    return frozenset(code for by_system in kinds.values() for group in by_system.values() for code in group)


def _flatten(resources: Iterable[Any]) -> Iterator[Any]:
    """Resources, with Bundle entries unpacked (a searchset passed through unchanged is common)."""
    for item in resources:
        if is_object(item) and item.get("resourceType") == "Bundle":
            try:
                yield from _flatten(entry.get("resource") for entry in entries(item))
            except MalformedBundle:
                continue  # an entry that is not an array holds nothing to read
        else:
            yield item


@cache
def _profile_kinds() -> Mapping[str, str]:
    profiles: Mapping[str, tuple[str, ...]] = codes()["observation_profiles"]
    return {url: kind for kind, urls in profiles.items() for url in urls}


def profile_kind(raw: Mapping[str, Any]) -> str | None:
    """The kind an Observation's declared mCODE profile fixes (``codes.yaml`` ``observation_profiles``)."""
    meta = raw.get("meta")
    declared = meta.get("profile") if is_object(meta) else None
    if not isinstance(declared, list):
        return None
    kinds = _profile_kinds()
    return next((kinds[p.split("|")[0]] for p in declared if isinstance(p, str) and p.split("|")[0] in kinds), None)


@cache
def _name_kinds() -> Mapping[str, str]:
    names: Mapping[str, tuple[str, ...]] = codes()["observation_names"]
    return {name: kind for kind, group in names.items() for name in group}


def named_kind(raw: Mapping[str, Any]) -> str | None:
    """The kind an Observation's code names in words, its text or a coding's display (``codes.yaml``
    ``observation_names``): a performance status under a local code."""
    code = raw.get("code")
    if not is_object(code):
        return None
    codings = code.get("coding")
    codings = codings if isinstance(codings, list) else []
    names = [code.get("text"), *(c.get("display") for c in codings if is_object(c))]
    kinds = _name_kinds()
    for name in names:
        if isinstance(name, str) and (kind := kinds.get(" ".join(re.findall(r"[a-z0-9]+", name.lower())))):
            return kind
    return None


def _has_code_read(concept: Any) -> bool:
    codings = concept.get("coding") if is_object(concept) else None
    wanted = _observation_codes()
    return isinstance(codings, list) and any(is_object(c) and str(c.get("code")) in wanted for c in codings)


def _is_relevant_observation(raw: Mapping[str, Any]) -> bool:
    """Coded, profiled or named as a kind the summary reads, or holding a component that is (a panel)."""
    if _has_code_read(raw.get("code")) or profile_kind(raw) is not None or named_kind(raw) is not None:
        return True
    components = raw.get("component")
    return isinstance(components, list) and any(is_object(c) and _has_code_read(c.get("code")) for c in components)


def _canonical(raw: Mapping[str, Any]) -> str:
    return json.dumps(raw, sort_keys=True, default=str)


def _reference(kind: str, raw: Mapping[str, Any]) -> str:
    """ "Type/id"; a resource without a valid FHIR id gets a stable content hash instead (ids reach
    card text, so only the FHIR id alphabet is let through)."""
    ident = raw.get("id")
    if isinstance(ident, str) and FHIR_ID.fullmatch(ident):
        return f"{kind}/{ident}"
    return f"{kind}/#" + hashlib.sha1(_canonical(raw).encode()).hexdigest()[:12]


def _preferred(a: Mapping[str, Any], b: Mapping[str, Any]) -> Mapping[str, Any]:
    """Of two copies of one resource keep the later ``meta.lastUpdated``, then the larger JSON text."""

    def key(raw: Mapping[str, Any]) -> tuple[str, str]:
        meta = raw.get("meta")
        updated = meta.get("lastUpdated") if isinstance(meta, Mapping) else None
        return (str(updated or ""), _canonical(raw))

    return a if key(a) >= key(b) else b


def _collect(resources: Iterable[Any], ctx: Context) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """Single pass: keep the types the summary reads, deduplicated by reference."""
    kept: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for raw in _flatten(resources):
        if not is_object(raw) or not isinstance(raw.get("resourceType"), str):
            ctx.add(Finding(FindingKind.INVALID, "resource", "an entry is not a FHIR resource"))
            continue
        kind = raw["resourceType"]
        if kind not in MODELS or (kind == "Observation" and not _is_relevant_observation(raw)):
            continue
        ref = _reference(kind, raw)
        kept[ref] = (kind, _preferred(kept[ref][1], raw) if ref in kept else raw)
    return kept


def precheck(raw: Any) -> Any:
    """``raw``, carrying its validation outcome (``Prechecked``) if it is a resource the summary may
    validate (Observations: those of a code it reads); anything else unchanged. For the fetch
    threads, which check each page while further pages are on the wire: the summary then starts
    from checked resources, and reports about them what it would have found itself (an
    Observation's outcome still counts only if the summary reads it)."""
    kind = raw.get("resourceType") if isinstance(raw, dict) else None
    if not isinstance(kind, str) or kind not in MODELS:
        return raw
    if kind == "Observation" and not _is_relevant_observation(raw):
        return raw
    return Prechecked(raw, check(kind, raw))


def validate(kind: str, ref: str, raw: Mapping[str, Any], ctx: Context) -> Any | None:
    """The validated model, or ``None`` with an INVALID finding naming the failing fields."""
    checked = check(kind, raw)
    resource = checked.model
    if resource is None:
        ctx.add(Finding(FindingKind.INVALID, "resource", checked.problem or "could not be read; ignored", (ref,)))
        return None
    allowed = codes()["statuses"].get(kind)
    status = getattr(resource, "status", None)
    if allowed is not None and status is not None and status not in allowed:
        ctx.add(Finding(FindingKind.INVALID, "resource", "has an unknown status; ignored", (ref,)))
        return None
    return resource


def element(resource: Any, name: str) -> Any:
    """The resource's element ``name``, or ``None`` where its type has no such element (asked of
    the model's fields: a pydantic model answers an unknown attribute slowly, through an exception)."""
    cls = type(resource)
    names = _FIELD_NAMES.get(cls)
    if names is None:  # read once per class: ``model_fields`` goes through pydantic's metaclass each time
        names = _FIELD_NAMES[cls] = frozenset(cls.model_fields)
    return getattr(resource, name) if name in names else None


_FIELD_NAMES: dict[type, frozenset[str]] = {}  # model class -> its field names (``element``)


def _patient(patients: list[str], subjects: set[str], ctx: Context) -> str | None:
    if len(patients) > 1:
        ctx.add(Finding(FindingKind.CONTRADICTION, "patient", "more than one Patient resource", tuple(patients)))
    if patients:
        return patients[0]
    return next(iter(subjects)) if len(subjects) == 1 else None


def read_chart(resources: Iterable[Mapping[str, Any]], ctx: Context) -> Chart:
    """Validate and bucket the resources; never raises on bad data."""
    buckets: dict[str, list[Entry[Any]]] = {kind: [] for kind in MODELS}
    subjects: set[str] = set()
    for ref, (kind, raw) in sorted(_collect(resources, ctx).items()):
        if kind == "Observation":
            buckets[kind].append(Entry(ref, raw))
            continue
        resource = validate(kind, ref, raw, ctx)
        if resource is None:
            continue
        buckets[kind].append(Entry(ref, resource))
        subject = getattr(resource, "subject", None)
        if subject is not None and subject.reference:
            subjects.add(subject.reference)
    uses = tuple(entry for kind in MEDICATION_USES for entry in buckets[kind])
    return Chart(
        patient=_patient([e.ref for e in buckets["Patient"]], subjects, ctx),
        person=buckets["Patient"][0].resource if buckets["Patient"] else None,
        conditions=tuple(buckets["Condition"]),
        observations=tuple(buckets["Observation"]),
        medication_uses=tuple(sorted(uses, key=lambda e: e.ref)),
        medications={e.ref: e.resource for e in buckets["Medication"]},
        procedures=tuple(buckets["Procedure"]),
        reports=tuple(buckets["DiagnosticReport"]),
        structures={e.ref: e.resource for e in buckets["BodyStructure"]},
    )
