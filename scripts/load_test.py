"""Load and fault test of the CDS service under gunicorn, on 127.0.0.1 only, bounded in time.

What it does:
1. starts a fake FHIR server on 127.0.0.1 (a ``ThreadingHTTPServer``) that answers the service's
   queries from a fixture patient, in one of four modes: ``ok``; ``slow`` (sleeps 3 s, beyond the
   deadline); ``error`` (HTTP 500); ``down`` (requests go to a closed port);
2. starts the service: ``.venv/bin/sarcoma-cds serve --port P --workers N`` with
   ``CDS_FHIR_DEADLINE_S=1`` and ``CDS_ALLOWED_FHIR_SERVERS`` set to the fake server;
3. for each mode and each concurrency level (default 1, 8, 32) runs a load generator for
   ``--duration`` seconds: one thread and one ``requests.Session`` per simulated client, sending in
   turn a full-prefetch request built from the fixture, and a no-prefetch request that makes the
   service read the fake FHIR server;
4. reports per scenario: requests, status counts, failures, p50/p95/p99/max latency, the latency
   bound, and the RSS of the gunicorn workers before and after (from /proc).

Correct outcomes: 200 for full-prefetch requests; for no-prefetch requests 200 in mode ``ok`` and
200 or 412 in the fault modes (412 is the spec's answer when data cannot be fetched). Anything else
(5xx, another status, a connection error or client timeout) is a failure. The latency bound is
deadline + margin (1 s) times the worst queue depth ``ceil(concurrency / threads)`` (keep-alive
connections stay with one worker, so in the worst case one worker holds them all): a request waits
at most for the requests queued before it, each bounded by the deadline; a max above the bound
means a worker was stuck. The script exits 1 if any failure occurred, 0 otherwise. All it
started (gunicorn, the fake server) is stopped on exit, Ctrl-C included.

Run (from the repository root, after ``make test`` or ``make run`` has created .venv)::

    .venv/bin/python scripts/load_test.py --duration 5
    .venv/bin/python scripts/load_test.py --modes ok,slow --levels 1,8 --workers 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from fhir_fixtures.ehr import fixture_resources, hook_request, load_bundle, searchset

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SERVICE_PATH = "/cds-services/sarcoma-patient-view"
DEFAULT_FIXTURE = ROOT / "fhir_fixtures" / "sts-iiia-thigh-tnm-only.json"
MODES = ("ok", "slow", "error", "down")
SLOW_S = 3.0
DEADLINE_S = 1.0
MARGIN_S = 1.0
CLIENT_TIMEOUT_S = 30.0


# --- the fixture and the requests ---------------------------------------------------------------


def load_chart(path: Path) -> list[dict[str, Any]]:
    return fixture_resources(load_bundle(path))


def chart_bundle(chart: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in chart]}


def hook_bodies(chart: list[dict[str, Any]], fhir_base: str) -> tuple[bytes, bytes]:
    """(full-prefetch body, no-prefetch body naming ``fhir_base``), as JSON bytes."""
    bundle = chart_bundle(chart)
    full = hook_request(bundle)
    fetch = hook_request(bundle, fhir_server=fhir_base, prefetch=False)
    return json.dumps(full).encode(), json.dumps(fetch).encode()


# --- the fake FHIR server -----------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 drops SYNs under load and adds 1 s retransmits
    daemon_threads = True


class FakeFhir:
    """Answers ``GET /fhir/Patient/{id}`` and ``GET /fhir/{Type}?...`` from the chart, per ``mode``."""

    def __init__(self, chart: list[dict[str, Any]]) -> None:
        self.chart = chart
        self.mode = "ok"
        self.hits = Counter()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                fake.hits[fake.mode] += 1
                if fake.mode == "slow":
                    time.sleep(SLOW_S)
                if fake.mode == "error":
                    return self._send(
                        500, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception"}]}
                    )
                self._send(200, fake.answer(self.path))

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/fhir+json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the service gave up waiting (deadline), as it should

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server((HOST, 0), Handler)
        self.server.handle_error = lambda request, address: None  # client gone: not an error here
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-fhir", daemon=True)

    def answer(self, path: str) -> dict[str, Any]:
        parts = urlsplit(path).path.strip("/").split("/")  # fhir, Type[, id]
        kind = parts[1] if len(parts) > 1 else ""
        if len(parts) == 3:
            match = next((r for r in self.chart if r["resourceType"] == kind and r.get("id") == parts[2]), None)
            return match or {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}
        return searchset([r for r in self.chart if r["resourceType"] == kind])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# --- the service under gunicorn -----------------------------------------------------------------


class Service:
    def __init__(self, port: int, workers: int, threads: int, allowed: list[str], workdir: Path) -> None:
        self.port = port
        self.workers = workers
        self.threads = threads
        self.log_path = workdir / "gunicorn.log"
        env = {
            **os.environ,
            "CDS_FHIR_DEADLINE_S": str(DEADLINE_S),
            "CDS_FEEDBACK_DB": str(workdir / "cds.sqlite3"),
            "CDS_ALLOWED_FHIR_SERVERS": ",".join(allowed),
            "CDS_AUTH_REQUIRED": "false",
        }
        command = [
            str(ROOT / ".venv" / "bin" / "sarcoma-cds"),
            "serve",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ]
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with {self.process.returncode}; see {self.log_path}")
            try:
                if (
                    requests.get(self.url + "/healthz", timeout=1).status_code == 200
                    and len(self.worker_pids()) >= self.workers
                ):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the service did not become ready in {timeout_s:.0f} s; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return sorted(int(pid) for pid in children.read_text().split())
        except OSError:
            return []

    def worker_rss_mb(self) -> dict[int, float]:
        sizes = {}
        for pid in self.worker_pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        sizes[pid] = int(line.split()[1]) / 1024
            except OSError:
                continue
        return sizes

    def worker_timeouts(self) -> int:
        self.log.flush()
        return self.log_path.read_bytes().count(b"WORKER TIMEOUT")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the session this script started for gunicorn
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.log.close()


# --- the load generator -------------------------------------------------------------------------


@dataclass
class Result:
    mode: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    rss_before: dict[int, float] = field(default_factory=dict)
    rss_after: dict[int, float] = field(default_factory=dict)
    bound_s: float = 0.0
    elapsed_s: float = 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "concurrency": self.concurrency,
            "requests": len(self.latencies),
            "rps": round(len(self.latencies) / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "statuses": dict(sorted(self.statuses.items())),
            "failures": dict(self.failures),
            "p50_ms": round(self.percentile(50) * 1000),
            "p95_ms": round(self.percentile(95) * 1000),
            "p99_ms": round(self.percentile(99) * 1000),
            "max_ms": round(max(self.latencies, default=0) * 1000),
            "bound_ms": round(self.bound_s * 1000),
            "rss_mb_before": round(sum(self.rss_before.values()), 1),
            "rss_mb_after": round(sum(self.rss_after.values()), 1),
        }


def expected(kind: str, mode: str, status: int) -> bool:
    if kind == "full" or mode == "ok":
        return status == 200
    return status in (200, 412)


def client_loop(
    service_url: str, bodies: dict[str, bytes], mode: str, until: float, result: Result, lock: threading.Lock
) -> None:
    session = requests.Session()
    kinds = ("full", "fetch")
    n = 0
    while time.monotonic() < until:
        kind = kinds[n % 2]
        n += 1
        started = time.perf_counter()
        try:
            response = session.post(
                service_url + SERVICE_PATH,
                data=bodies[kind],
                headers={"Content-Type": "application/json"},
                timeout=CLIENT_TIMEOUT_S,
            )
            outcome: int | str = response.status_code
        except requests.Timeout:
            outcome = "client-timeout"
        except requests.RequestException as error:
            outcome = f"connection-error:{type(error).__name__}"
        elapsed = time.perf_counter() - started
        with lock:
            result.latencies.append(elapsed)
            result.statuses[f"{kind}:{outcome}"] += 1
            if not (isinstance(outcome, int) and expected(kind, mode, outcome)):
                result.failures[f"{kind}:{outcome}"] += 1
    session.close()


def run_scenario(service: Service, bodies: dict[str, bytes], mode: str, concurrency: int, duration_s: float) -> Result:
    result = Result(mode=mode, concurrency=concurrency)
    result.bound_s = (DEADLINE_S + MARGIN_S) * math.ceil(concurrency / service.threads)
    result.rss_before = service.worker_rss_mb()
    lock = threading.Lock()
    started = time.monotonic()
    until = started + duration_s
    threads = [
        threading.Thread(target=client_loop, args=(service.url, bodies, mode, until, result, lock), daemon=True)
        for _ in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration_s + CLIENT_TIMEOUT_S + 5)
    result.elapsed_s = time.monotonic() - started
    result.rss_after = service.worker_rss_mb()
    return result


# --- main ---------------------------------------------------------------------------------------


HEADER = (
    f"{'mode':6} {'conc':>4} {'reqs':>6} {'rps':>6} {'p50':>6} {'p95':>6} {'p99':>6} {'max':>6} {'bound':>6} "
    f"{'worker RSS MB':>14}  statuses | failures   (latencies in ms)"
)


def format_row(row: dict[str, Any]) -> str:
    rss = f"{row['rss_mb_before']:.0f}->{row['rss_mb_after']:.0f}"
    statuses = " ".join(f"{k}={v}" for k, v in row["statuses"].items())
    failures = " ".join(f"{k}={v}" for k, v in row["failures"].items()) or "none"
    return (
        f"{row['mode']:6} {row['concurrency']:>4} {row['requests']:>6} {row['rps']:>6} {row['p50_ms']:>6} "
        f"{row['p95_ms']:>6} {row['p99_ms']:>6} {row['max_ms']:>6} {row['bound_ms']:>6} {rss:>14}  "
        f"{statuses} | {failures}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Load and fault test on 127.0.0.1 (see the module docstring).")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario (default 10; at most 120)")
    parser.add_argument("--levels", default="1,8,32", help="concurrency levels (default 1,8,32; each at most 64)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"fake FHIR server modes (default {','.join(MODES)})")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    parser.add_argument("--fixture", type=Path, default=DEFAULT_FIXTURE, help="fixture bundle for the patient")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    args.levels = [int(level) for level in args.levels.split(",")]
    args.modes = [mode for mode in args.modes.split(",")]
    if (
        not 0 < args.duration <= 120
        or any(not 0 < level <= 64 for level in args.levels)
        or set(args.modes) - set(MODES)
    ):
        parser.error("duration must be in (0, 120], levels in 1..64, modes among " + ",".join(MODES))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chart = load_chart(args.fixture)
    fake = FakeFhir(chart)
    closed_port = free_port()  # nothing listens here: mode "down"
    bases = {"up": f"http://{HOST}:{fake.port}/fhir", "down": f"http://{HOST}:{closed_port}/fhir"}
    workdir = Path(tempfile.mkdtemp(prefix="cds-load-"))
    service: Service | None = None
    rows: list[dict[str, Any]] = []

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)  # also when started in the background, where SIGINT is ignored
    try:
        fake.start()
        service = Service(free_port(), args.workers, args.threads, list(bases.values()), workdir)
        service.wait_ready()
        print(
            f"service {service.url} (workers={args.workers} threads={args.threads} deadline={DEADLINE_S}s), "
            f"fake FHIR {bases['up']}, closed port {closed_port}, log {service.log_path}",
            flush=True,
        )
        pids_at_start = service.worker_pids()
        print(HEADER, flush=True)
        for mode in args.modes:
            fake.mode = mode
            full, fetch = hook_bodies(chart, bases["down" if mode == "down" else "up"])
            for level in args.levels:
                result = run_scenario(service, {"full": full, "fetch": fetch}, mode, level, args.duration)
                rows.append(result.summary())
                print(format_row(rows[-1]), flush=True)
        timeouts, pids_at_end = service.worker_timeouts(), service.worker_pids()
    except KeyboardInterrupt:
        print("interrupted; stopping", file=sys.stderr)
        return 130
    except RuntimeError as error:
        print(f"load test: {error}", file=sys.stderr)
        return 2
    finally:
        if service is not None:
            service.stop()
        fake.stop()
    failures = sum(sum(row["failures"].values()) for row in rows)
    over_bound = [f"{row['mode']}@{row['concurrency']}" for row in rows if row["max_ms"] > row["bound_ms"]]
    print(f"\nfailures (5xx, unexpected status, connection error, client timeout): {failures}")
    print(f"scenarios whose max latency exceeded the bound: {', '.join(over_bound) or 'none'}")
    print(f"gunicorn WORKER TIMEOUTs: {timeouts}; workers replaced: {pids_at_start != pids_at_end}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"rows": rows, "failures": failures, "over_bound": over_bound, "worker_timeouts": timeouts}, indent=2
            )
        )
    return 1 if failures or timeouts or over_bound else 0


if __name__ == "__main__":
    sys.exit(main())
