"""Where the hook's time goes, in process: phase timings, cProfile top functions, pyinstrument tree.

    .venv/bin/python bench/hotspots.py [--sizes 1000,5000] [--repeat 5]

Runs the hook through ``app.test_client()`` (no HTTP, no gunicorn) on the benchmark's synthetic
charts, times each pipeline phase on its own (JSON, request parsing, gather, FHIR validation,
the rest of the summary, matching and rendering, response serialisation), and writes
``bench/results/hotspots.md`` plus a pyinstrument tree per size (``hotspots-<size>.txt``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import charts
import orjson
from flask import Flask, json
from processes import ROOT

from cds_service import Config, create_app
from cds_service.fhir.client import Deadline
from cds_service.fhir.gather import gather
from cds_service.knowledge import evaluate
from cds_service.protocol.cards import CdsResponse
from cds_service.protocol.request import parse_hook_request
from cds_service.protocol.services import SERVICES
from cds_service.runtime import tune_collector
from cds_service.summary import summarise
from cds_service.summary.context import Context
from cds_service.summary.parse import MODELS, _collect, read_chart

SERVICE = SERVICES["sarcoma-patient-view"]
HOOK_URL = f"/cds-services/{SERVICE.id}"


def median_ms(action: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def phases(app: Flask, raw: bytes, repeat: int) -> dict[str, float]:
    """Median milliseconds of each pipeline step, run one after the other as the hook does."""
    rt = app.extensions["sarcoma"]
    body = orjson.loads(raw)
    hook = parse_hook_request(body, SERVICE)
    gathered = gather(hook, SERVICE, client_for=rt.fhir_client, executor=rt.executor, deadline=Deadline.after(2))
    resources = gathered.resources
    today = date.today()
    kept = _collect(resources, Context(today))
    summary = summarise(resources, today=today)
    cards = evaluate(summary, rt.knowledge, base_url="http://bench")
    validate_only = lambda: [MODELS[kind].model_validate(dict(r)) for kind, r in kept.values()]  # noqa: E731
    with app.test_request_context():
        serialise = lambda: json.dumps(CdsResponse(cards=tuple(cards)).to_json())  # noqa: E731
        results = {
            "json body -> dict (orjson)": median_ms(lambda: orjson.loads(raw), repeat),
            "parse_hook_request": median_ms(lambda: parse_hook_request(body, SERVICE), repeat),
            "gather (prefetch unpack + patient check)": median_ms(
                lambda: gather(
                    hook, SERVICE, client_for=rt.fhir_client, executor=rt.executor, deadline=Deadline.after(2)
                ),
                repeat,
            ),
            "summary: read_chart (collect; validate all but Observations)": median_ms(
                lambda: read_chart(resources, Context(today)), repeat
            ),
            "reference: validating every kept resource eagerly": median_ms(validate_only, repeat),
            "summary: whole summarise": median_ms(lambda: summarise(resources, today=today), repeat),
            "knowledge: evaluate (match + render)": median_ms(
                lambda: evaluate(summary, rt.knowledge, base_url="http://bench"), repeat
            ),
            "response to JSON": median_ms(serialise, repeat),
        }
    results["kept resources (types and codes the summary reads)"] = float(len(kept))
    return results


def cprofile_top(client: Any, raw: bytes, repeat: int, limit: int = 20) -> str:
    """Top functions by own time, then the service's own functions by cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeat):
        client.post(HOOK_URL, data=raw, content_type="application/json")
    profiler.disable()
    out = io.StringIO()
    out.write(f"(totals over {repeat} calls, with cProfile overhead)\n")
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(limit)
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(
        r"cds_service/(summary|knowledge|fhir|api)", limit
    )
    return out.getvalue().replace(str(ROOT) + "/", "").replace(str(Path(sys.prefix)) + "/", "")


def pyinstrument_tree(client: Any, raw: bytes, repeat: int) -> str:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(repeat):
        client.post(HOOK_URL, data=raw, content_type="application/json")
    profiler.stop()
    return profiler.output_text(unicode=False, color=False, show_all=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    report = ["# Where the hook's time goes (in process, app.test_client())", ""]
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Config(feedback_db=Path(tmp) / "feedback.sqlite3"))
        tune_collector()  # as the service's workers run (cds_service.wsgi)
        client = app.test_client()
        for size in (int(s) for s in args.sizes.split(",")):
            raw = orjson.dumps(charts.hook_request(charts.make_chart(size, seed=size)))
            client.post(HOOK_URL, data=raw, content_type="application/json")  # warm caches
            total = median_ms(
                lambda raw=raw: client.post(HOOK_URL, data=raw, content_type="application/json"), args.repeat
            )
            steps = phases(app, raw, args.repeat)
            report += [
                f"## {size:,} resources ({len(raw) / 1e6:.1f} MB body)",
                "",
                f"whole hook call through test_client: {total:.1f} ms (median of {args.repeat})",
                "",
                "| phase | median ms |",
                "|---|---:|",
                *(f"| {name} | {ms:.1f} |" for name, ms in steps.items()),
                "",
                "```",
                cprofile_top(client, raw, max(2, args.repeat // 2)),
                "```",
                "",
            ]
            (args.out / f"hotspots-{size}.txt").write_text(pyinstrument_tree(client, raw, 2))
            print(f"{size:,} resources: {total:.1f} ms; " + "; ".join(f"{k} {v:.1f}" for k, v in steps.items()))
    (args.out / "hotspots.md").write_text("\n".join(report))
    print(f"wrote {args.out}/hotspots.md and hotspots-<size>.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
