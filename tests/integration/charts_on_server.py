"""Patient files put on one FHIR server side by side, each under ids of its own.

``resources_of(bundle)`` reads a patient file (collection or transaction Bundle) as a server
would store it: references by ``fullUrl`` (``urn:uuid:…``) become ``Type/id``. ``Chart.of(name,
resources)`` gives those resources ids no other file shares: every id gets a prefix derived from the
chart's name (a prefix, not a suffix, so ids sort as they did and nothing ordered by id changes),
and every reference to a resource of the file (``Type/id``, or an absolute URL ending in it) is
rewritten to match; other references (``#contained``, outside the file) are kept.

``load(server, charts)`` PUTs every chart's resources in transaction Bundles and returns, per chart,
the entries the server refused (none, normally). ``prefetch_from(session, server, patient_id)``
fills the service's prefetch templates from the server as an EHR would: every page, one searchset per
key.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from cds_service.bundle import bundle_resources, next_link
from cds_service.prefetch import fill_template
from cds_service.protocol.services import prefetch_templates
from fhir_fixtures.ehr import MEDICATION_USES

if TYPE_CHECKING:
    from conftest import FhirServer

MAX_ID = 64  # FHIR R4 id length
BATCH_ENTRIES = 400


@dataclass(frozen=True)
class Chart:
    name: str
    patient_id: str  # on the server
    resources: tuple[dict[str, Any], ...]  # as the server stores them

    @classmethod
    def of(cls, name: str, resources: Iterable[Mapping[str, Any]]) -> Chart:
        prefix = "c" + hashlib.sha256(name.encode()).hexdigest()[:10]
        originals = [copy.deepcopy(dict(r)) for r in resources]
        new_ids = {(r["resourceType"], r["id"]): _prefixed(prefix, r["id"]) for r in originals}
        renamed = [_renamed(r, new_ids) for r in originals]
        patient = next(r["id"] for r in renamed if r["resourceType"] == "Patient")
        return cls(name, patient, tuple(renamed))


def _prefixed(prefix: str, ident: str) -> str:
    new = f"{prefix}-{ident}"
    return new if len(new) <= MAX_ID else f"{prefix}-{hashlib.sha256(ident.encode()).hexdigest()[:32]}"


def _renamed(resource: dict[str, Any], new_ids: Mapping[tuple[str, str], str]) -> dict[str, Any]:
    targets = {f"{kind}/{old}": f"{kind}/{new}" for (kind, old), new in new_ids.items()}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: walk(v) for k, v in value.items()}
            ref = out.get("reference")
            if isinstance(ref, str):
                tail = "/".join(ref.rsplit("/", 2)[-2:])  # an absolute URL's Type/id
                out["reference"] = targets.get(ref) or (targets.get(tail, ref) if "://" in ref else ref)
            return out
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    renamed = walk(resource)
    renamed["id"] = new_ids[(resource["resourceType"], resource["id"])]
    return renamed


def resources_of(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A file's resources, each with an id (one is made for an entry without), and references by
    ``fullUrl`` (``urn:uuid:…``) turned into ``Type/id``, as a server resolves them in a transaction."""
    entries = [dict(e) for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict)]
    for n, entry in enumerate(entries):
        if not entry["resource"].get("id"):
            entry["resource"] = {**entry["resource"], "id": f"entry-{n}"}
    by_url = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries if e.get("fullUrl")
    }

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: walk(v) for k, v in value.items()}
            if isinstance(out.get("reference"), str) and out["reference"] in by_url:
                out["reference"] = by_url[out["reference"]]
            return out
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return [walk(e["resource"]) for e in entries]


def has_coded_medications(resources: Iterable[Mapping[str, Any]]) -> bool:
    return any(r["resourceType"] in MEDICATION_USES and "medicationCodeableConcept" in r for r in resources)


def load(server: FhirServer, charts: Iterable[Chart]) -> dict[str, list[str]]:
    """PUT every chart's resources; the refused entries per chart name (normally none).

    ``transaction`` Bundles of a few hundred entries (one database transaction each: fast); a chunk
    the server refuses is sent again as a ``batch``, entry by entry, to name what it refuses."""
    entries = [(chart.name, resource) for chart in charts for resource in chart.resources]
    chunks = [entries[i : i + BATCH_ENTRIES] for i in range(0, len(entries), BATCH_ENTRIES)]
    refused: dict[str, list[str]] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for chunk_refused in pool.map(lambda chunk: _put(server, chunk), chunks):
            for name, what in chunk_refused:
                refused.setdefault(name, []).append(what)
    return refused


def _put(server: FhirServer, chunk: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
    headers = {**server.headers, "Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
    requests_ = [{"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"} for _, r in chunk]
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": r, "request": q} for (_, r), q in zip(chunk, requests_, strict=True)],
    }
    if requests.post(server.base_url, json=bundle, headers=headers, timeout=300).status_code == 200:
        return []
    response = requests.post(server.base_url, json={**bundle, "type": "batch"}, headers=headers, timeout=300)
    assert response.status_code == 200, response.text[:800]
    answers = [str(a.get("response", {}).get("status", "")) for a in response.json().get("entry", [])]
    assert len(answers) == len(chunk), "the batch response lacks entries"
    return [
        (name, f"{q['url']}: {status}")
        for (name, _), q, status in zip(chunk, requests_, answers, strict=True)
        if not status.startswith(("200", "201"))
    ]


def _searchset(session: requests.Session, server: FhirServer, first: dict[str, Any]) -> dict[str, Any]:
    """One searchset of every page, ``first`` and those its ``next`` links lead to."""
    found: list[dict[str, Any]] = []
    page: dict[str, Any] | None = first
    while page is not None:
        found += bundle_resources(page)
        url = next_link(page)
        page = None
        if url:
            response = session.get(url, headers=server.headers, timeout=60)
            response.raise_for_status()
            page = response.json()
    entries = [{"resource": r, "search": {"mode": "match"}} for r in found]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


def prefetch_from(session: requests.Session, server: FhirServer, patient_id: str) -> dict[str, Any]:
    """The service's prefetch templates filled as an EHR would: the queries in one ``batch`` Bundle
    (one round trip), then every further page; a key whose query fails is an OperationOutcome."""
    context = {"patientId": patient_id, "userId": "Practitioner/itest"}
    queries = {key: fill_template(template, context) for key, template in prefetch_templates().items()}
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": query}} for query in queries.values()],
    }
    headers = {**server.headers, "Content-Type": "application/fhir+json"}
    response = session.post(server.base_url, json=bundle, headers=headers, timeout=60)
    assert response.status_code == 200, response.text[:800]
    answers = response.json().get("entry", [])
    assert len(answers) == len(queries), "the batch response lacks entries"
    prefetch: dict[str, Any] = {}
    for key, answer in zip(queries, answers, strict=True):
        body = answer.get("resource") or answer.get("response", {}).get("outcome")
        assert isinstance(body, dict), f"no answer to {queries[key]}"
        prefetch[key] = _searchset(session, server, body) if body.get("resourceType") == "Bundle" else body
    return prefetch
