"""Results: percentiles, the comparison table, target checks, and the files README includes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from load import Samples

LINEAR_TOLERANCE = 1.1  # per-resource cost at 5,000 may be at most this multiple of that at 1,000
P50_RATIO, P99_MS, BIG_P99_MS = 2.5, 30, 200  # 100 resources c=1: p50 vs floor, p99; 5,000 resources c=1: p99
REPEAT_RATIO, THROUGHPUT_RATIO, NO_PREFETCH_RATIO = 1.5, 0.4, 1.15
THROUGHPUT_SIZE = 100  # resources: the chart size whose c=8 throughput is a target (the others are reported)


def summarise(samples: Samples) -> dict[str, Any]:
    ms = np.array(samples.latencies_s) * 1000
    if ms.size == 0:
        return {"n": 0, "errors": samples.errors, "p50": None, "p95": None, "p99": None, "rps": None, "cpu_ms": None}
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    calls = ms.size + sum(samples.errors.values())
    return {
        "n": int(ms.size),
        "errors": {str(k): v for k, v in samples.errors.items()},
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "mean": float(ms.mean()),
        "rps": ms.size / samples.busy_s if samples.busy_s else None,
        "cpu_ms": samples.cpu_s * 1000 / calls if samples.cpu_s is not None else None,
    }


@dataclass(frozen=True)
class Check:
    target: str
    measured: str
    passed: bool | None  # None: could not be measured

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed]


def _cell(rows: list[dict[str, Any]], size: int, concurrency: int) -> dict[str, Any] | None:
    return next((r for r in rows if r["size"] == size and r["concurrency"] == concurrency), None)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def checks(
    rows: list[dict[str, Any]], no_prefetch: dict[str, Any] | None, repeat: dict[str, Any] | None = None
) -> list[Check]:
    found: list[Check] = []
    typical = _cell(rows, 100, 1)
    if typical:
        s, f = typical["service"], typical["floor"]
        ratio = _ratio(s["p50"], f["p50"])
        found.append(
            Check(
                f"100 resources, c=1: service p50 <= {P50_RATIO}x floor p50",
                f"{s['p50']:.1f} ms vs {f['p50']:.1f} ms = {ratio:.2f}x",
                ratio is not None and ratio <= P50_RATIO,
            )
        )
        found.append(Check(f"100 resources, c=1: service p99 < {P99_MS} ms", f"{s['p99']:.1f} ms", s["p99"] < P99_MS))
    if repeat:
        ratio = _ratio(repeat["service"]["p50"], repeat["floor"]["p50"])
        found.append(
            Check(
                f"repeat open, 100 resources, c=1, cache on: service p50 <= {REPEAT_RATIO}x floor p50",
                f"{repeat['service']['p50']:.1f} ms vs {repeat['floor']['p50']:.1f} ms = {ratio:.2f}x",
                ratio is not None and ratio <= REPEAT_RATIO,
            )
        )
    big = _cell(rows, 5000, 1)
    if big and big["service"]["p99"] is not None:
        found.append(
            Check(
                f"5,000 resources, c=1: service p99 < {BIG_P99_MS} ms",
                f"{big['service']['p99']:.1f} ms",
                big["service"]["p99"] < BIG_P99_MS,
            )
        )
    found.append(_linear_check(rows))
    for row in rows:
        if row["concurrency"] > 1 and row["size"] == THROUGHPUT_SIZE:
            ratio = _ratio(row["service"]["rps"], row["floor"]["rps"])
            found.append(
                Check(
                    f"{row['size']:,} resources, c={row['concurrency']}: throughput >= {THROUGHPUT_RATIO}x floor",
                    f"{row['service']['rps']:.1f} vs {row['floor']['rps']:.1f} req/s = {ratio:.2f}x",
                    ratio is not None and ratio >= THROUGHPUT_RATIO,
                )
            )
    found.append(_no_prefetch_check(no_prefetch))
    return found


def repeat_line(repeat: dict[str, Any] | None) -> str:
    if not repeat:
        return "Repeat open with the card cache on: not measured (no 100-resource chart in this run)."
    s, f = repeat["service"], repeat["floor"]
    return (
        f"Repeat open of one 100-resource chart, card cache on (CDS_CARD_CACHE_TTL_S), c=1: service p50 / p95 / p99 "
        f"{_fmt(s['p50'])} / {_fmt(s['p95'])} / {_fmt(s['p99'])} ms; floor {_fmt(f['p50'])} / {_fmt(f['p95'])} / "
        f"{_fmt(f['p99'])} ms; p50 ratio {_fmt(_ratio(s['p50'], f['p50']), 2)}x; CPU per request "
        f"{_fmt(s.get('cpu_ms'), 2)} ms against the floor's {_fmt(f.get('cpu_ms'), 2)} ms (n={s['n']})."
    )


def _linear_check(rows: list[dict[str, Any]]) -> Check:
    """Service's own work per resource (p50 above the floor's) at 5,000 vs 1,000."""
    target = f"cost linear in size: per-resource cost at 5,000 <= {LINEAR_TOLERANCE}x that at 1,000 (c=1)"
    per: dict[int, float] = {}
    for size in (1000, 5000):
        row = _cell(rows, size, 1)
        if row is None or row["service"]["p50"] is None:
            return Check(target, "not measured", None)
        per[size] = (row["service"]["p50"] - row["floor"]["p50"]) / size
    ratio = per[5000] / per[1000]
    measured = f"{per[1000] * 1000:.0f} us vs {per[5000] * 1000:.0f} us per resource = {ratio:.2f}x"
    return Check(target, measured, ratio <= LINEAR_TOLERANCE)


def _no_prefetch_check(result: dict[str, Any] | None) -> Check:
    target = f"no prefetch: hook total <= {NO_PREFETCH_RATIO}x slowest single FHIR query"
    if not result or result.get("skipped"):
        return Check(target, (result or {}).get("skipped", "not measured"), None)
    if result.get("ratio") is None:
        return Check(target, f"hook failed: HTTP statuses {result['hook_statuses']}", False)
    measured = (
        f"{result['hook_total_ms']:.0f} ms vs {result['slowest_query_ms']:.0f} ms "
        f"({result['slowest_query']}) = {result['ratio']:.2f}x"
    )
    return Check(target, measured, result["ratio"] <= NO_PREFETCH_RATIO)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


HEADER = (
    "| resources | c | service p50 / p95 / p99 ms | floor p50 / p95 / p99 ms | p50 ratio "
    "| service req/s | floor req/s | req/s ratio | CPU ms/req service / floor | n |"
)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [HEADER, "|" + "---:|" * 10]
    for row in rows:
        s, f = row["service"], row["floor"]
        lines.append(
            f"| {row['size']:,} | {row['concurrency']} "
            f"| {_fmt(s['p50'])} / {_fmt(s['p95'])} / {_fmt(s['p99'])} "
            f"| {_fmt(f['p50'])} / {_fmt(f['p95'])} / {_fmt(f['p99'])} "
            f"| {_fmt(_ratio(s['p50'], f['p50']), 2)}x | {_fmt(s['rps'])} | {_fmt(f['rps'])} "
            f"| {_fmt(_ratio(s['rps'], f['rps']), 2)}x | {_fmt(s.get('cpu_ms'), 2)} / {_fmt(f.get('cpu_ms'), 2)} "
            f"| {s['n']} |"
        )
    return "\n".join(lines)


def no_prefetch_lines(result: dict[str, Any] | None) -> list[str]:
    if not result or result.get("skipped"):
        return [f"No-prefetch path: skipped ({(result or {}).get('skipped', 'not run')})."]
    if result.get("hook_total_ms") is None:
        return [f"No-prefetch path: the hook failed (HTTP statuses {result['hook_statuses']})."]
    queries = ", ".join(
        f"{key} {ms:.0f} ms ({result['queries'][key]['resources']} in {result['queries'][key]['pages']} pages)"
        for key, ms in sorted(result["query_median_ms"].items(), key=lambda kv: -kv[1])
    )
    return [
        f"No-prefetch path ({result['chart_size']:,}-resource chart read from "
        f"{result.get('source', 'the FHIR test server')}, median of "
        f"{result['rounds']} rounds): hook total {result['hook_total_ms']:.0f} ms; slowest query "
        f"{result['slowest_query_ms']:.0f} ms; ratio {result['ratio']:.2f}x "
        f"(sequential sum of the queries {result['query_sum_ms']:.0f} ms). "
        f"The service's fetch step alone (gather, all queries in parallel): {result['fetch_ms']:.0f} ms = "
        f"{result['fetch_ratio']:.2f}x the slowest query; the rest of the hook total is the summary.",
        f"Queries: {queries}.",
    ]


def markdown(
    rows: list[dict[str, Any]],
    found: list[Check],
    no_prefetch: dict[str, Any] | None,
    machine: dict[str, Any],
    repeat: dict[str, Any] | None = None,
) -> str:
    out = [
        f"Latency and throughput of `POST /cds-services/sarcoma-patient-view` with full prefetch, against a "
        f"floor app (Flask + gunicorn, same settings, parses the body and returns constant cards). "
        f"gunicorn {machine['workers']} workers x {machine['threads']} threads; {machine['cpus']} CPUs; "
        f"{machine['python']}; {machine['when']}; load average at start "
        f"{machine['load_average_at_start'][0]:.1f} (other processes on the machine add noise to both).",
        "",
        table(rows),
        "",
        repeat_line(repeat),
        "",
        *no_prefetch_lines(no_prefetch),
        "",
        "| target | measured | result |",
        "|---|---|---|",
        *(f"| {c.target} | {c.measured} | {c.verdict} |" for c in found),
        "",
    ]
    return "\n".join(out)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted({r["concurrency"] for r in rows})
    fig, axes = plt.subplots(1, len(levels), figsize=(5.5 * len(levels), 4.2), squeeze=False, sharey=True)
    for ax, level in zip(axes[0], levels, strict=True):
        cells = sorted((r for r in rows if r["concurrency"] == level), key=lambda r: r["size"])
        sizes = [r["size"] for r in cells]
        for who, colour in (("service", "tab:red"), ("floor", "tab:blue")):
            for stat, style in (("p50", "-o"), ("p99", "--^")):
                values = [r[who][stat] for r in cells]
                ax.plot(sizes, values, style, color=colour, label=f"{who} {stat}")
        ax.plot([100, 5000], [P99_MS, BIG_P99_MS], "kx", markersize=9, label="targets (p99)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("chart size (resources)")
        ax.set_title(f"concurrency {level}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("latency (ms)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(out_dir: Path, result: dict[str, Any], found: list[Check]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {**result, "checks": [c.__dict__ | {"verdict": c.verdict} for c in found]}
    (out_dir / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "latest.md").write_text(
        markdown(result["rows"], found, result.get("no_prefetch"), result["machine"], result.get("repeat_open"))
    )
    plot(result["rows"], out_dir / "latency.png")
