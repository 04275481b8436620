"""Which statements oncologists accept or override, and why: issued cards joined to their feedback.

Shared by ``sarcoma-cds feedback-report`` (text, and a PNG bar plot with matplotlib from the
``bench`` extra) and the sandbox page (JSON). A card that cites several statements counts once for
each of them; a card counts once as accepted and once as overridden however often feedback is resent.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .feedback_store import FeedbackStore
from .storage import StoreDown
from .storage.database import Database, SqliteDatabase

NO_REASON = "no reason given"


@dataclass(frozen=True)
class StatementFeedback:
    statement: str
    shown: int
    accepted: int
    overridden: int
    reasons: tuple[tuple[str, int], ...] = ()
    """Override reasons (the coded reason's code, or ``NO_REASON``) with counts, most frequent first."""

    def to_json(self) -> dict[str, Any]:
        return {
            "statement": self.statement,
            "shown": self.shown,
            "accepted": self.accepted,
            "overridden": self.overridden,
            "overrideReasons": [{"reason": reason, "count": count} for reason, count in self.reasons],
        }


@dataclass(frozen=True)
class Comment:
    text: str
    statements: tuple[str, ...]


@dataclass(frozen=True)
class FeedbackReport:
    statements: tuple[StatementFeedback, ...]
    versions: tuple[tuple[str, int, int], ...]
    """Knowledge-base versions with cards issued and hook calls, oldest first."""
    comments: tuple[Comment, ...]
    unmatched: int
    """Cards with feedback but no issued record (issued before recording began, or purged)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "statements": [s.to_json() for s in self.statements],
            "knowledgeVersions": [{"version": v, "cards": c, "hookCalls": h} for v, c, h in self.versions],
            "feedbackWithoutIssuedCard": self.unmatched,
        }


def statement_key(statement: str) -> tuple[str, int, str]:
    """S2 before S10: the letters, then the number."""
    match = re.match(r"([A-Za-z]*)(\d*)", statement)
    letters, number = (match.group(1), match.group(2)) if match else ("", "")
    return letters, int(number) if number else -1, statement


def build_report(store: FeedbackStore) -> FeedbackReport:
    reasons: dict[str, Counter[str]] = {}
    comments = []
    for _card, statements, override in store.overrides():
        override = override or {}
        reason = (override.get("reason") or {}).get("code") or NO_REASON
        for statement in statements:
            reasons.setdefault(statement, Counter())[reason] += 1
        if override.get("userComment"):
            comments.append(Comment(override["userComment"], statements))
    rows = [
        StatementFeedback(sid, shown, accepted, overridden, tuple(reasons.get(sid, Counter()).most_common()))
        for sid, shown, accepted, overridden in store.statement_tallies()
    ]
    rows.sort(key=lambda row: statement_key(row.statement))
    return FeedbackReport(tuple(rows), tuple(store.issued_totals()), tuple(comments), store.unmatched_feedback())


def report_lines(report: FeedbackReport) -> list[str]:
    """The report as terminal text: one row per statement, then the override comments."""
    cards = sum(c for _, c, _ in report.versions)
    calls = sum(h for _, _, h in report.versions)
    lines = [f"Feedback by statement: {cards} card(s) issued in {calls} hook call(s)"]
    lines += [f"  knowledge base {v}: {c} card(s) in {h} hook call(s)" for v, c, h in report.versions]
    if report.unmatched:
        lines.append(f"  feedback on {report.unmatched} card(s) with no issued record (before recording, or purged)")
    lines.append("")
    if not report.statements:
        return lines + ["No issued cards recorded."]
    lines.append(f"{'statement':<10} {'shown':>6} {'accepted':>9} {'overridden':>11}  override reasons")
    for row in report.statements:
        reasons = ", ".join(f"{reason} ({count})" for reason, count in row.reasons) or "-"
        lines.append(f"{row.statement:<10} {row.shown:>6} {row.accepted:>9} {row.overridden:>11}  {reasons}")
    if report.comments:
        lines += ["", "Override comments:"]
        lines += [f"  {c.text!r} ({', '.join(sorted(c.statements, key=statement_key))})" for c in report.comments]
    return lines


class ReportError(Exception):
    """The report cannot be made: one line for the user, exit status 2."""


def run(db: Database, png: Path | None) -> int:
    """``sarcoma-cds feedback-report``: print the report; with ``png``, plot it too."""
    if png is not None:
        _pyplot()  # before any output: a missing matplotlib is said first, not after the table
    if isinstance(db, SqliteDatabase) and not db.path.is_file():
        raise ReportError(f"no feedback database at {db.path} (pass --db or set CDS_FEEDBACK_DB or CDS_DATABASE_URL)")
    try:
        report = build_report(FeedbackStore(db))
    except StoreDown as down:
        raise ReportError(f"{db.describe()} cannot be read as the feedback database ({down.reason})") from None
    finally:
        db.close()
    print("\n".join(report_lines(report)))
    if png is not None:
        if report.statements:
            write_png(report, png)
            print(f"wrote {png}", file=sys.stderr)
        else:
            print("no plot written: no issued cards recorded", file=sys.stderr)
    return 0


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ReportError(
            "--png needs matplotlib, which is not installed; install it with: pip install 'sarcoma-cds[bench]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_png(report: FeedbackReport, path: Path) -> None:
    """A horizontal bar per statement for shown, accepted and overridden."""
    plt = _pyplot()

    rows = list(reversed(report.statements))  # first statement at the top
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.35 * max(len(rows), 1)))
    height = 0.27
    for n, (label, colour) in enumerate((("shown", "tab:gray"), ("accepted", "tab:green"), ("overridden", "tab:red"))):
        values = [getattr(row, label) for row in rows]
        ax.barh([i + (1 - n) * height for i in range(len(rows))], values, height, label=label, color=colour)
    ax.set_yticks(range(len(rows)), [row.statement for row in rows])
    ax.set_xlabel("cards")
    ax.set_title("Feedback by guideline statement")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
