"""A FHIR stub for the no-prefetch path: one chart, served as searchset Bundles with fixed delays.

Each query for a resource type takes the same time on every call (``DELAYS``, spread evenly over
its pages), so the hook's total against its slowest query measures the service alone, not the
speed of a test server sharing the machine. It answers what the service's prefetch templates ask:
``Patient/{id}`` and ``{Type}?patient=...&_count=N`` (``code=a,b`` on Observations keeps the
resources with one of those codes), paged by ``_count`` with ``next`` links. Bound to 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

# Seconds per query (all its pages): the observation search is the slow one, as in EHRs.
DELAYS: Mapping[str, float] = {
    "Patient": 0.02,
    "Condition": 0.03,
    "Observation": 0.2,
    "MedicationStatement": 0.03,
    "MedicationRequest": 0.04,
    "MedicationAdministration": 0.05,
    "Procedure": 0.03,
}
DEFAULT_PAGE = 100


class FhirStub:
    """``with FhirStub(chart) as stub:`` serves ``chart`` at ``stub.base_url`` until the block ends."""

    def __init__(self, chart: list[dict[str, Any]], delays: Mapping[str, float] = DELAYS) -> None:
        self.by_type: dict[str, list[dict[str, Any]]] = {}
        for resource in chart:
            self.by_type.setdefault(resource["resourceType"], []).append(resource)
        self.delays = delays
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fhir-stub", daemon=True)

    def __enter__(self) -> FhirStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any], float]:
        """Status, body and how long to wait before sending it."""
        parts = [p for p in path.split("/") if p][1:]  # after "fhir"
        if len(parts) == 2:  # a read
            kind, ident = parts
            found = next((r for r in self.by_type.get(kind, []) if r.get("id") == ident), None)
            return (200, found, self.delays.get(kind, 0.02)) if found else (404, _outcome("not found"), 0.0)
        if len(parts) != 1:
            return 400, _outcome("unsupported query"), 0.0
        kind = parts[0]
        matches = self.by_type.get(kind, [])
        codes = {c for value in query.get("code", []) for c in value.split(",")}
        if codes:
            matches = [r for r in matches if codes & _codes(r)]
        profiles = {p for value in query.get("_profile", []) for p in value.split(",")}
        if profiles:
            matches = [r for r in matches if profiles & set((r.get("meta") or {}).get("profile") or [])]
        size = int(query.get("_count", [DEFAULT_PAGE])[0])
        page = int(query.get("_page", ["0"])[0])
        pages = max(1, -(-len(matches) // size))
        body: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in matches[page * size : (page + 1) * size]],
        }
        if page + 1 < pages:
            following = {key: values[0] for key, values in query.items()} | {"_page": str(page + 1)}
            body["link"] = [{"relation": "next", "url": f"{self.base_url}/{kind}?{urlencode(following)}"}]
        return 200, body, self.delays.get(kind, 0.02) / pages


def _codes(resource: dict[str, Any]) -> set[str]:
    return {str(c.get("code")) for c in (resource.get("code") or {}).get("coding") or []}


def _outcome(text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "not-found", "diagnostics": text}],
    }


def _handler(stub: FhirStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()  # headers and body go out as two writes: no Nagle wait between them
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlsplit(self.path)
            started = time.perf_counter()
            status, body, delay = stub.answer(url.path, parse_qs(url.query))
            data = orjson.dumps(body)
            time.sleep(max(0.0, delay - (time.perf_counter() - started)))
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
            return

    return Handler
