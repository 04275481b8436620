"""``sarcoma-cds feedback-report``: per statement, cards shown, accepted, overridden and why."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from store_builders import sqlite_store

from cds_service.cli import main
from cds_service.feedback_report import build_report, report_lines, statement_key
from cds_service.feedback_store import FeedbackItem, FeedbackStore, IssuedCard

SERVICE = "sarcoma-patient-view"
REASONS = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def reason(code: str, comment: str | None = None) -> dict:
    override: dict = {"reason": {"code": code, "system": REASONS}}
    if comment:
        override["userComment"] = comment
    return override


@pytest.fixture
def known(tmp_path: Path) -> FeedbackStore:
    """Three cards citing S10 (one also S2); one accepted, one overridden with a reason, one without feedback."""
    store = sqlite_store(tmp_path / "feedback.sqlite3")
    store.record_issued(SERVICE, "h-1", [IssuedCard("c-1", ("S10", "S2"), "2.0.0+abc")])
    store.record_issued(SERVICE, "h-2", [IssuedCard("c-2", ("S10",), "2.0.0+abc")])
    store.record_issued(SERVICE, "h-3", [IssuedCard("c-3", ("S10",), "2.0.0+abc")])
    store.add(SERVICE, [FeedbackItem("c-1", "accepted", "2026-03-01T10:00:00.000Z", ("s-1",))])
    overridden = FeedbackItem("c-2", "overridden", "2026-03-01T10:01:00.000Z", (), reason("patient-refuses", "wait"))
    store.add(SERVICE, [overridden])
    store.add(SERVICE, [overridden])  # resent: still one override
    return store


def test_report_counts_a_small_known_set(known):
    report = build_report(known)
    by_id = {row.statement: row for row in report.statements}
    assert [row.statement for row in report.statements] == ["S2", "S10"]
    s10 = by_id["S10"]
    assert (s10.shown, s10.accepted, s10.overridden) == (3, 1, 1)
    assert s10.reasons == (("patient-refuses", 1),)
    s2 = by_id["S2"]
    assert (s2.shown, s2.accepted, s2.overridden, s2.reasons) == (1, 1, 0, ())
    assert report.versions == (("2.0.0+abc", 3, 3),)
    assert [(c.text, c.statements) for c in report.comments] == [("wait", ("S10",))]
    assert report.unmatched == 0


def test_an_override_without_a_coded_reason_is_counted_as_such(known):
    known.add(SERVICE, [FeedbackItem("c-3", "overridden", "2026-03-01T10:02:00.000Z")])
    s10 = next(row for row in build_report(known).statements if row.statement == "S10")
    assert s10.overridden == 2
    assert dict(s10.reasons) == {"patient-refuses": 1, "no reason given": 1}


def test_a_card_both_accepted_and_overridden_counts_once_for_each(known):
    known.add(SERVICE, [FeedbackItem("c-1", "overridden", "2026-03-01T11:00:00.000Z", (), reason("need-more-info"))])
    s2 = next(row for row in build_report(known).statements if row.statement == "S2")
    assert (s2.shown, s2.accepted, s2.overridden) == (1, 1, 1)


def test_feedback_without_an_issued_card_is_reported_apart(known):
    known.add(SERVICE, [FeedbackItem("purged-card", "overridden", "2026-03-01T10:00:00.000Z")])
    report = build_report(known)
    assert report.unmatched == 1
    assert sum(row.overridden for row in report.statements if row.statement == "S10") == 1


def test_statements_sort_by_letters_then_number():
    assert sorted(["S10", "G7", "S2", "S1"], key=statement_key) == ["G7", "S1", "S2", "S10"]


def test_the_text_report_has_one_row_per_statement_and_the_comments(known):
    lines = report_lines(build_report(known))
    assert lines[0] == "Feedback by statement: 3 card(s) issued in 3 hook call(s)"
    table = lines[lines.index(next(line for line in lines if line.startswith("statement"))) :]
    assert table[1].split() == ["S2", "1", "1", "0", "-"]
    assert table[2].split() == ["S10", "3", "1", "1", "patient-refuses", "(1)"]
    assert "  'wait' (S10)" in lines


def test_the_command_prints_the_report(known, capsys):
    assert main(["feedback-report", "--db", str(known.db.path)]) == 0
    out = capsys.readouterr().out
    assert "S10             3         1           1  patient-refuses (1)" in out


def test_the_command_reads_cds_feedback_db_by_default(known, capsys, monkeypatch):
    monkeypatch.setenv("CDS_FEEDBACK_DB", str(known.db.path))
    assert main(["feedback-report"]) == 0
    assert "S10" in capsys.readouterr().out


def test_the_command_writes_a_png_plot(known, tmp_path, capsys):
    png = tmp_path / "plots" / "feedback.png"
    assert main(["feedback-report", "--db", str(known.db.path), "--png", str(png)]) == 0
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert f"wrote {png}" in capsys.readouterr().err


def test_without_matplotlib_the_command_says_how_to_install_it(known, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an install without the bench extra sees
    assert main(["feedback-report", "--db", str(known.db.path), "--png", str(tmp_path / "f.png")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "matplotlib, which is not installed" in captured.err and "sarcoma-cds[bench]" in captured.err
    assert not (tmp_path / "f.png").exists()


def test_an_empty_database_prints_an_empty_report_and_no_plot(tmp_path, capsys):
    store = sqlite_store(tmp_path / "empty.sqlite3")
    assert main(["feedback-report", "--db", str(store.db.path), "--png", str(tmp_path / "f.png")]) == 0
    captured = capsys.readouterr()
    assert "No issued cards recorded." in captured.out
    assert "no plot written" in captured.err and not (tmp_path / "f.png").exists()


def test_a_missing_database_is_one_line_and_status_2(tmp_path, capsys):
    missing = tmp_path / "nope.sqlite3"
    assert main(["feedback-report", "--db", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no feedback database at" in err
    assert not missing.exists()  # the report never creates a database
