"""The ``sarcoma-cds`` command line: evaluate, request, load-fixtures (``serve`` is exercised by hand)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import responses

from cds_service import cli
from cds_service.cli import DETAIL_WORDS_MAX, MAX_CARDS, as_transaction, main, measure_chart, plain_text, request_json
from cds_service.config import Config
from cds_service.fixtures import hook_request, list_fixtures, stable_hook_instance
from cds_service.knowledge import load_knowledge
from cds_service.protocol.request import parse_hook_request
from cds_service.protocol.services import SARCOMA_PATIENT_VIEW

FIXTURES_DIR = Config().fixtures_dir
REQUESTS_DIR = FIXTURES_DIR / "requests"
LMS = next(f for f in list_fixtures(FIXTURES_DIR) if "lms" in f.slug and "metastatic" in f.slug)
FHIR = "http://fhir.test/r4"


def _bundle_file(tmp_path: Path, name: str, patient: str) -> Path:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "id": patient},
                "request": {"method": "PUT", "url": f"Patient/{patient}"},
            }
        ],
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(bundle))
    return path


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    return err


def test_evaluate_prints_cards_with_their_statement_ids(capsys):
    assert main(["evaluate", LMS.slug]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{LMS.slug}: ")
    assert "statements: " in out and "source: " in out
    for statement_id in LMS.must:
        assert statement_id in out
    assert "**" not in out  # markdown shown as plain text


def test_evaluate_json_is_a_cds_hooks_response(capsys):
    assert (
        main(["evaluate", str(LMS.file), "--json", "--today", "2026-03-01", "--base-url", "https://cds.example"]) == 0
    )
    response = json.loads(capsys.readouterr().out)
    assert response["cards"]
    assert all(card["indicator"] in {"info", "warning", "critical"} for card in response["cards"])
    assert all(link["url"].startswith("https://cds.example/") for c in response["cards"] for link in c.get("links", []))


@pytest.mark.parametrize(
    "content,argv_extra,message",
    [
        (None, [], "no such fixture file"),
        ("{broken", [], "not valid JSON"),
        ('{"resourceType": "Bundle", "type": "batch"}', [], "transaction or collection"),
        (None, ["--today", "yesterday"], "--today"),
    ],
)
def test_evaluate_reports_bad_input_in_one_line_with_status_2(tmp_path, capsys, content, argv_extra, message):
    path = tmp_path / "input.json"
    if content is not None:
        path.write_text(content)
    target = str(path) if not argv_extra else LMS.slug
    assert main(["evaluate", target, *argv_extra]) == 2
    assert message in _one_line_error(capsys)


def test_the_installed_command_shows_no_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "cds_service.cli", "evaluate", str(tmp_path / "missing.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("sarcoma-cds: error: ") and "Traceback" not in done.stderr


def test_request_prints_a_valid_hook_request(capsys):
    assert main(["request", LMS.slug]) == 0
    body = json.loads(capsys.readouterr().out)
    request = parse_hook_request(body, SARCOMA_PATIENT_VIEW)
    assert request.patient_id == LMS.patient
    assert set(request.prefetch) == set(SARCOMA_PATIENT_VIEW.prefetch)


def test_request_without_prefetch_names_the_fhir_server(capsys):
    assert main(["request", LMS.slug, "--no-prefetch", "--fhir", FHIR, "--token", "t"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert "prefetch" not in body and body["fhirServer"] == FHIR
    assert parse_hook_request(body, SARCOMA_PATIENT_VIEW).fhir_authorization is not None


def test_request_without_prefetch_or_server_is_refused(capsys):
    assert main(["request", LMS.slug, "--no-prefetch"]) == 2
    assert "FHIR server" in _one_line_error(capsys)


def test_committed_request_files_match_the_generator(tmp_path):
    """``sarcoma-cds request --all --out fhir_fixtures/requests/`` regenerates them; they must not go stale."""
    assert main(["request", "--all", "--out", str(tmp_path)]) == 0
    generated = {p.name: p.read_text() for p in tmp_path.glob("*.json")}
    committed = {p.name: p.read_text() for p in REQUESTS_DIR.glob("*.json")}
    assert sorted(committed) == sorted(generated), "run: sarcoma-cds request --all --out fhir_fixtures/requests/"
    stale = [name for name in generated if generated[name] != committed[name]]
    assert not stale, f"stale request files {stale}; run: sarcoma-cds request --all --out fhir_fixtures/requests/"


def test_committed_request_files_are_spec_exact():
    for path in sorted(REQUESTS_DIR.glob("*.json")):
        body = json.loads(path.read_text())
        assert body["hookInstance"] == stable_hook_instance(path.stem)
        assert parse_hook_request(body, SARCOMA_PATIENT_VIEW).prefetch.keys() == SARCOMA_PATIENT_VIEW.prefetch.keys()


def test_request_file_form_is_stable():
    body = hook_request(LMS.slug, fixtures_dir=FIXTURES_DIR, hook_instance=stable_hook_instance(LMS.slug))
    assert request_json(body) == request_json(json.loads(request_json(body)))
    assert request_json(body).endswith("}\n")


def test_plain_text_drops_markup_but_keeps_escaped_characters():
    text = plain_text("## Why\n\n**S28: Doxorubicin** _Evidence:_ [I, A] in 8890\\/3 \\*x\\* [page](https://e.x/a)")
    assert text == "Why\n\nS28: Doxorubicin Evidence: [I, A] in 8890\\/3 *x* page <https://e.x/a>"


@responses.activate
def test_load_fixtures_posts_each_bundle_and_shows_progress(tmp_path, capsys):
    _bundle_file(tmp_path, "alpha", "alpha")
    _bundle_file(tmp_path, "beta", "beta")
    responses.post(
        FHIR,
        json={
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [{"response": {"status": "201 Created"}}],
        },
    )
    assert main(["load-fixtures", "--fhir", FHIR + "/", "--token", "secret", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "[1/2] alpha ... ok (" in out and "[2/2] beta ... ok (" in out
    assert len(responses.calls) == 2
    sent = responses.calls[0].request
    assert sent.url == FHIR
    assert sent.headers["Content-Type"] == "application/fhir+json"
    assert sent.headers["Authorization"] == "Bearer secret"
    assert json.loads(sent.body)["type"] == "transaction"


@responses.activate
def test_load_fixtures_fails_when_the_server_rejects_a_bundle(tmp_path, capsys):
    _bundle_file(tmp_path, "alpha", "alpha")
    _bundle_file(tmp_path, "beta", "beta")
    responses.post(FHIR, json={"resourceType": "Bundle", "type": "transaction-response", "entry": []})
    responses.post(
        FHIR,
        status=400,
        json={
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "invalid", "diagnostics": "bad gender"}],
        },
    )
    assert main(["load-fixtures", "--fhir", FHIR, str(tmp_path / "alpha.json"), str(tmp_path / "beta.json")]) == 1
    captured = capsys.readouterr()
    assert "[1/2] alpha ... ok" in captured.out
    assert "[2/2] beta ... failed" in captured.out and "HTTP 400: bad gender" in captured.out
    assert "1 of 2 bundle(s) failed: beta" in captured.err


@responses.activate
def test_load_fixtures_fails_when_an_entry_is_rejected(tmp_path, capsys):
    _bundle_file(tmp_path, "alpha", "alpha")
    responses.post(FHIR, json={"resourceType": "Bundle", "entry": [{"response": {"status": "422 Unprocessable"}}]})
    assert main(["load-fixtures", "--fhir", FHIR, str(tmp_path)]) == 1
    assert "1 entries rejected (422 Unprocessable)" in capsys.readouterr().out


@responses.activate
def test_load_fixtures_stops_when_the_server_is_unreachable(tmp_path, capsys):
    _bundle_file(tmp_path, "alpha", "alpha")
    responses.post(FHIR, body=requests.ConnectionError("refused"))
    assert main(["load-fixtures", "--fhir", FHIR, str(tmp_path)]) == 1
    assert "cannot reach the FHIR server" in capsys.readouterr().err


@responses.activate
def test_load_fixtures_stops_at_the_first_refused_token(tmp_path, capsys):
    _bundle_file(tmp_path, "alpha", "alpha")
    _bundle_file(tmp_path, "beta", "beta")
    responses.post(
        FHIR,
        status=401,
        json={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "security"}]},
    )
    assert main(["load-fixtures", "--fhir", FHIR, "--token", "wrong", str(tmp_path)]) == 1
    assert len(responses.calls) == 1
    assert "refused the request (HTTP 401" in capsys.readouterr().err


def test_load_fixtures_checks_every_bundle_before_sending(tmp_path, capsys):
    _bundle_file(tmp_path, "alpha", "alpha")
    (tmp_path / "broken.json").write_text("{")
    with responses.RequestsMock() as mocked:  # any request would fail the test
        assert main(["load-fixtures", "--fhir", FHIR, str(tmp_path)]) == 2
        assert not mocked.calls
    assert "broken.json" in _one_line_error(capsys)


def test_load_fixtures_names_a_missing_path(tmp_path, capsys):
    assert main(["load-fixtures", "--fhir", FHIR, str(tmp_path / "nowhere")]) == 2
    assert "no such file or folder" in _one_line_error(capsys)


def test_a_collection_is_loaded_as_a_transaction_of_puts():
    collection = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}],
    }
    [entry] = as_transaction(collection)["entry"]
    assert entry["request"] == {"method": "PUT", "url": "Patient/p1"}


def test_evaluate_words_evidence_as_its_source_must_be_quoted(capsys):
    assert main(["evaluate", LMS.slug]) == 0
    out = capsys.readouterr().out
    assert "ESMO grading as quoted by Dr.Oracle; not verified against the ESMO guideline" in out
    assert "as reported by" not in out and "seed" not in out


# --- card-report ------------------------------------------------------------------------------

KB = load_knowledge(Config().cards_dir)
LOCALISED = next(f for f in list_fixtures(FIXTURES_DIR) if f.slug.startswith("sts-i"))


def _card(summary: str, ids: list[str], detail_words: int = 10, label: str = "Canadian Cancer Society") -> dict:
    """A rendered card as the response JSON carries it (only what the report reads)."""
    return {
        "indicator": "info",
        "summary": summary,
        "detail": " ".join(["word"] * detail_words),
        "source": {"label": label},
        "links": [],
        "extension": {"org.sarcoma-cds.statements": ids},
    }


def test_card_report_prints_each_chart_its_ten_second_view_and_the_totals(capsys):
    assert main(["card-report", LMS.slug, LOCALISED.slug]) == 0
    out = capsys.readouterr().out
    assert f"knowledge base {KB.version}" in out
    assert f"\n{LMS.slug}: " in out and f"\n{LOCALISED.slug}: " in out  # in index order
    assert "  1. [" in out and " words  " in out
    assert "cards per chart, data quality aside: median" in out
    assert "words of detail per card:" in out and "charts meeting every target:" in out


def test_card_report_writes_the_file_it_prints(tmp_path, capsys):
    out_file = tmp_path / "report.txt"
    assert main(["card-report", LOCALISED.slug, "--out", str(out_file)]) == 0
    assert out_file.read_text(encoding="utf-8") == capsys.readouterr().out


def test_card_report_check_fails_only_when_a_target_is_missed(monkeypatch, capsys):
    monkeypatch.setattr(cli, "DETAIL_WORDS_MAX", 1)
    assert main(["card-report", LOCALISED.slug]) == 0  # measuring alone never fails
    assert main(["card-report", LOCALISED.slug, "--check"]) == 1
    assert "FAIL: detail of" in capsys.readouterr().out


def test_card_report_names_an_unknown_fixture(capsys):
    assert main(["card-report", "no-such-chart"]) == 2
    assert "no-such-chart" in _one_line_error(capsys)


def test_report_allows_three_cards_plus_data_quality():
    cards = [_card("Check the record", ["G7"])] + [_card("Plan: doxorubicin", ["S28"])] * MAX_CARDS
    chart = measure_chart("chart", cards, KB)
    assert chart.counted == MAX_CARDS and not chart.failures


def test_report_fails_a_fourth_card():
    chart = measure_chart("chart", [_card("Plan: doxorubicin", ["S28"])] * (MAX_CARDS + 1), KB)
    assert chart.failures == (f"{MAX_CARDS + 1} cards besides data quality (at most {MAX_CARDS})",)


@pytest.mark.parametrize(
    ("words", "passes"), [(DETAIL_WORDS_MAX - 1, True), (DETAIL_WORDS_MAX, True), (DETAIL_WORDS_MAX + 1, False)]
)
def test_report_detail_limit_per_card(words, passes):
    chart = measure_chart("chart", [_card("Plan: doxorubicin", ["S28"], detail_words=words)], KB)
    assert (not chart.failures) is passes


def test_report_fails_a_headline_that_names_no_option():
    chart = measure_chart("chart", [_card("Metastatic LMS: see the options below", ["S32", "S28"])], KB)
    assert chart.failures == ("the headline summary names no option",)


def test_report_needs_no_option_where_none_applies():
    assert not measure_chart("chart", [_card("GIST: the sarcoma guideline does not apply", ["G1"])], KB).failures


@pytest.mark.parametrize(
    "text", ["seed 004", "flag F7", "URL inferred", "V-TXT", "Diagnosis: sts", "extent none", "lines_of_therapy 0"]
)
def test_report_fails_internal_language_on_a_card(text):
    chart = measure_chart("chart", [_card(f"Plan: doxorubicin ({text})", ["S28"])], KB)
    assert chart.failures and "internal language" in chart.failures[0]


def test_report_reads_record_references_as_clinical_text():
    chart = measure_chart("chart", [_card("Plan: doxorubicin (Condition/sts-primary_1)", ["S28"])], KB)
    assert not chart.failures
