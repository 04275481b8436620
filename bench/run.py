"""Benchmark: the sarcoma hook against a floor app, both under gunicorn with production settings.

    .venv/bin/python bench/run.py [--quick] [--no-fhir] [--sizes 10,100,1000,5000]

Starts the service (``sarcoma-cds serve --workers 2 --threads 4``) and the floor app
(``bench/floor_app.py``) on free 127.0.0.1 ports, sends each synthetic chart size
(``bench/charts.py``) as full prefetch at concurrency 1 and 8, service and floor interleaved,
then a repeat open of one 100-resource chart against the service with its card cache on, then
times the no-prefetch path against a FHIR stub with fixed delays per query (``bench/fhir_stub.py``;
``--test-server``: the FHIR test server instead). Beside latency it reports the CPU time per
request of the service's and the floor's processes (``processes.cpu_seconds``). Prints the table and the target
checks (PASS/FAIL never changes the exit status) and writes ``bench/results/latest.json``,
``latest.md`` and ``latency.png``. Every process it starts is stopped on exit, error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import charts
import fhir_path
import orjson
import report
import requests
from fhir_stub import FhirStub
from load import Connections, Load, Payload, Samples, Target, post
from processes import ROOT, Server, Servers, cpu_seconds, free_port, gunicorn_argv, raise_on_signals, service_argv

SERVICE_ID = "sarcoma-patient-view"
HOOK_PATH = f"/cds-services/{SERVICE_ID}"
WORKERS, THREADS = 2, 4
CONCURRENCY = (1, 8)
NO_PREFETCH_SIZE = 1000
SERVERS: dict[str, Server] = {}  # base URL -> the server behind it, for its CPU time


@dataclass(frozen=True)
class Plan:
    """Per cell: requests per target, a time cap, and the block size at concurrency 8.

    The caps keep a run under 5 minutes on 2 cores however slow the service is; a cell stops at
    the end of the first round past its cap, so ``n`` in the table says how many requests made it.
    """

    c1: int
    c8: int
    cap_s: float
    c8_block: int

    def requests(self, concurrency: int) -> int:
        return self.c1 if concurrency == 1 else self.c8

    def block(self, concurrency: int) -> int:
        return 1 if concurrency == 1 else self.c8_block


PLANS = {
    10: Plan(300, 480, 12, 16),
    100: Plan(300, 480, 12, 16),
    1000: Plan(120, 192, 20, 16),
    5000: Plan(40, 64, 35, 8),
}
QUICK = {size: Plan(max(p.c1 // 4, 10), max(p.c8 // 4, 16), p.cap_s / 4, p.c8_block) for size, p in PLANS.items()}
WARM_UP_CHART = 100  # resources; every worker serves these before timing (imports, schema caches)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000,5000", help="chart sizes (resources)")
    parser.add_argument("--quick", action="store_true", help="about a quarter of the requests (smoke run)")
    parser.add_argument("--no-fhir", action="store_true", help="skip the no-prefetch path")
    parser.add_argument(
        "--test-server",
        action="store_true",
        help="no-prefetch path against the FHIR test server instead of the stub with fixed delays",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


def measured(load: Load, payload: Payload, requests: int, cap_s: float, block: int) -> dict[str, Samples]:
    """``load.run``, with the CPU time each target's processes spent on the timed requests."""
    before = {t.name: cpu_seconds(SERVERS[t.base_url]) for t in load.targets}
    samples = load.run(payload, requests, cap_s, block)
    for target in load.targets:
        samples[target.name].cpu_s = cpu_seconds(SERVERS[target.base_url]) - before[target.name]
    return samples


def start_servers(servers: Servers, work: Path, fhir_base: str | None) -> tuple[Target, Target]:
    """The service (allowed to read ``fhir_base``, the FHIR test server, if any) and the floor app."""
    port = free_port()
    settings = {"CDS_FEEDBACK_DB": str(work / "feedback.sqlite3"), "CDS_SANDBOX": "false"}
    if fhir_base:
        settings["CDS_ALLOWED_FHIR_SERVERS"] = fhir_base
    service = servers.start("service", service_argv(port, WORKERS, THREADS), port, settings)
    servers.wait_healthy(service)
    SERVERS[service.base_url] = service
    service_target = Target("service", service.base_url, HOOK_PATH)
    floor_body = work / "floor-response.json"
    floor_body.write_bytes(call_once(service_target, charts.make_chart(100))[1])
    port = free_port()
    floor = servers.start(
        "floor",
        gunicorn_argv("floor_app:app", port, WORKERS, THREADS, "--pythonpath", str(ROOT / "bench")),
        port,
        {"BENCH_FLOOR_RESPONSE": str(floor_body)},
    )
    servers.wait_healthy(floor)
    SERVERS[floor.base_url] = floor
    return service_target, Target("floor", floor.base_url, HOOK_PATH)


def start_cached(servers: Servers, work: Path) -> Target:
    """The service with the repeat-open cache on (``CDS_CARD_CACHE_TTL_S``), for the repeat-open cell."""
    port = free_port()
    settings = {
        "CDS_FEEDBACK_DB": str(work / "feedback-cached.sqlite3"),
        "CDS_SANDBOX": "false",
        "CDS_CARD_CACHE_TTL_S": "600",
    }
    cached = servers.start("service-cached", service_argv(port, WORKERS, THREADS), port, settings)
    servers.wait_healthy(cached)
    SERVERS[cached.base_url] = cached
    return Target("service", cached.base_url, HOOK_PATH)


def measure_repeat(cached: Target, floor: Target) -> dict[str, Any]:
    """The same 100-resource chart opened again and again (every worker has it cached), c=1."""
    plan = PLANS[100]
    payload = Payload.of(charts.hook_request(charts.make_chart(100, seed=100)))
    with Load([cached, floor], 1, seed=101) as load:
        load.warm_up(payload, 4 * WORKERS)
        samples = measured(load, payload, plan.c1, plan.cap_s, 1)
    row = {
        "size": 100,
        "concurrency": 1,
        "body_bytes": payload.size,
        **{n: report.summarise(s) for n, s in samples.items()},
    }
    print(
        f"  repeat open, 100 resources c=1, cache on: service p50 {row['service']['p50']:.1f} ms, "
        f"floor p50 {row['floor']['p50']:.1f} ms (n={row['service']['n']})",
        flush=True,
    )
    return row


def call_once(target: Target, chart: list[dict[str, Any]]) -> tuple[int, bytes]:
    status, _seconds, body = post(Connections(), target, Payload.of(charts.hook_request(chart)).render())
    if status != 200:
        raise RuntimeError(f"{target.name} answered HTTP {status} to a {len(chart)}-resource chart: {body[:600]!r}")
    return status, body


def warm_up(targets: tuple[Target, Target]) -> None:
    payload = Payload.of(charts.hook_request(charts.make_chart(WARM_UP_CHART)))
    with Load(list(targets), max(CONCURRENCY)) as load:
        load.warm_up(payload, 4 * max(CONCURRENCY))


def measure_size(size: int, plan: Plan, targets: tuple[Target, Target]) -> list[dict[str, Any]]:
    chart = charts.make_chart(size, seed=size)
    payload = Payload.of(charts.hook_request(chart))
    _status, answer = call_once(targets[0], chart)
    cards = len(orjson.loads(answer).get("cards", []))
    rows = []
    for concurrency in CONCURRENCY:
        with Load(list(targets), concurrency, seed=size + concurrency) as load:
            load.warm_up(payload, 1)
            samples = measured(load, payload, plan.requests(concurrency), plan.cap_s, plan.block(concurrency))
        row = {
            "size": size,
            "concurrency": concurrency,
            "body_bytes": payload.size,
            "cards": cards,
            **{name: report.summarise(s) for name, s in samples.items()},
        }
        rows.append(row)
        print(
            f"  {size:>5,} resources c={concurrency}: service p50 {row['service']['p50']:.1f} ms, "
            f"floor p50 {row['floor']['p50']:.1f} ms (n={row['service']['n']})",
            flush=True,
        )
    return rows


def start_fhir_server(work: Path) -> fhir_path.FhirServer | str:
    """The FHIR test server (``--test-server``), started first so the service can be allowed to read it."""
    try:
        return fhir_path.start_server(work / "fhir-server")
    except fhir_path.Skipped as why:
        print(f"  no-prefetch path skipped: {why}", flush=True)
        return str(why)


def no_prefetch_chart() -> list[dict[str, Any]]:
    return charts.make_chart(NO_PREFETCH_SIZE, seed=7, patient_id=fhir_path.PATIENT)


def no_prefetch(service: Target, fhir_base: str, source: str, load_s: float = 0.0) -> dict[str, Any]:
    result = fhir_path.measure(service.base_url, SERVICE_ID, fhir_base)
    return {"chart_size": NO_PREFETCH_SIZE, "source": source, "load_s": load_s, **result}


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": f"Python {platform.python_version()}",
        "platform": platform.platform(),
        "workers": WORKERS,
        "threads": THREADS,
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_at_start": os.getloadavg(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(s) for s in args.sizes.split(",")]
    plans = QUICK if args.quick else PLANS
    rows: list[dict[str, Any]] = []
    about = machine()
    with (
        tempfile.TemporaryDirectory(prefix="sarcoma-bench-") as tmp,
        Servers(Path(tmp)) as servers,
        FhirStub(no_prefetch_chart()) as stub,
    ):
        work = Path(tmp)
        fhir_server: fhir_path.FhirServer | str | None = None
        if args.no_fhir:
            fhir_server = "--no-fhir given"
        elif args.test_server:
            fhir_server = start_fhir_server(work)
        fhir_base = stub.base_url if fhir_server is None else getattr(fhir_server, "base_url", None)
        try:
            targets = start_servers(servers, work, fhir_base)
            warm_up(targets)
            for size in sizes:
                rows += measure_size(size, plans.get(size, plans[100]), targets)
            repeat = measure_repeat(start_cached(servers, work), targets[1]) if 100 in sizes else None
            if isinstance(fhir_server, str):
                fhir: dict[str, Any] = {"skipped": fhir_server}
            elif fhir_server is None:
                fhir = no_prefetch(targets[0], stub.base_url, "a FHIR stub with fixed delays per query")
            else:
                load_s = fhir_path.load_chart(fhir_server, no_prefetch_chart(), work)
                fhir = no_prefetch(targets[0], fhir_server.base_url, "the FHIR test server", load_s)
        except (RuntimeError, requests.RequestException, OSError):
            for server in servers.started:
                print(f"--- last lines of {server.name} log ---\n{server.tail()}", file=sys.stderr)
            raise
        finally:
            if isinstance(fhir_server, fhir_path.FhirServer):
                fhir_server.stop()
    return {"machine": about, "rows": rows, "repeat_open": repeat, "no_prefetch": fhir}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_on_signals()
    started = time.monotonic()
    try:
        result = run(args)
    except KeyboardInterrupt:
        print("interrupted; every server started was stopped", file=sys.stderr)
        return 130
    found = report.checks(result["rows"], result["no_prefetch"], result["repeat_open"])
    result["elapsed_s"] = time.monotonic() - started
    report.write(args.out, result, found)
    print()
    print(report.table(result["rows"]))
    print(report.repeat_line(result["repeat_open"]))
    print()
    print("\n".join(report.no_prefetch_lines(result["no_prefetch"])))
    print()
    for check in found:
        print(f"{check.verdict}  {check.target}: {check.measured}")
    print(f"\nwrote {args.out}/latest.json, latest.md, latency.png in {result['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
