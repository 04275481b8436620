"""The no-prefetch path: the hook reads a real FHIR server, its prefetch queries in parallel.

A chart is loaded into the FHIR test server (``scripts/fhir-test-server.sh``, sekmet-fhir on
127.0.0.1, its own state folder) as a transaction Bundle. Then, interleaved round by round, the
hook is called with ``fhirServer`` and no prefetch, each of the prefetch queries is timed
directly (following ``next`` pages), and the service's own fetch step (``gather`` with its
``FhirClient`` and default deadlines) is timed in this process. ``ratio`` = hook total / slowest
query; ``fetch_ratio`` = fetch step alone / slowest query, which leaves out the summary's cost.
"""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import charts
import requests
from processes import ROOT

from cds_service.config import Config
from cds_service.fhir.client import Deadline, FhirClient, new_session
from cds_service.fhir.gather import gather
from cds_service.protocol.request import HookRequest, parse_hook_request
from cds_service.protocol.services import SERVICES

SCRIPT = ROOT / "scripts" / "fhir-test-server.sh"
TOKEN = "bench-token"
PATIENT = "bench-fhir-patient"
TOKEN_PATTERN = re.compile(r"\{\{\s*context\.patientId\s*\}\}")


class Skipped(Exception):
    """The FHIR test server is not available; the reason says what to run."""


@dataclass
class FhirServer:
    base_url: str
    env: dict[str, str]

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=self.env, capture_output=True, timeout=60, check=False)


def start_server(state_dir: Path) -> FhirServer:
    if not SCRIPT.exists():
        raise Skipped(f"{SCRIPT.relative_to(ROOT)} does not exist")
    env = {**os.environ, "FHIR_SERVER_STATE": str(state_dir), "FHIR_SERVER_TOKEN": TOKEN}
    try:
        done = subprocess.run(
            ["bash", str(SCRIPT), "start", "--port", "auto"], env=env, capture_output=True, text=True, timeout=120
        )
    except BaseException:  # interrupted or timed out mid-start: stop whatever did start
        FhirServer("", env).stop()
        raise
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise Skipped(f"the FHIR test server did not start ({why}); run `bash scripts/fhir-test-server.sh install`")
    return FhirServer(done.stdout.strip().splitlines()[-1], env)


def load_chart(server: FhirServer, chart: list[dict[str, Any]], work_dir: Path) -> float:
    bundle = work_dir / "bench-chart-transaction.json"
    bundle.write_text(json.dumps(charts.transaction(chart)))
    started = time.perf_counter()
    done = subprocess.run(
        ["bash", str(SCRIPT), "load", str(bundle), "--url", server.base_url, "--token", TOKEN],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"loading the chart failed: {done.stderr.strip()[-800:]}")
    return time.perf_counter() - started


def timed_query(session: requests.Session, base_url: str, query: str) -> tuple[float, int, int]:
    """Seconds, resources and pages for one prefetch query, every ``next`` page followed."""
    started = time.perf_counter()
    url: str | None = f"{base_url}/{query}"
    resources = pages = 0
    while url:
        reply = session.get(url, timeout=30)
        reply.raise_for_status()
        body = reply.json()
        pages += 1
        if body.get("resourceType") != "Bundle":
            return time.perf_counter() - started, 1, pages
        resources += sum(1 for e in body.get("entry") or [] if (e.get("search") or {}).get("mode", "match") == "match")
        url = next((link["url"] for link in body.get("link") or [] if link.get("relation") == "next"), None)
    return time.perf_counter() - started, resources, pages


def prefetch_queries(service_url: str, service_id: str) -> dict[str, str]:
    """The service's prefetch templates as discovery publishes them, filled for PATIENT."""
    services = requests.get(f"{service_url}/cds-services", timeout=10).json()["services"]
    templates = next(s["prefetch"] for s in services if s["id"] == service_id)
    return {key: TOKEN_PATTERN.sub(PATIENT, template) for key, template in templates.items()}


class Fetcher:
    """The service's fetch step, as ``api/hooks.py`` runs it, with default settings."""

    def __init__(self, service_id: str, fhir_base: str) -> None:
        self.config = Config()
        self.service = SERVICES[service_id]
        self.session = new_session()
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="fhir")
        body = charts.hook_request(None, patient_id=PATIENT, fhir_server=fhir_base, token=TOKEN)
        self.hook = parse_hook_request(body, self.service)

    def client_for(self, hook: HookRequest) -> FhirClient:
        c = self.config
        return FhirClient(
            self.session,
            hook.fhir_server or "",
            token=TOKEN,
            timeout_s=c.fhir_timeout_s,
            max_pages=c.fhir_max_pages,
            max_bytes=c.fhir_max_bytes,
        )

    def __call__(self) -> int:
        gathered = gather(
            self.hook,
            self.service,
            client_for=self.client_for,
            executor=self.executor,
            deadline=Deadline.after(self.config.fhir_deadline_s),
        )
        return len(gathered.resources)


def _median_ms(values: list[float]) -> float | None:
    return statistics.median(values) * 1000 if values else None


def measure(service_url: str, service_id: str, fhir_base: str, rounds: int = 7, seed: int = 3) -> dict[str, Any]:
    queries = prefetch_queries(service_url, service_id)
    hook_path = f"/cds-services/{service_id}"
    fhir = requests.Session()
    fhir.headers.update({"Authorization": f"Bearer {TOKEN}", "Accept": "application/fhir+json"})
    hook = requests.Session()
    fetch = Fetcher(service_id, fhir_base)
    rng = random.Random(seed)
    times: dict[str, list[float]] = {job: [] for job in ("hook", "fetch", *queries)}
    shape: dict[str, dict[str, int]] = {}
    statuses: list[int] = []
    for round_no in range(rounds + 1):  # round 0 warms every path up
        jobs = list(times)
        rng.shuffle(jobs)
        for job in jobs:
            started = time.perf_counter()
            if job == "hook":
                body = charts.hook_request(None, patient_id=PATIENT, fhir_server=fhir_base, token=TOKEN)
                status = hook.post(service_url + hook_path, json=body, timeout=60).status_code
                statuses.append(status)
                ok = status == 200
            elif job == "fetch":
                fetched = fetch()
                ok = True
            else:
                _s, resources, pages = timed_query(fhir, fhir_base, queries[job])
                shape[job] = {"resources": resources, "pages": pages}
                ok = True
            if round_no and ok:
                times[job].append(time.perf_counter() - started)
    fetch.executor.shutdown(wait=False)
    medians = {key: _median_ms(times[key]) or 0.0 for key in queries}
    slowest = max(medians, key=medians.__getitem__)
    total, fetched_ms = _median_ms(times["hook"]), _median_ms(times["fetch"])
    return {
        "rounds": rounds,
        "hook_statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "hook_total_ms": total,
        "fetch_ms": fetched_ms,
        "fetched_resources": fetched,
        "query_median_ms": medians,
        "query_sum_ms": sum(medians.values()),
        "slowest_query": slowest,
        "slowest_query_ms": medians[slowest],
        "queries": shape,
        "ratio": None if total is None else total / medians[slowest],
        "fetch_ratio": None if fetched_ms is None else fetched_ms / medians[slowest],
    }
