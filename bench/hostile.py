"""Hostile load: the service under gunicorn (and nginx) while attackers misbehave; unrelated calls must not fail.

    .venv/bin/python bench/hostile.py [--modes header-trickle,jwks-trickle,slowloris,jku-flood,rss] [--duration 10]

Every mode starts a fresh ``sarcoma-cds serve --workers 2 --threads 4`` on 127.0.0.1 (and, for
``slowloris``, Debian's nginx with ``deploy/nginx.conf``), runs attackers and *unrelated* callers side
by side for ``--duration`` seconds, and prints, per mode, the attackers' outcomes and the unrelated
calls' outcomes and latency. An unrelated call that does not get its expected status (200, or 401
for a token that must be refused) is an error; the script exits 1 if any mode had one.

- ``header-trickle``: attackers call the hook naming a FHIR server that sends its response headers
  one byte at a time; unrelated calls name a healthy FHIR server or carry full prefetch.
- ``jwks-trickle``: authentication on; attackers send tokens of an issuer whose ``jwks_uri`` trickles
  its headers, with key ids it does not know (each forces a refresh); unrelated calls carry valid
  tokens of another issuer, and ``/healthz`` is polled.
- ``slowloris``: through nginx, ``--slow`` connections (default 256) send their request one byte a
  second; unrelated calls go through nginx too.
- ``jku-flood``: authentication on; attackers send tokens with made-up ``jku`` URLs under the trusted
  issuer's allowed prefix; unrelated calls carry that issuer's valid tokens (its real ``jku``).
- ``rss``: 8 concurrent calls whose missing prefetch key the FHIR server answers with the largest
  answer allowed (just under ``CDS_FHIR_MAX_BYTES``); prints each worker's peak RSS (``VmHWM``)
  above its baseline (RSS after warm-up calls), to hold under 64 MB.

Everything it starts (servers, nginx, the service) is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from processes import ROOT, Servers, free_port, raise_on_signals, service_argv

from cds_service.config import Config
from fhir_fixtures.ehr import bundle_resources, hook_request, load_bundle, searchset

HOST = "127.0.0.1"
HOOK_PATH = "/cds-services/sarcoma-patient-view"
FIXTURE = ROOT / "fhir_fixtures" / "sts-iiia-thigh-tnm-only.json"
WORKERS, THREADS = 2, 4
MODES = ("header-trickle", "jwks-trickle", "slowloris", "jku-flood", "rss")
CLIENT_TIMEOUT_S = 30.0
RSS_LIMIT_MB = 64.0
MAX_BYTES = Config().fhir_max_bytes  # CDS_FHIR_MAX_BYTES, its default


# --- upstreams on 127.0.0.1 ----------------------------------------------------------------------------


class _Threaded(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def serve(handler: Callable[[str], tuple[int, bytes]]) -> ThreadingHTTPServer:
    """An HTTP server answering GET ``path`` with ``handler(path)`` (status, JSON body)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            status, body = handler(self.path)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the service hung up (deadline), as it may

        def log_message(self, *args: Any) -> None:
            pass

    server = _Threaded((HOST, 0), Handler)
    server.handle_error = lambda request, address: None  # type: ignore[method-assign]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def url_of(server: ThreadingHTTPServer | socket.socket, path: str = "") -> str:
    address = server.server_address if isinstance(server, ThreadingHTTPServer) else server.getsockname()
    return f"http://{HOST}:{address[1]}{path}"


def trickling_server(stop: threading.Event) -> socket.socket:
    """Accepts connections, reads the request, then sends a status line and one header byte every 0.1 s."""
    listener = socket.create_server((HOST, 0), backlog=512)

    def trickle(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65_536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not stop.wait(0.1):
                    conn.sendall(b"a")
            except OSError:
                return  # the service hung up at its deadline

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=trickle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener


class Chart:
    """The fixture patient, answered as a FHIR server would (``answer``) or sent as prefetch."""

    def __init__(self) -> None:
        self.resources = bundle_resources(load_bundle(FIXTURE))
        self.patient_id = next(r["id"] for r in self.resources if r["resourceType"] == "Patient")
        self.full = hook_request(FIXTURE)

    def answer(self, path: str) -> tuple[int, bytes]:
        parts = urlsplit(path).path.strip("/").split("/")  # fhir, Type[, id]
        kind = parts[1] if len(parts) > 1 else ""
        if len(parts) == 3:
            found = next((r for r in self.resources if r["resourceType"] == kind and r.get("id") == parts[2]), None)
            return (200, json.dumps(found).encode()) if found else (404, b"{}")
        return 200, json.dumps(searchset([r for r in self.resources if r["resourceType"] == kind])).encode()

    def missing(self, fhir_base: str, *keys: str) -> dict[str, Any]:
        """The full request naming ``fhir_base``, without the prefetch ``keys`` (so they are fetched)."""
        body = json.loads(json.dumps(self.full))
        body["hookInstance"] = str(uuid.uuid4())
        body["fhirServer"] = fhir_base
        for key in keys:
            del body["prefetch"][key]
        return body

    def largest_observations(self, limit: int) -> bytes:
        """A searchset of this patient's Observations (a padded note each), just under ``limit`` bytes."""
        subject = {"reference": f"Patient/{self.patient_id}"}
        one = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
            "subject": subject,
            "note": [{"text": "x" * 900}],
        }
        entry = json.dumps({"resource": one}).encode()
        head, tail = b'{"resourceType": "Bundle", "type": "searchset", "entry": [', b"]}"
        count = (limit - len(head) - len(tail) - 1024) // (len(entry) + 2)
        return head + b", ".join([entry] * count) + tail


# --- client tokens ----------------------------------------------------------------------------------------


class Issuer:
    def __init__(self, iss: str, kid: str) -> None:
        self.iss, self.kid = iss, kid
        self.key = ec.generate_private_key(ec.SECP384R1())

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True), "kid": self.kid, "use": "sig"}]}

    def token(self, audience: str, **header: Any) -> str:
        now = int(time.time())
        claims = {"iss": self.iss, "aud": audience, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
        return jwt.encode(claims, self.key, algorithm="ES384", headers={"kid": self.kid, "typ": "JWT", **header})


def unsigned(iss: str, kid: str, **header: Any) -> str:
    """A token whose key lookup is all the service gets to: its signature is never checked."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'ES384', 'typ': 'JWT', 'kid': kid, **header})}.{part({'iss': iss})}.c2ln"


# --- the run of one mode ------------------------------------------------------------------------------


@dataclass
class Outcomes:
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: str, expected: bool, seconds: float) -> None:
        with self.lock:
            self.statuses[outcome] += 1
            self.latencies.append(seconds)
            if not expected:
                self.errors[outcome] += 1

    def line(self) -> str:
        ordered = sorted(self.latencies) or [0.0]
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        statuses = " ".join(f"{k}={v}" for k, v in sorted(self.statuses.items()))
        return (
            f"{len(self.latencies)} calls, {sum(self.errors.values())} errors; "
            f"p50 {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"max {ordered[-1] * 1000:.0f} ms; "
            f"{statuses}"
        )


Call = Callable[[requests.Session], tuple[str, bool]]
"""One request: (outcome label, whether it is the expected one)."""


def post(url: str, body: dict[str, Any], expect: int, token: str | None = None, also: int | None = None) -> Call:
    data = json.dumps(body).encode()

    def call(session: requests.Session) -> tuple[str, bool]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = session.post(url, data=data, headers=headers, timeout=CLIENT_TIMEOUT_S)
        return str(response.status_code), response.status_code in (expect, also)

    return call


def loop(calls: Callable[[], Call], until: float, outcomes: Outcomes) -> None:
    with requests.Session() as session:
        session.trust_env = False
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                label, expected = calls()(session)
            except requests.RequestException as error:
                label, expected = type(error).__name__, False
            outcomes.add(label, expected, time.perf_counter() - started)


def run_side_by_side(
    attack: Callable[[], Call] | None, attackers: int, unrelated: Callable[[], Call], callers: int, seconds: float
) -> tuple[Outcomes, Outcomes]:
    attacked, normal = Outcomes(), Outcomes()
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=loop, args=(unrelated, until, normal), daemon=True) for _ in range(callers)]
    if attack is not None:
        threads += [
            threading.Thread(target=loop, args=(attack, until, attacked), daemon=True) for _ in range(attackers)
        ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + CLIENT_TIMEOUT_S + 5)
    return attacked, normal


@dataclass
class Service:
    base: str
    pid: int

    def workers(self) -> list[int]:
        try:
            return sorted(int(p) for p in Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split())
        except OSError:
            return []


@contextmanager
def service(servers: Servers, env: dict[str, str]) -> Iterator[Service]:
    port = free_port()
    base = f"http://{HOST}:{port}"
    folder = Path(tempfile.mkdtemp(prefix="cds-hostile-"))
    environment = {
        "CDS_FEEDBACK_DB": str(folder / "cds.sqlite3"),
        "CDS_LOG_LEVEL": "WARNING",
        "CDS_PUBLIC_BASE_URL": base,
        **env,
    }
    started = servers.start(f"service-{port}", service_argv(port, WORKERS, THREADS), port, environment)
    servers.wait_healthy(started)
    deadline = time.monotonic() + 30
    found = Service(base, started.process.pid)
    while len(found.workers()) < WORKERS and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        yield found
    finally:
        servers.stop_all()
        shutil.rmtree(folder, ignore_errors=True)


# --- the modes ----------------------------------------------------------------------------------------------


def header_trickle(servers: Servers, chart: Chart, seconds: float) -> tuple[Outcomes, Outcomes]:
    stop = threading.Event()
    slow, healthy = trickling_server(stop), serve(chart.answer)
    slow_base, healthy_base = url_of(slow, "/fhir"), url_of(healthy, "/fhir")
    try:
        with service(servers, {"CDS_ALLOWED_FHIR_SERVERS": f"{slow_base},{healthy_base}"}) as svc:
            url = svc.base + HOOK_PATH
            attack = post(url, chart.missing(slow_base, "conditions", "observations", "procedures"), 412)
            calls = [post(url, chart.missing(healthy_base, "conditions"), 200), post(url, chart.full, 200)]
            return run_side_by_side(lambda: attack, 16, alternate(calls), 4, seconds)
    finally:
        stop.set()
        slow.close()
        healthy.shutdown()


def alternate(calls: list[Call]) -> Callable[[], Call]:
    turn = iter(range(sys.maxsize))
    return lambda: calls[next(turn) % len(calls)]


def issuers_file(entries: list[dict[str, Any]]) -> str:
    path = Path(tempfile.mkdtemp(prefix="cds-issuers-")) / "issuers.json"
    path.write_text(json.dumps(entries))
    return str(path)


AUTH = {"CDS_AUTH_REQUIRED": "true"}


def jwks_trickle(servers: Servers, chart: Chart, seconds: float) -> tuple[Outcomes, Outcomes]:
    stop = threading.Event()
    slow = trickling_server(stop)
    trusted = Issuer("https://trusted.example.org", "t1")
    entries = [
        {"iss": "https://slow.example.org", "jwks_uri": url_of(slow, "/jwks.json")},
        {"iss": trusted.iss, "jwks": trusted.jwks()},
    ]
    try:
        with service(servers, {**AUTH, "CDS_TRUSTED_ISSUERS_FILE": issuers_file(entries)}) as svc:
            url = svc.base + HOOK_PATH

            def attack() -> Call:  # a kid never seen: every token asks for a refresh of the slow key set
                return post(url, chart.full, 401, unsigned("https://slow.example.org", f"k-{uuid.uuid4()}"))

            def unrelated() -> Call:
                return post(url, chart.full, 200, trusted.token(url))

            return run_side_by_side(attack, 16, with_health(svc.base, unrelated), 4, seconds)
    finally:
        stop.set()
        slow.close()


def with_health(base: str, make: Callable[[], Call]) -> Callable[[], Call]:
    """Every third unrelated call is a ``/healthz`` probe."""
    turn = iter(range(sys.maxsize))

    def health(session: requests.Session) -> tuple[str, bool]:
        response = session.get(base + "/healthz", timeout=CLIENT_TIMEOUT_S)
        return f"healthz:{response.status_code}", response.status_code == 200

    return lambda: health if next(turn) % 3 == 2 else make()


def jku_flood(servers: Servers, chart: Chart, seconds: float) -> tuple[Outcomes, Outcomes]:
    issuer = Issuer("https://ehr.example.org", "ehr-key")
    keys = serve(lambda path: (200, json.dumps(issuer.jwks()).encode()) if path == "/keys/jwks.json" else (404, b"{}"))
    real_jku = url_of(keys, "/keys/jwks.json")
    entries = [{"iss": issuer.iss, "jku": [url_of(keys, "/keys/")]}]
    try:
        with service(servers, {**AUTH, "CDS_TRUSTED_ISSUERS_FILE": issuers_file(entries)}) as svc:
            url = svc.base + HOOK_PATH
            assert post(url, chart.full, 200, issuer.token(url, jku=real_jku))(requests.Session())[1]

            def attack() -> Call:  # a made-up key set URL under the allowed prefix, a new one each time
                junk = url_of(keys, f"/keys/{uuid.uuid4()}.json")
                return post(url, chart.full, 401, unsigned(issuer.iss, "ehr-key", jku=junk))

            def unrelated() -> Call:
                return post(url, chart.full, 200, issuer.token(url, jku=real_jku))

            return run_side_by_side(attack, 8, unrelated, 4, seconds)
    finally:
        keys.shutdown()


def slowloris(servers: Servers, chart: Chart, seconds: float, slow: int) -> tuple[Outcomes, Outcomes]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("nginx is not installed: bash scripts/install-test-packages.sh")
    with service(servers, {}) as svc:
        port = free_port()
        folder = Path(tempfile.mkdtemp(prefix="cds-nginx-"))
        config = nginx_config(folder, port, int(svc.base.rsplit(":", 1)[1]))
        proxy = servers.start("nginx", [nginx, "-c", str(config), "-e", str(folder / "error.log")], port)
        servers.wait_healthy(proxy)
        stop = threading.Event()
        trickles = [
            threading.Thread(target=slow_client, args=(port, stop, n % 2 == 1), daemon=True) for n in range(slow)
        ]
        for thread in trickles:
            thread.start()
        time.sleep(1.0)
        try:
            url = f"http://{HOST}:{port}{HOOK_PATH}"
            return run_side_by_side(None, 0, lambda: post(url, chart.full, 200), 4, seconds)
        finally:
            stop.set()
            alive = sum(thread.is_alive() for thread in trickles)
            print(f"  slow connections still open at the end: {alive} of {slow}")


def nginx_config(folder: Path, listen: int, upstream: int) -> Path:
    """``deploy/nginx.conf`` (listen and upstream changed) inside a minimal main configuration."""
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    site = site.replace("server cds:8080;", f"server {HOST}:{upstream};").replace(
        "listen 8080;", f"listen {HOST}:{listen};"
    )
    temp = "\n".join(
        f"  {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""
    path = folder / "nginx.conf"
    path.write_text(
        f"{user}worker_processes 1;\npid {folder / 'nginx.pid'};\ndaemon off;\n"
        f"events {{ worker_connections 4096; }}\nhttp {{\n  access_log off;\n{temp}\n{site}\n}}\n"
    )
    return path


def slow_client(port: int, stop: threading.Event, finish_headers: bool) -> None:
    try:
        with socket.create_connection((HOST, port), timeout=5) as sock:
            head = f"POST {HOOK_PATH} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            if finish_headers:
                head += "Content-Length: 100000\r\n\r\n{"
            sock.sendall(head.encode())
            while not stop.wait(1.0):
                sock.sendall(b" " if finish_headers else b"X")
    except OSError:
        return  # nginx closed it (its header or body timeout)


def rss(servers: Servers, chart: Chart, seconds: float) -> tuple[Outcomes, Outcomes]:
    largest = chart.largest_observations(MAX_BYTES)
    print(f"  FHIR answer: {len(largest) / 1e6:.1f} MB (CDS_FHIR_MAX_BYTES {MAX_BYTES / 1e6:.0f} MB)")
    big = serve(lambda path: (200, largest))
    base = url_of(big, "/fhir")
    try:
        with service(servers, {"CDS_ALLOWED_FHIR_SERVERS": base, "CDS_FHIR_DEADLINE_S": "20"}) as svc:
            url = svc.base + HOOK_PATH
            run_side_by_side(None, 0, lambda: post(url, chart.full, 200), 8, 2.0)  # both workers warmed up
            baseline = {pid: status_mb(pid, "VmRSS") for pid in svc.workers()}
            big_call = post(url, chart.missing(base, "observations"), 200, also=412)  # 412: no room left in time
            _, outcomes = run_side_by_side(None, 0, lambda: big_call, 8, seconds)
            for pid, before in baseline.items():
                peak = status_mb(pid, "VmHWM")
                print(f"  worker {pid}: baseline {before:.0f} MB, peak {peak:.0f} MB, +{peak - before:.0f} MB")
            worst = max(status_mb(pid, "VmHWM") - before for pid, before in baseline.items())
            verdict = "PASS" if worst <= RSS_LIMIT_MB else "FAIL"
            print(f"  peak RSS above baseline, worst worker: {worst:.0f} MB (limit {RSS_LIMIT_MB:.0f} MB): {verdict}")
            if worst > RSS_LIMIT_MB:
                outcomes.errors["rss-over-limit"] += 1
            return Outcomes(), outcomes
    finally:
        big.shutdown()


def status_mb(pid: int, field_name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Hostile load modes on 127.0.0.1 (see the module docstring).")
    parser.add_argument("--modes", default=",".join(MODES), help=f"among {','.join(MODES)}")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per mode (default 10, at most 120)")
    parser.add_argument("--slow", type=int, default=256, help="slow connections in slowloris (default 256)")
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    if set(modes) - set(MODES) or not 0 < args.duration <= 120 or not 0 < args.slow <= 1000:
        parser.error(f"modes among {','.join(MODES)}, duration in (0, 120], slow in 1..1000")
    raise_on_signals()
    chart = Chart()
    failed = False
    with Servers(Path(tempfile.mkdtemp(prefix="cds-hostile-logs-"))) as servers:
        for mode in modes:
            print(f"{mode}:", flush=True)
            if mode == "header-trickle":
                attacked, normal = header_trickle(servers, chart, args.duration)
            elif mode == "jwks-trickle":
                attacked, normal = jwks_trickle(servers, chart, args.duration)
            elif mode == "slowloris":
                attacked, normal = slowloris(servers, chart, args.duration, args.slow)
            elif mode == "jku-flood":
                attacked, normal = jku_flood(servers, chart, args.duration)
            else:
                attacked, normal = rss(servers, chart, args.duration)
            if attacked.latencies:
                print(f"  attackers: {attacked.line()}")
            print(f"  unrelated: {normal.line()}", flush=True)
            failed |= bool(normal.errors)
    print("FAIL: unrelated calls had errors" if failed else "PASS: 0 errors for unrelated calls in every mode")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
