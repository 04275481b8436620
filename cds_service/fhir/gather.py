"""Collects the patient's resources: prefetch first, the FHIR server for what is missing.

Prefetch semantics (CDS Hooks 2.0 "Prefetch tokens" and "FHIR Resource Access"):
- a key that is absent: the client did not satisfy it, so the service queries the FHIR server;
- ``null``: the client found no data;
- an OperationOutcome: the client's own query failed; not re-queried, reported as unavailable;
- a searchset Bundle may be paginated: ``next`` links are followed with the bearer token.
If needed data can be neither prefetched nor fetched, the call fails with 412.

A medication record may name its drug by ``medicationReference`` ("Medication/abc") rather than a
code. Once the queries are in, the Medication resources referenced but not already present (in a
prefetch Bundle, or contained) are read from ``fhirServer`` with ``Medication?_id=a,b,c``, in chunks,
under the same client, deadline, byte budget and page cap. That read never fails the call: when it
fails, ``Medication`` is reported unavailable and the therapy facts rest on partial data (G7).

Fetched resources are validated page by page as the pages land (``summary.parse.precheck``, one
task per page on the fetch executor), while the query's further pages and slower queries are still
on the wire, so the summary starts from checked resources once the last page is in. A query counts
as answered in time when its last page arrives, however long checking it then takes. A supplement
query (Observations by profile beside those by code) mostly finds again what its template query
found, and those copies are dropped once all is in: its pages wait until the template's have all
landed, or its own last page has, and only what the template had not delivered is checked.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass, field
from functools import partial
from threading import Event
from typing import Any

from ..bundle import MalformedBundle, bundle_resources, next_link, referenced_id, referenced_patient
from ..errors import InvalidRequest, PrefetchUnavailable
from ..outbound import Busy, UpstreamSlots
from ..prefetch import fill_template
from ..protocol.request import HookRequest
from ..protocol.services import ServiceDefinition
from ..summary.parse import MEDICATION_USES, precheck
from ..summary.validate import shared_elements
from .client import Deadline, FhirClient, FhirFetchError


@dataclass
class Gathered:
    resources: list[dict[str, Any]] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # resource type -> why the EHR could not give it
    fetched: list[str] = field(default_factory=list)  # keys read from the FHIR server


ClientFactory = Callable[[HookRequest], FhirClient]

MEDICATION_IDS_PER_QUERY = 50  # keeps each query's URL short (ids are at most 64 characters)
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # R4 id: never a comma, so ids join safely in _id


def gather(
    request: HookRequest,
    service: ServiceDefinition,
    *,
    client_for: ClientFactory,
    executor: Executor,
    deadline: Deadline,
    slots: UpstreamSlots | None = None,
) -> Gathered:
    """``slots``: each FHIR server's share of ``executor``; a query waits for a slot of its server (in
    the calling thread, never in one of the executor's) at most until ``deadline``."""
    result = Gathered()
    missing: list[str] = []
    paged: dict[str, dict[str, Any]] = {}
    for key in service.prefetch:
        if key not in request.prefetch:
            missing.append(key)
            continue
        value = request.prefetch[key]
        if value is None:
            continue
        kind = value.get("resourceType")
        if kind == "OperationOutcome":
            result.unavailable[service.resource_type(key)] = "its query answered with an error"
        elif kind == "Bundle":
            try:
                result.resources.extend(bundle_resources(value))
                if next_link(value):
                    paged[key] = value
            except MalformedBundle as error:
                raise InvalidRequest(f"'prefetch.{key}': {error}", expression=[f"prefetch.{key}"]) from None
        elif isinstance(kind, str):
            result.resources.append(value)
        else:
            raise InvalidRequest(
                f"'prefetch.{key}' is not a FHIR resource (no resourceType)", expression=[f"prefetch.{key}"]
            )

    if (missing or paged) and request.fhir_server is None:
        raise PrefetchUnavailable(
            "Prefetch is incomplete and the request names no fhirServer to read the rest from: "
            + ", ".join(sorted([*missing, *(f"{k} (further pages)" for k in paged)])),
            expression=[f"prefetch.{key}" for key in sorted([*missing, *paged])],
        )
    client: FhirClient | None = None
    if missing or paged:
        client = client_for(request)
        _fetch(request, service, missing, paged, result, client, executor, deadline, slots)
    wanted = referenced_medications(result.resources)
    if wanted and request.fhir_server is not None:
        client = client or client_for(request)
        _read_medications(wanted, result, client, executor, deadline, slots)
    check_patient(request.patient_id, result.resources)
    return result


def _fetch(
    request: HookRequest,
    service: ServiceDefinition,
    missing: list[str],
    paged: dict[str, dict[str, Any]],
    result: Gathered,
    client: FhirClient,
    executor: Executor,
    deadline: Deadline,
    slots: UpstreamSlots | None,
) -> None:
    futures: dict[str, Future[list[Future[list[dict[str, Any]]]]]] = {}
    answered = {label: Event() for key in missing for label, _ in _queries(service, key)}
    answered.update((key, Event()) for key in paged)
    failures: dict[str, str] = {}
    # What each query with a supplement has delivered so far: the supplement's copies of these are
    # dropped once all is in (``_new``), so they are not checked.
    delivered: dict[str, set[tuple[str, str]]] = {key: set() for key in missing if key in service.supplements}

    def follow_pages(first_page: dict[str, Any], resource_type: str) -> Iterator[list[dict[str, Any]]]:
        return client.follow_pages(_without_entries(first_page), deadline, resource_type)

    def fetch_and_check(
        key: str, fetch: Callable[[], Iterable[list[dict[str, Any]]]]
    ) -> list[Future[list[dict[str, Any]]]]:
        if key != _key_of(key):
            return fetch_supplement(key, fetch)
        seen = delivered.get(key)
        checks: list[Future[list[dict[str, Any]]]] = []
        for page in fetch():
            if seen is not None:
                seen.update(_identities(page))
            checks.append(executor.submit(_checked, page))
        answered[key].set()
        return checks

    def fetch_supplement(
        label: str, fetch: Callable[[], Iterable[list[dict[str, Any]]]]
    ) -> list[Future[list[dict[str, Any]]]]:
        """A supplement's pages wait, unchecked, until its query's own have all landed or its own last
        page has; then only what that query has not delivered is checked."""
        key = _key_of(label)
        seen, complete = delivered[key], answered[key]
        held: list[list[dict[str, Any]]] = []
        checks: list[Future[list[dict[str, Any]]]] = []
        for page in fetch():
            held.append(page)
            if complete.is_set():
                checks += [executor.submit(_checked, _unseen(page, seen)) for page in held]
                held.clear()
        checks += [executor.submit(_checked, _unseen(page, seen)) for page in held]
        answered[label].set()
        return checks

    def submit(key: str, task: Callable[[], Iterable[list[dict[str, Any]]]]) -> None:
        waited = time.perf_counter()
        if failures or (slots is not None and not _slot(slots, client.base_url, deadline)):
            failures[key] = f"the FHIR server {Busy.reason}"
            if client.metrics is not None:
                client.metrics.fhir_request(service.resource_type(_key_of(key)), "busy", time.perf_counter() - waited)
            return
        futures[key] = future = executor.submit(fetch_and_check, key, task)
        if slots is not None:  # also when cancelled before it ran
            future.add_done_callback(lambda done: slots.release(client.base_url, answered=_answered(done)))

    for key in missing:
        for label, template in _queries(service, key):
            query = fill_template(template, request.context)
            submit(label, partial(client.read_pages, query, deadline, service.resource_type(key)))
    for key, bundle in paged.items():
        submit(key, partial(follow_pages, bundle, service.resource_type(key)))
    # A query refused for want of a slot fails the call: its request thread is not held for the rest.
    wait(futures.values(), timeout=0 if failures else max(deadline.remaining(), 0))
    gave_up = bool(failures) and deadline.remaining() > 0
    for key, future in futures.items():
        if not future.done() and not answered[key].is_set():
            future.cancel()
            failures[key] = (
                "the FHIR server had not answered when another query found it busy"
                if gave_up
                else "the FHIR server did not answer in time"
            )
            continue
        try:
            checks = future.result()
            for check in checks:  # an answered query: waits only for its checking
                found = check.result()
                result.resources.extend(found if key in service.prefetch else _new(found, result.resources))
            if key in service.prefetch:
                result.fetched.append(key)
        except FhirFetchError as error:
            failures[key] = error.reason
    if failures:
        keys = sorted({_key_of(label) for label in failures})
        raise PrefetchUnavailable(
            "Could not obtain: " + "; ".join(f"{label}: {why}" for label, why in sorted(failures.items())),
            expression=[f"prefetch.{key}" for key in keys],
        )


SUPPLEMENT = " (further query)"


def _queries(service: ServiceDefinition, key: str) -> list[tuple[str, str]]:
    """The queries that fill ``key``: its template and any supplement, each with its label."""
    queries = [(key, service.prefetch[key])]
    if key in service.supplements:
        queries.append((key + SUPPLEMENT, service.supplements[key]))
    return queries


def _key_of(label: str) -> str:
    return label.removesuffix(SUPPLEMENT)


def _identity(resource: dict[str, Any]) -> tuple[str, str] | None:
    """(resourceType, id) when both are text; any other resource is never skipped."""
    kind, ident = resource.get("resourceType"), resource.get("id")
    return (kind, ident) if type(kind) is str and type(ident) is str else None


def _identities(page: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for resource in page:
        if (identity := _identity(resource)) is not None:
            yield identity


def _unseen(page: list[dict[str, Any]], seen: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """The page less what ``seen`` holds: resources ``_new`` would drop after checking them."""
    return [r for r in page if (identity := _identity(r)) is None or identity not in seen]


def _new(found: list[dict[str, Any]], held: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``found`` less what ``held`` already has (a supplement finds some of its template's resources)."""
    have = {(r.get("resourceType"), r.get("id")) for r in held}
    return [r for r in found if (r.get("resourceType"), r.get("id")) not in have]


def referenced_medications(resources: Iterable[dict[str, Any]]) -> list[str]:
    """Ids of the Medication resources the medication records reference ("Medication/abc", absolute or
    versioned) that are not among ``resources``; contained ones (``#med``) travel with their record."""
    present = {r["id"] for r in resources if r.get("resourceType") == "Medication" and isinstance(r.get("id"), str)}
    wanted: set[str] = set()
    for resource in resources:
        if resource.get("resourceType") not in MEDICATION_USES:
            continue
        reference = resource.get("medicationReference")
        target = reference.get("reference") if isinstance(reference, dict) else None
        ident = referenced_id(target, "Medication")
        if ident is not None and FHIR_ID.fullmatch(ident) and ident not in present:
            wanted.add(ident)
    return sorted(wanted)


def _read_medications(
    wanted: list[str],
    result: Gathered,
    client: FhirClient,
    executor: Executor,
    deadline: Deadline,
    slots: UpstreamSlots | None,
) -> None:
    """Read the referenced Medications, one query per chunk of ids, all at once; a failure marks
    ``Medication`` unavailable (never a 412: the records that reference them are in hand)."""
    chunks = [wanted[i : i + MEDICATION_IDS_PER_QUERY] for i in range(0, len(wanted), MEDICATION_IDS_PER_QUERY)]
    futures: list[Future[list[dict[str, Any]]]] = []
    late = False
    for chunk in chunks:
        if slots is not None and not _slot(slots, client.base_url, deadline):
            late = True
            break
        query = f"Medication?_id={','.join(chunk)}&_count={len(chunk)}"
        future = executor.submit(_read_checked, client, query, deadline, frozenset(chunk))
        if slots is not None:
            future.add_done_callback(lambda done: slots.release(client.base_url, answered=_answered(done)))
        futures.append(future)
    done, pending = wait(futures, timeout=max(deadline.remaining(), 0))
    for future in pending:
        future.cancel()
    failed = False
    for future in done:
        try:
            result.resources.extend(future.result())
        except FhirFetchError as error:
            late = late or error.outcome in ("timeout", "busy")
            failed = True
    if late or pending:
        result.unavailable["Medication"] = "they did not arrive in time"
    elif failed:
        result.unavailable["Medication"] = "reading them failed"


def _read_checked(client: FhirClient, query: str, deadline: Deadline, wanted: frozenset[str]) -> list[dict[str, Any]]:
    """The Medications asked for, checked; anything else a server sends (one ignoring ``_id``) is dropped."""
    return [
        precheck(resource)
        for page in client.read_pages(query, deadline, "Medication")
        for resource in page
        if resource.get("resourceType") == "Medication" and resource.get("id") in wanted
    ]


def _checked(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with shared_elements():
        return [precheck(resource) for resource in page]


def _answered(done: Future[Any]) -> bool:
    """Whether a finished fetch got an answer from its server (any answer: a 500 is progress too)."""
    if done.cancelled():
        return False
    error = done.exception()
    return error is None or (isinstance(error, FhirFetchError) and error.outcome not in ("timeout", "busy"))


def _slot(slots: UpstreamSlots, url: str, deadline: Deadline) -> bool:
    """A slot of ``url``'s share taken before ``deadline``; one freed only as the deadline passed (the
    watchdog cut its read) is given back: a query started then could only time out at once."""
    if not slots.acquire(url, deadline):
        return False
    if deadline.remaining() > 0:
        return True
    slots.release(url)
    return False


def _without_entries(bundle: dict[str, Any]) -> dict[str, Any]:
    """The first page's entries are already taken; keep only its links to follow ``next``."""
    return {"resourceType": "Bundle", "link": bundle.get("link") or []}


def check_patient(patient_id: str, resources: Iterable[dict[str, Any]]) -> None:
    """Refuse data about another patient than context.patientId (mixing charts is unsafe)."""
    # The usual subject, "Patient/<the id>", passes at a glance (an id holds no "/" to read otherwise).
    usual: object = f"Patient/{patient_id}" if "/" not in patient_id else object()
    for resource in resources:
        if resource.get("resourceType") == "Patient":
            other = resource.get("id")
        else:
            subject = resource.get("subject")
            if type(subject) is dict and subject.get("reference") == usual:
                continue
            other = referenced_patient(subject) or referenced_patient(resource.get("patient"))
        if other is not None and other != patient_id:
            raise InvalidRequest(
                f"prefetch holds a {resource.get('resourceType')} of another patient than context.patientId",
                expression=["prefetch"],
            )
