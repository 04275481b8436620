"""``/metrics`` of the real ``sarcoma-cds serve`` with two gunicorn workers: the counts of both, whichever answers.

Hook calls go out eight at a time until the JSON log lines (which carry each worker's ``pid``) show
both workers answered some; every scrape must then report all of them, the cards by statement and the
feedback, and nothing of the patients. A ``SIGHUP`` makes gunicorn replace both workers; the new ones
never served a hook call, yet their scrapes report the same sums (the old workers' files stay in the
folder ``serve`` made, which is gone once ``serve`` stops).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from test_metrics import (
    FEEDBACK_URL,
    HOOK_URL,
    SLUGS,
    assert_no_patient_data,
    fixture_request,
    hook_count,
    patient_values,
    samples,
    statements_of,
    value,
)

BATCH = 8
MAX_BATCHES = 12


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _sarcoma_cds() -> list[str]:
    installed = Path(sys.executable).parent / "sarcoma-cds"
    return [str(installed)] if installed.exists() else [sys.executable, "-m", "cds_service.cli"]


class Served:
    def __init__(self, process: subprocess.Popen[bytes], base: str, output: Path, tmp: Path) -> None:
        self.process, self.base, self.output, self.tmp = process, base, output, tmp

    def lines(self) -> list[dict[str, Any]]:
        """The log lines written so far; a last line still being written (no newline yet) waits."""
        text = self.output.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.split("\n")[:-1] if line.startswith("{")]

    def pids(self, keep: Callable[[dict[str, Any]], bool]) -> set[int]:
        return {line["pid"] for line in self.lines() if keep(line)}

    def wait_for(self, what: str, done: Callable[[], bool], seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not done():
            assert self.process.poll() is None, self.output.read_text()
            assert time.monotonic() < deadline, f"{what} within {seconds:g} s\n{self.output.read_text()[-4000:]}"
            time.sleep(0.1)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    (tmp_path / "tmp").mkdir()
    env.update(
        CDS_METRICS="true",
        CDS_LOG_FORMAT="json",
        CDS_LOG_LEVEL="DEBUG",  # the /metrics lines too, with the pid of the worker that answered
        CDS_FEEDBACK_DB=str(tmp_path / "f.db"),
        TMPDIR=str(tmp_path / "tmp"),  # where serve makes the run's metrics folder
    )
    output = tmp_path / "serve.log"
    argv = [*_sarcoma_cds(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    with output.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = Served(process, f"http://127.0.0.1:{port}", output, tmp_path / "tmp")
    try:
        server.wait_for("serve answers", lambda: _answers(server.base))
        server.wait_for("both workers booted", lambda: len(server.pids(_booted)) == 2)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=1).status_code == 200
    except requests.RequestException:  # not listening yet, or busy booting
        return False


def _booted(line: dict[str, Any]) -> bool:
    return str(line.get("message", "")).startswith("Booting worker with pid")


def _hook_call(line: dict[str, Any]) -> bool:
    return line.get("message") == "hook call" and line.get("status") == 200


def _scrape_line(line: dict[str, Any]) -> bool:
    return line.get("route") == "/metrics" and line.get("status") == 200


def _call(base: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = requests.post(f"{base}{HOOK_URL}", json=body, timeout=30, headers={"Connection": "close"})
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


def test_metrics_under_two_workers_report_the_hook_count_summed_over_both(served):
    bodies: list[dict[str, Any]] = []
    cards: list[dict[str, Any]] = []
    with ThreadPoolExecutor(BATCH) as pool:
        for _ in range(MAX_BATCHES):
            batch = [fixture_request(SLUGS[(len(bodies) + k) % len(SLUGS)]) for k in range(BATCH)]
            bodies += batch
            cards += [card for answered in pool.map(lambda body: _call(served.base, body), batch) for card in answered]
            sent = len(bodies)
            served.wait_for("a log line per hook call", lambda sent=sent: _logged(served) == sent)
            if len(served.pids(_hook_call)) == 2:
                break
    hook_workers = served.pids(_hook_call)
    assert len(hook_workers) == 2, f"every one of {len(bodies)} hook calls went to one worker"
    n = len(bodies)
    shown = statements_of(cards)
    family = bodies[0]["prefetch"]["patient"]["name"][0]["family"]
    feedback = [
        {"card": cards[0]["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": "s-1"}]},
        {"card": cards[1]["uuid"], "outcome": "overridden", "overrideReason": {"userComment": f"{family} declined"}},
    ]
    for item in feedback:
        item["outcomeTimestamp"] = "2026-03-01T10:00:00Z"
    assert requests.post(f"{served.base}{FEEDBACK_URL}", json={"feedback": feedback}, timeout=10).status_code == 200
    private = set().union(*(patient_values(body) for body in bodies)) | {f"{family} declined", cards[0]["uuid"]}

    [folder] = served.tmp.glob("sarcoma-cds-metrics-*")
    assert {p.name for p in folder.glob("counter_*.db")} == {f"counter_{pid}.db" for pid in hook_workers}

    def check_scrapes(times: int) -> None:
        for _ in range(times):
            response = requests.get(f"{served.base}/metrics", timeout=10, headers={"Connection": "close"})
            assert response.status_code == 200
            assert_no_patient_data(response.text, private)
            scraped = samples(response.text)
            assert hook_count(scraped, "2xx") == n
            assert sum(v for (name, _), v in scraped.items() if name == "sarcoma_cds_hook_duration_seconds_count") == n
            for statement in set(shown):
                assert value(scraped, "sarcoma_cds_cards_shown_total", statement=statement) == shown.count(statement)
            assert value(scraped, "sarcoma_cds_feedback_items_total", outcome="accepted") == 1
            assert value(scraped, "sarcoma_cds_feedback_items_total", outcome="overridden") == 1

    check_scrapes(6)
    before = served.pids(_booted)
    os.kill(served.process.pid, signal.SIGHUP)  # gunicorn replaces both workers
    served.wait_for("two new workers", lambda: len(served.pids(_booted) - before) == 2)
    served.wait_for("the old workers gone", lambda: _exited(served) >= before)
    check_scrapes(6)
    scrapers = served.pids(_scrape_line)
    assert scrapers & hook_workers and scrapers - hook_workers  # answered by workers that served hooks, and not

    os.killpg(served.process.pid, signal.SIGTERM)
    served.process.wait(timeout=30)
    assert not folder.exists()
    text = served.output.read_text(encoding="utf-8")
    assert "Exception during" not in text and "Traceback" not in text


def _logged(served: Served) -> int:
    return sum(1 for line in served.lines() if _hook_call(line))


def _exited(served: Served) -> set[int]:
    found = set()
    for line in served.lines():
        message = str(line.get("message", ""))
        if message.startswith("Worker exiting (pid: "):
            found.add(int(message.removeprefix("Worker exiting (pid: ").rstrip(")")))
    return found
