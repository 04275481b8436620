"""Reading FHIR JSON as it arrives: a Bundle's entries and resources, its next page, and the patient
a reference names. The one reader for the hook's prefetch, the FHIR client's pages, the summary and
the fixture tooling; it imports nothing from the service, so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeGuard


def is_object(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """Whether ``value`` is a JSON object: a ``dict`` as parsed, tested first because it is the usual
    case and ``isinstance`` against the ``Mapping`` ABC costs several times more, or another Mapping."""
    return type(value) is dict or isinstance(value, Mapping)


class MalformedBundle(ValueError):
    """A Bundle whose ``entry`` or ``link`` is not an array, or that nests another Bundle."""


def _array(bundle: Mapping[str, Any], name: str) -> list[Any]:
    value = bundle.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedBundle(f"Bundle.{name} must be an array")
    return value


def entries(bundle: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The entries of a Bundle that are JSON objects (with or without a resource)."""
    return [entry for entry in _array(bundle, "entry") if type(entry) is dict or isinstance(entry, Mapping)]


def bundle_resources(bundle: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The matched and included resources of a Bundle (search outcomes and OperationOutcomes skipped)."""
    for entry in entries(bundle):
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        kind = resource.get("resourceType")
        if kind == "Bundle":
            # A search result never nests Bundles; allowing it would hide resources from the
            # same-patient check (gather.check_patient).
            raise MalformedBundle("a Bundle entry holds another Bundle")
        search = entry.get("search")
        mode = search.get("mode") if type(search) is dict or isinstance(search, Mapping) else None
        if mode != "outcome" and kind != "OperationOutcome":
            yield resource


def next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in _array(bundle, "link"):
        if isinstance(link, Mapping) and link.get("relation") == "next":
            url = link.get("url")
            if isinstance(url, str):
                return url
    return None


def referenced_id(ref: Any, kind: str) -> str | None:
    """The id a literal reference names for a resource type: "Medication/m1", absolute
    ("https://ehr/fhir/Medication/m1") or versioned ("Medication/m1/_history/2"), else ``None``."""
    marker = f"{kind}/"
    if type(ref) is not str or marker not in ref:
        return None
    return ref.rsplit(marker, 1)[1].split("/", 1)[0] or None


def referenced_patient(reference: Any) -> str | None:
    """The id in a reference to a Patient (``{"reference": "Patient/p1"}``, absolute or versioned),
    else ``None``."""
    if type(reference) is not dict and not isinstance(reference, Mapping):
        return None
    return referenced_id(reference.get("reference"), "Patient")
