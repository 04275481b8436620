"""Reads the EHR's FHIR server when prefetch is missing (CDS Hooks 2.0 "FHIR Resource Access").

Every request goes through the service's one outbound client (``outbound.fetch``): one deadline over
connect, headers and body, no cookies, netrc or proxies, no redirects. Per hook call, the answers
of all queries and pages share one byte budget (``CDS_FHIR_MAX_BYTES``); page counts are capped;
``next`` links are followed only within the same FHIR server. Every fault is a ``FhirFetchError``
whose reason the 412 shows.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson
import requests

from ..bundle import MalformedBundle, bundle_resources, next_link
from ..outbound import ByteBudget, DeadlinePassed, NoRoom, NotPublic, OutboundError, TooLarge, fetch
from ..outbound import Deadline as Deadline  # re-exported: gather and the hook view take it from here
from ..outbound import new_session as new_session  # the app's session (create_app, bench)
from .policy import url_within

if TYPE_CHECKING:
    from ..metrics import Metrics

ACCEPT = "application/fhir+json, application/json"
BEARER_TOKEN = re.compile(r"[\x21-\x7e]{1,8192}")  # visible ASCII: what an Authorization header can carry


class FhirFetchError(Exception):
    """A FHIR query that gave no usable answer; ``reason`` is safe to show the client, ``outcome`` is
    its kind for the metrics (``metrics.FETCH_OUTCOMES``)."""

    def __init__(self, reason: str, outcome: str = "malformed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.outcome = outcome


def _outcome_of(error: OutboundError) -> str:
    if isinstance(error, DeadlinePassed):
        return "timeout"
    if isinstance(error, TooLarge):
        return "too-large"
    return "not-public" if isinstance(error, NotPublic) else "unreachable"


class FhirClient:
    """Queries one FHIR server on behalf of one hook call.

    ``max_bytes`` bounds the answers of all its queries and pages together (``budget``, which may also
    draw on the worker's memory for answers), ``max_pages`` each
    search; ``public_only`` refuses a server whose address is loopback, link-local or private (for
    servers allowed by ``CDS_ALLOW_ANY_FHIR_SERVER`` rather than listed). ``metrics`` (when on) counts
    each request by resource type and outcome, and the pages and resources read.
    """

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        *,
        token: str | None,
        timeout_s: float,
        max_pages: int,
        max_bytes: int,
        public_only: bool = False,
        metrics: Metrics | None = None,
        budget: ByteBudget | None = None,
    ) -> None:
        self.session = session
        self.metrics = metrics
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.max_pages = max_pages
        self.max_bytes = max_bytes
        self.public_only = public_only
        self.budget = budget or ByteBudget(max_bytes)

    def read(self, query: str, deadline: Deadline, resource_type: str = "") -> list[dict[str, Any]]:
        """Run a relative query (read or search) for ``resource_type``; return resources, following all pages."""
        return [resource for page in self.read_pages(query, deadline, resource_type) for resource in page]

    def read_pages(self, query: str, deadline: Deadline, resource_type: str = "") -> Iterator[list[dict[str, Any]]]:
        """``read``, page by page: each page's resources as soon as it has arrived."""
        url = f"{self.base_url}/{query.lstrip('/')}"
        body = self._get(url, deadline, resource_type)
        if body.get("resourceType") != "Bundle":
            found = [] if body.get("resourceType") == "OperationOutcome" else [body]
            self._count(resource_type, pages=0, resources=len(found))
            yield found
            return
        yield from self.follow_pages(body, deadline, resource_type)

    def follow(self, bundle: dict[str, Any], deadline: Deadline, resource_type: str = "") -> Iterator[dict[str, Any]]:
        """Yield the resources of a searchset and of its ``next`` pages, up to the page cap."""
        for page in self.follow_pages(bundle, deadline, resource_type):
            yield from page

    def follow_pages(
        self, bundle: dict[str, Any], deadline: Deadline, resource_type: str = ""
    ) -> Iterator[list[dict[str, Any]]]:
        """``follow``, page by page; the next page is asked for when this one has been taken."""
        pages = 0
        while True:
            try:
                resources = list(bundle_resources(bundle))
                self._count(resource_type, pages=0, resources=len(resources))
                next_url = next_link(bundle)
            except MalformedBundle as error:
                raise FhirFetchError(f"the FHIR server sent a malformed Bundle ({error})") from None
            yield resources
            if next_url is None:
                return
            pages += 1
            if pages >= self.max_pages:
                raise FhirFetchError(f"more than {self.max_pages} pages", "too-large")
            if not self._within_server(next_url):
                raise FhirFetchError("a 'next' link points outside the FHIR server")
            bundle = self._get(next_url, deadline, resource_type)
            if bundle.get("resourceType") != "Bundle":
                raise FhirFetchError("a 'next' page is not a Bundle")

    def _within_server(self, url: str) -> bool:
        """Same server and under its base path (no ``..`` escapes), by the allow-list's own rule."""
        return url_within(url.split("?", 1)[0], self.base_url)

    def _headers(self) -> dict[str, str]:
        if not self.token:
            return {"Accept": ACCEPT}
        if not BEARER_TOKEN.fullmatch(self.token):
            raise FhirFetchError(
                "the access token cannot be sent: it holds characters a bearer token may not", "bad-token"
            )
        return {"Accept": ACCEPT, "Authorization": f"Bearer {self.token}"}

    def _count(self, resource_type: str, *, pages: int, resources: int) -> None:
        if self.metrics is not None:
            self.metrics.fhir_read(resource_type, pages=pages, resources=resources)

    def _get(self, url: str, deadline: Deadline, resource_type: str) -> dict[str, Any]:
        """One request, timed and counted by outcome; a Bundle answer counts as a page."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            body = self._request(url, deadline)
        except FhirFetchError as error:
            outcome = error.outcome
            raise
        finally:
            if self.metrics is not None:
                self.metrics.fhir_request(resource_type, outcome, time.perf_counter() - started)
        if body.get("resourceType") == "Bundle":
            self._count(resource_type, pages=1, resources=0)
        return body

    def _request(self, url: str, deadline: Deadline) -> dict[str, Any]:
        try:
            answer = fetch(
                self.session,
                url,
                deadline=deadline,
                timeout_s=self.timeout_s,
                max_bytes=self.max_bytes,
                headers=self._headers(),
                budget=self.budget,
                public_only=self.public_only,
            )
        except NoRoom as error:
            raise FhirFetchError(f"the FHIR server's {error.reason}", "busy") from None
        except TooLarge:
            raise FhirFetchError(
                f"the FHIR server's answers are too large (more than {self.max_bytes} bytes in all)", "too-large"
            ) from None
        except OutboundError as error:
            raise FhirFetchError(f"the FHIR server {error.reason}", _outcome_of(error)) from None
        if answer.status in (401, 403):
            raise FhirFetchError(f"the FHIR server refused the access token (HTTP {answer.status})", "token-refused")
        if answer.status != 200:
            raise FhirFetchError(f"the FHIR server answered HTTP {answer.status}", "http-error")
        try:
            body = orjson.loads(answer.body)  # nesting deeper than 1024 is malformed, not a RecursionError
        except orjson.JSONDecodeError:
            raise FhirFetchError("the FHIR server sent malformed JSON") from None
        if not isinstance(body, dict):
            raise FhirFetchError("the FHIR server sent JSON that is not a resource")
        return body
