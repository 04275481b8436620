"""Reads the EHR's FHIR server when prefetch is missing (CDS Hooks 2.0 "FHIR Resource Access").

One pooled ``requests`` session per process; every call is bounded by a per-request timeout and
by the hook call's overall deadline; redirects are not followed; bodies and page counts are
capped; ``next`` links are followed only within the same FHIR server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .policy import url_within


class FhirFetchError(Exception):
    """A FHIR query that gave no usable answer; ``reason`` is safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Deadline:
    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()


def new_session(pool_size: int = 32) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"Accept": "application/fhir+json, application/json"})
    return session


class FhirClient:
    """Queries one FHIR server on behalf of one hook call."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        *,
        token: str | None,
        timeout_s: float,
        max_pages: int,
        max_bytes: int,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.max_pages = max_pages
        self.max_bytes = max_bytes

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

    def _get(self, url: str, deadline: Deadline) -> dict[str, Any]:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise FhirFetchError("deadline passed")
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        timeout = min(self.timeout_s, remaining)
        try:
            with self.session.get(
                url, headers=headers, timeout=timeout, stream=True, allow_redirects=False
            ) as response:
                if response.status_code in (401, 403):
                    raise FhirFetchError(f"the FHIR server refused the access token (HTTP {response.status_code})")
                if response.status_code != 200:
                    raise FhirFetchError(f"the FHIR server answered HTTP {response.status_code}")
                raw = self._read_capped(response, deadline)
        except requests.Timeout:
            raise FhirFetchError("the FHIR server did not answer in time") from None
        except requests.RequestException:
            raise FhirFetchError("the FHIR server could not be reached") from None
        try:
            body = json.loads(raw)
        except ValueError:
            raise FhirFetchError("the FHIR server sent malformed JSON") from None
        if not isinstance(body, dict):
            raise FhirFetchError("the FHIR server sent JSON that is not a resource")
        return body

    def _read_capped(self, response: requests.Response, deadline: Deadline) -> bytes:
        """The body, read in whatever pieces arrive (``read1``), so the deadline is checked at
        least once per socket timeout even when a server trickles bytes; a full-size ``read``
        would wait for the whole buffer and hold the worker thread long after the deadline."""
        chunks: list[bytes] = []
        size = 0
        while chunk := response.raw.read1(65536, decode_content=True):
            size += len(chunk)
            if size > self.max_bytes:
                raise FhirFetchError("the FHIR server's answer is too large")
            if deadline.remaining() <= 0:
                raise FhirFetchError("the FHIR server did not answer in time")
            chunks.append(chunk)
        return b"".join(chunks)


class MalformedBundle(ValueError):
    """A Bundle whose ``entry`` or ``link`` is not an array."""


def _array(bundle: dict[str, Any], name: str) -> list[Any]:
    value = bundle.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedBundle(f"Bundle.{name} must be an array")
    return value


def bundle_resources(bundle: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The matched and included resources of a Bundle (search outcomes skipped)."""
    for entry in _array(bundle, "entry"):
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        mode = (entry.get("search") or {}).get("mode") if isinstance(entry.get("search"), dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
            # A search result never nests Bundles; allowing it would hide resources from the
            # same-patient check (gather.check_patient).
            raise MalformedBundle("a Bundle entry holds another Bundle")
        if isinstance(resource, dict) and mode != "outcome" and resource.get("resourceType") != "OperationOutcome":
            yield resource


def next_link(bundle: dict[str, Any]) -> str | None:
    for link in _array(bundle, "link"):
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            if isinstance(url, str):
                return url
    return None
