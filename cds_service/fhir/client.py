"""Reads the EHR's FHIR server when prefetch is missing (CDS Hooks 2.0 "FHIR Resource Access").

Every request goes through the service's one outbound client (``outbound.fetch``): one deadline over
connect, headers and body, no cookies, netrc or proxies, no redirects. Per hook call, the answers
of all queries and pages share one byte budget (``CDS_FHIR_MAX_BYTES``); page counts are capped;
``next`` links are followed only within the same FHIR server. Every fault is a ``FhirFetchError``
whose reason the 412 shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson
import requests

from ..bundle import MalformedBundle, bundle_resources, next_link
from ..outbound import ByteBudget, OutboundError, TooLarge, fetch
from ..outbound import Deadline as Deadline  # re-exported: gather and the hook view take it from here
from ..outbound import new_session as new_session  # the app's session (create_app, bench)
from .policy import url_within

ACCEPT = "application/fhir+json, application/json"
BEARER_TOKEN = re.compile(r"[\x21-\x7e]{1,8192}")  # visible ASCII: what an Authorization header can carry


class FhirFetchError(Exception):
    """A FHIR query that gave no usable answer; ``reason`` is safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FhirClient:
    """Queries one FHIR server on behalf of one hook call.

    ``max_bytes`` bounds the answers of all its queries and pages together, ``max_pages`` each
    search; ``public_only`` refuses a server whose address is loopback, link-local or private (for
    servers allowed by ``CDS_ALLOW_ANY_FHIR_SERVER`` rather than listed).
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
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.max_pages = max_pages
        self.max_bytes = max_bytes
        self.public_only = public_only
        self.budget = ByteBudget(max_bytes)

    def read(self, query: str, deadline: Deadline) -> list[dict[str, Any]]:
        """Run a relative query (read or search); return resources, following all pages."""
        url = f"{self.base_url}/{query.lstrip('/')}"
        body = self._get(url, deadline)
        if body.get("resourceType") != "Bundle":
            return [] if body.get("resourceType") == "OperationOutcome" else [body]
        return list(self.follow(body, deadline))

    def follow(self, bundle: dict[str, Any], deadline: Deadline) -> Iterator[dict[str, Any]]:
        """Yield the resources of a searchset and of its ``next`` pages, up to the page cap."""
        pages = 0
        while True:
            try:
                yield from bundle_resources(bundle)
                next_url = next_link(bundle)
            except MalformedBundle as error:
                raise FhirFetchError(f"the FHIR server sent a malformed Bundle ({error})") from None
            if next_url is None:
                return
            pages += 1
            if pages >= self.max_pages:
                raise FhirFetchError(f"more than {self.max_pages} pages")
            if not self._within_server(next_url):
                raise FhirFetchError("a 'next' link points outside the FHIR server")
            bundle = self._get(next_url, deadline)
            if bundle.get("resourceType") != "Bundle":
                raise FhirFetchError("a 'next' page is not a Bundle")

    def _within_server(self, url: str) -> bool:
        """Same server and under its base path (no ``..`` escapes), by the allow-list's own rule."""
        return url_within(url.split("?", 1)[0], self.base_url)

    def _headers(self) -> dict[str, str]:
        if not self.token:
            return {"Accept": ACCEPT}
        if not BEARER_TOKEN.fullmatch(self.token):
            raise FhirFetchError("the access token cannot be sent: it holds characters a bearer token may not")
        return {"Accept": ACCEPT, "Authorization": f"Bearer {self.token}"}

    def _get(self, url: str, deadline: Deadline) -> dict[str, Any]:
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
        except TooLarge:
            raise FhirFetchError(
                f"the FHIR server's answers are too large (more than {self.max_bytes} bytes in all)"
            ) from None
        except OutboundError as error:
            raise FhirFetchError(f"the FHIR server {error.reason}") from None
        if answer.status in (401, 403):
            raise FhirFetchError(f"the FHIR server refused the access token (HTTP {answer.status})")
        if answer.status != 200:
            raise FhirFetchError(f"the FHIR server answered HTTP {answer.status}")
        try:
            body = orjson.loads(answer.body)  # nesting deeper than 1024 is malformed, not a RecursionError
        except orjson.JSONDecodeError:
            raise FhirFetchError("the FHIR server sent malformed JSON") from None
        if not isinstance(body, dict):
            raise FhirFetchError("the FHIR server sent JSON that is not a resource")
        return body
