"""The ``sarcoma-cds`` command line: evaluate, request, load-fixtures, card-report, check-config, serve's checks.

``serve`` itself is started for real in ``test_logging.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from cds_service import cli
from cds_service.cli import DETAIL_WORDS_MAX, MAX_CARDS, as_transaction, main, measure_chart, plain_text, request_json
from cds_service.config import Config
from cds_service.knowledge import load_knowledge
from cds_service.protocol.request import parse_hook_request
from cds_service.protocol.services import SARCOMA_PATIENT_VIEW
from fhir_fixtures.ehr import fixture_resources, hook_request, list_fixtures, stable_hook_instance

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
        ('{"resourceType": "Bundle", "type": "batch"}', [], "transaction, collection or searchset"),
        ('{"resourceType": "Patient", "id": "p"}', [], "neither a FHIR Bundle nor a CDS Hooks request"),
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


# --- evaluate: searchset Bundles and hook requests ----------------------------------------------


def _cards_json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    assert main(["evaluate", *argv, "--json"]) == 0, capsys.readouterr().err
    return _without_uuids(json.loads(capsys.readouterr().out)["cards"])


def _without_uuids(value: Any) -> Any:
    """Cards and suggestions get a new uuid on every call; the rest must be equal."""
    if isinstance(value, dict):
        return {key: _without_uuids(item) for key, item in value.items() if key != "uuid"}
    return [_without_uuids(item) for item in value] if isinstance(value, list) else value


def _write(tmp_path: Path, name: str, document: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def _searchset(bundle: dict) -> dict:
    """The chart as ``Patient/{id}/$everything`` returns it: matches with ids, and an outcome entry."""
    entries = [{"resource": r, "search": {"mode": "match"}} for r in fixture_resources(bundle)]
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "information", "code": "informational"}]}
    entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries) - 1, "entry": entries}


def test_evaluate_reads_a_searchset_as_everything_returns_it(tmp_path, capsys):
    everything = _searchset(json.loads(LMS.file.read_text()))
    assert _cards_json(capsys, _write(tmp_path, "everything.json", everything)) == _cards_json(capsys, LMS.slug)


def test_evaluate_reads_a_hook_request_as_request_prints_it(capsys):
    assert _cards_json(capsys, str(REQUESTS_DIR / f"{LMS.slug}.json")) == _cards_json(capsys, LMS.slug)


def test_evaluate_reads_an_unavailable_prefetch_key_as_the_hook_endpoint_does(tmp_path, capsys):
    body = json.loads((REQUESTS_DIR / f"{LMS.slug}.json").read_text())
    body["prefetch"]["observations"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    cards = _cards_json(capsys, _write(tmp_path, "request.json", body))
    assert cards != _cards_json(capsys, LMS.slug)


def test_evaluate_refuses_a_request_whose_prefetch_lacks_a_key(tmp_path, capsys):
    body = json.loads((REQUESTS_DIR / f"{LMS.slug}.json").read_text())
    del body["prefetch"]["conditions"]
    assert main(["evaluate", _write(tmp_path, "request.json", body)]) == 2
    assert "reads only the prefetch, which lacks prefetch.conditions" in _one_line_error(capsys)


def test_evaluate_refuses_an_invalid_hook_request(tmp_path, capsys):
    assert main(["evaluate", _write(tmp_path, "request.json", {"hook": "patient-view", "context": {}})]) == 2
    assert "not a valid hook request" in _one_line_error(capsys)


def test_evaluate_refuses_a_searchset_with_more_pages(tmp_path, capsys):
    everything = _searchset(json.loads(LMS.file.read_text()))
    everything["link"] = [{"relation": "next", "url": "https://ehr.example/fhir?page=2"}]
    assert main(["evaluate", _write(tmp_path, "page1.json", everything)]) == 2
    assert "further pages" in _one_line_error(capsys)


# --- --version, check-config, settings, serve's checks ------------------------------------------


def test_version_is_the_installed_package_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"sarcoma-cds {version('sarcoma-cds')}\n"


def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **settings: str) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("CDS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CDS_FEEDBACK_DB", str(tmp_path / "f.db"))
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


def test_check_config_passes_the_defaults_with_their_warnings(monkeypatch, tmp_path, capsys):
    _clean_env(monkeypatch, tmp_path)
    assert main(["check-config"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("configuration ok: authentication off")
    assert [line.split(": ")[1] for line in err.splitlines()] == ["warning", "warning"]


def test_check_config_prints_one_line_per_bad_setting_and_exits_2(monkeypatch, tmp_path, capsys):
    _clean_env(monkeypatch, tmp_path, CDS_AUTH_REQUIRED="enabled", CDS_FHIR_DEADLINE_S="inf", CDS_FHIR_TIMEOUT_S="0")
    assert main(["check-config"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "sarcoma-cds: error: CDS_FHIR_DEADLINE_S: 'inf' is not a duration; give a finite number of seconds above 0",
        "sarcoma-cds: error: CDS_FHIR_TIMEOUT_S: '0' is not a duration; give a finite number of seconds above 0",
        "sarcoma-cds: error: CDS_AUTH_REQUIRED: 'enabled' is not a boolean; use true or false",
    ]


def test_check_config_reads_the_trusted_issuers_file(monkeypatch, tmp_path, capsys):
    issuers = tmp_path / "issuers.json"
    issuers.write_text("[{")
    _clean_env(
        monkeypatch,
        tmp_path,
        CDS_AUTH_REQUIRED="true",
        CDS_TRUSTED_ISSUERS_FILE=str(issuers),
        CDS_PUBLIC_BASE_URL="https://cds.example.org",
    )
    assert main(["check-config"]) == 2
    [line] = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert f"CDS_TRUSTED_ISSUERS_FILE {issuers} is not valid JSON" in line


def test_settings_prints_the_table_config_declares(capsys):
    from cds_service.config import settings_table

    assert main(["settings"]) == 0
    assert capsys.readouterr().out == settings_table()


@pytest.mark.parametrize(
    "settings",
    [{"CDS_AUTH_REQUIRED": "enabled"}, {"CDS_AUTH_REQUIRED": "true"}, {"CDS_PORT": "http"}],
    ids=["bad-boolean", "auth-without-issuers", "bad-port"],
)
def test_serve_stops_on_bad_settings_before_gunicorn_starts(tmp_path, settings):
    import os

    env = {name: value for name, value in os.environ.items() if not name.startswith("CDS_")}
    env.update(settings, CDS_FEEDBACK_DB=str(tmp_path / "f.db"), CDS_PORT=settings.get("CDS_PORT", "1"))
    done = subprocess.run(
        [sys.executable, "-m", "cds_service.cli", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "Listening" not in done.stderr + done.stdout
    errors = done.stderr.splitlines()
    assert errors and all(line.startswith("sarcoma-cds: error: CDS_") for line in errors)
    assert len(errors) == (2 if settings.get("CDS_AUTH_REQUIRED") == "true" else 1)


def test_serve_runs_gunicorn_with_the_service_log_format_and_no_access_log():
    argv = cli.gunicorn_argv(Config(host="0.0.0.0", port=8081, workers=3, threads=2, log_level="WARNING"))
    assert argv[argv.index("--bind") + 1] == "0.0.0.0:8081"
    assert argv[argv.index("--workers") + 1] == "3" and argv[argv.index("--threads") + 1] == "2"
    assert argv[argv.index("--logger-class") + 1] == "cds_service.gunicorn_logging.Logger"
    assert argv[argv.index("--log-level") + 1] == "warning"
    assert "--access-logfile" not in argv and argv[-1] == "cds_service.wsgi:app"


def test_make_run_takes_a_port():
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(["make", "-n", "run", "PORT=8081"], cwd=root, capture_output=True, text=True, timeout=30)
    [command] = [line for line in done.stdout.splitlines() if "sarcoma-cds serve" in line]
    assert "--port 8081" in command and "CDS_SANDBOX=true" in command and "CDS_TODAY=" in command


def test_serve_on_a_reachable_address_without_protections_stops_before_gunicorn(monkeypatch, tmp_path, capsys):
    _clean_env(monkeypatch, tmp_path)
    assert main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("sarcoma-cds: error: CDS_HOST: 0.0.0.0 is reachable from other machines")


def test_check_config_names_what_an_insecure_demo_turns_off(monkeypatch, tmp_path, capsys):
    _clean_env(monkeypatch, tmp_path, CDS_HOST="0.0.0.0", CDS_INSECURE="true")
    assert main(["check-config"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("sarcoma-cds: warning: INSECURE: CDS_INSECURE=true on 0.0.0.0: authentication off")
