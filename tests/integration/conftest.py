"""Integration fixtures: a real FHIR R4 server for the session, and a recording proxy per test.

``fhir_server`` is the server the tests read. Unless ``FHIR_BASE_URL`` names an external one (for
example the docker-compose HAPI at ``http://localhost:8090/fhir``, with ``FHIR_TOKEN`` if it needs a
bearer token), the session installs and starts sekmet-fhir through ``scripts/fhir-test-server.sh``
on a free port with a state folder of its own, and stops it at the end whatever happened. Every
``fhir_fixtures/*.json`` bundle is loaded first (``FHIR_LOAD_FIXTURES=0`` skips that for an
external server that already holds them).

``fhir_proxy`` sits between the service and that server and records each request, so a test can
assert which queries the service made; stopping it makes the FHIR server unreachable for that
test alone.

``postgres_server`` and ``redis_server`` are PostgreSQL and Redis for the session: the servers
named by ``CDS_TEST_DATABASE_URL`` / ``CDS_TEST_REDIS_URL``, else Debian's, started on free loopback
ports in a temporary folder (``servers``) and stopped at the end. ``postgres_url`` gives each test
a schema of its own on that server, dropped afterwards.
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import psycopg
import pytest
import requests
from servers import ServerError, start_postgres, start_redis, with_search_path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SCRIPT = ROOT / "scripts" / "fhir-test-server.sh"
FIXTURES = ROOT / "fhir_fixtures"
TOKEN = "test-token"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration talks to a real server: mark it so ``-m`` can pick it."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


@dataclass(frozen=True)
class FhirServer:
    base_url: str
    token: str | None

    @property
    def headers(self) -> dict[str, str]:
        """Request headers that pass the server's bearer check."""
        accept = {"Accept": "application/fhir+json"}
        return {**accept, "Authorization": f"Bearer {self.token}"} if self.token else accept


def _script(*args: str, env: dict[str, str], timeout: float, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        pytest.fail(
            f"{SCRIPT.name} {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}", pytrace=False
        )
    return done


def _check_external(server: FhirServer) -> None:
    """Fail once, clearly, rather than in every test when the external server cannot be read."""
    try:
        url = f"{server.base_url}/Patient"
        response = requests.get(url, params={"_count": "1"}, headers=server.headers, timeout=30)
    except requests.RequestException as error:
        pytest.fail(f"FHIR_BASE_URL {server.base_url} cannot be reached: {error}", pytrace=False)
    if response.status_code in (401, 403):
        reason = f"FHIR_BASE_URL answered {response.status_code}: set FHIR_TOKEN to a token it accepts"
        pytest.fail(reason, pytrace=False)


def _load_fixtures(server: FhirServer, env: dict[str, str]) -> None:
    """Load every fixture with the product's own command, so ``load-fixtures`` is tested for real."""
    token = ["--token", server.token] if server.token else []
    command = [
        sys.executable,
        "-m",
        "cds_service.cli",
        "load-fixtures",
        "--fhir",
        server.base_url,
        *token,
        str(FIXTURES),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        pytest.fail(
            f"sarcoma-cds load-fixtures failed ({done.returncode}):\n{done.stdout}\n{done.stderr}", pytrace=False
        )


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    env = dict(os.environ)
    external = os.environ.get("FHIR_BASE_URL", "").strip()
    if external:
        server = FhirServer(external.rstrip("/"), os.environ.get("FHIR_TOKEN") or None)
        _check_external(server)
        if os.environ.get("FHIR_LOAD_FIXTURES", "1") != "0":
            _load_fixtures(server, env)
        yield server
        return
    env.update(FHIR_SERVER_STATE=str(tmp_path_factory.mktemp("fhir-server")), FHIR_SERVER_TOKEN=TOKEN)
    _script("install", env=env, timeout=900)
    try:
        started = _script("start", "--port", "auto", env=env, timeout=120)
        server = FhirServer(started.stdout.strip().splitlines()[-1], TOKEN)
        _load_fixtures(server, env)
        yield server
    finally:
        _script("stop", env=env, timeout=60, check=False)


@dataclass(frozen=True)
class Recorded:
    """One request as the FHIR server received it; ``path`` is relative to the FHIR base."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    status: int

    def param(self, name: str) -> list[str]:
        return [value for key, value in self.query if key == name]

    @property
    def resource_type(self) -> str:
        return self.path.split("/", 1)[0]


class RecordingProxy:
    """Forwards to ``upstream`` over plain HTTP and records method, path, query and status.

    Absolute URLs of the upstream base in responses (``next`` links, ``fullUrl``, ``Location``) are
    rewritten to the proxy's, so a client following them stays on the proxy. ``delay_s`` holds each
    answer back, to exercise deadlines.
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream.rstrip("/"))
        if parts.scheme != "http":
            raise ValueError("RecordingProxy forwards to http:// servers only")
        self.upstream = upstream.rstrip("/")
        self._upstream_host = parts.hostname or "127.0.0.1"
        self._upstream_port = parts.port or 80
        self._prefix = parts.path
        self.requests: list[Recorded] = []
        self.delay_s = 0.0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}{self._prefix}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the listening socket: later connections are refused."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def searches(self, resource_type: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == resource_type and r.method == "GET"]

    def _forward(
        self, method: str, target: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        if self.delay_s:
            time.sleep(self.delay_s)
        connection = http.client.HTTPConnection(self._upstream_host, self._upstream_port, timeout=60)
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            return response.status, response.getheaders(), payload
        finally:
            connection.close()

    def _record(self, method: str, target: str, status: int) -> None:
        path, _, query = target.partition("?")
        relative = path[len(self._prefix) :].strip("/") if path.startswith(self._prefix) else path.strip("/")
        entry = Recorded(method, relative, tuple(parse_qsl(query, keep_blank_values=True)), status)
        with self._lock:
            self.requests.append(entry)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in HOP_BY_HOP | {"host", "content-length", "accept-encoding"}
                }
                try:
                    status, reply_headers, payload = proxy._forward(self.command, self.path, headers, body)
                except OSError:
                    proxy._record(self.command, self.path, 502)
                    self.send_error(502, "FHIR server unreachable")
                    return
                proxy._record(self.command, self.path, status)
                payload = payload.replace(proxy.upstream.encode(), proxy.base_url.encode())
                self.send_response(status)
                for key, value in reply_headers:
                    if key.lower() not in HOP_BY_HOP | {"content-length", "content-encoding", "server", "date"}:
                        self.send_header(key, value.replace(proxy.upstream, proxy.base_url))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _relay

            def log_message(self, format: str, *args: object) -> None:  # keep test output clean
                return

        return Handler


@pytest.fixture
def fhir_proxy(fhir_server: FhirServer) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(fhir_server.base_url)
    try:
        yield proxy
    finally:
        proxy.stop()


# --- PostgreSQL and Redis -------------------------------------------------------------------------


def _session_server(setting: str, start: object, prefix: str) -> Iterator[str]:
    external = os.environ.get(setting, "").strip()
    if external:
        yield external
        return
    folder = Path(tempfile.mkdtemp(prefix=prefix))  # in /tmp: the postgres user can reach it
    try:
        try:
            url, stop = start(folder)  # type: ignore[operator]
        except ServerError as error:
            pytest.fail(str(error), pytrace=False)
        try:
            yield url
        finally:
            stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    yield from _session_server("CDS_TEST_DATABASE_URL", start_postgres, "cds-postgres-")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    yield from _session_server("CDS_TEST_REDIS_URL", start_redis, "cds-redis-")


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A schema of this test's own, so tests never see each other's rows, on a session server or not."""
    schema = f"cds_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(postgres_server, schema)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's Redis: tests use names of their own (uuids), so they never see each other's keys."""
    return redis_server


def hook_request(
    patient_id: str, fhir_server: str, token: str | None, prefetch: dict[str, Any], scope: str = "patient/*.read"
) -> dict[str, Any]:
    """A patient-view call naming ``fhir_server``, with the bearer token the EHR would grant (if any)."""
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"patientId": patient_id, "userId": "Practitioner/itest"},
        "fhirServer": fhir_server,
        "prefetch": prefetch,
    }
    if token:
        body["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": scope,
            "subject": "sarcoma-cds",
        }
    return body
