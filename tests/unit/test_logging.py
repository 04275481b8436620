"""The service's own log lines: written, one per call, in text or JSON, and never with patient data.

STYLE "never echo request values"; cds-hooks.md item 28 "never log JWTs". The first tests run calls
in-process with a fixture patient's chart as prefetch and capture every record of every logger at
DEBUG; the last starts the real ``sarcoma-cds serve`` (gunicorn) with ``CDS_LOG_FORMAT=json`` and
reads what the process writes, since a logger without a handler writes nothing however many
records a test captures in memory.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from cds_service import Config, create_app
from cds_service.logs import HANDLER_NAME, JsonFormatter, TextFormatter
from fhir_fixtures.ehr import build_prefetch, fixture_resources, load_bundle, request_context

HOOK_URL = "/cds-services/sarcoma-patient-view"
FEEDBACK_URL = HOOK_URL + "/feedback"
FIXTURES = Path(__file__).resolve().parents[2] / "fhir_fixtures"
FHIR = "https://ehr.example.com/fhir"
ACCESS_TOKEN = "access-token-9f8e7d6c5b4a"


def _resources(path: Path) -> list[dict[str, Any]]:
    return fixture_resources(load_bundle(path))


def _identified_fixture() -> Path:
    """The first fixture whose Patient has a name, an identifier and a birth date."""
    for path in sorted(FIXTURES.glob("*.json")):
        for resource in _resources(path):
            if resource.get("resourceType") == "Patient" and {"name", "identifier", "birthDate"} <= resource.keys():
                return path
    pytest.skip("no fixture patient with name, identifier and birthDate")


def _strings(value: Any, keys: set[str]) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in keys and isinstance(item, str):
                yield item
            elif key in keys and isinstance(item, list):
                yield from (x for x in item if isinstance(x, str))
            else:
                yield from _strings(item, keys)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, keys)


def identifying_values(resources: list[dict[str, Any]]) -> set[str]:
    """Names, identifiers, birth date of the patient; display and text of the clinical data; resource ids."""
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    values = {patient["id"], patient["birthDate"]}
    values |= set(_strings(patient.get("name"), {"family", "given", "text"}))
    values |= set(_strings(patient.get("identifier"), {"value"}))
    values |= set(_strings(patient.get("address"), {"line", "city", "postalCode"}))
    values |= set(_strings(patient.get("telecom"), {"value"}))
    for resource in resources:
        if resource["resourceType"] != "Patient":
            values |= set(_strings(resource.get("code"), {"display", "text"}))
            values |= set(_strings(resource.get("valueCodeableConcept"), {"display", "text"}))
    values |= {resource["id"] for resource in resources if resource.get("id")}
    values.add(ACCESS_TOKEN)
    return {value for value in values if len(value) >= 4}


def prefetch_for(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The prefetch an EHR would send for these resources (every template answered)."""
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    return build_prefetch(bundle, request_context(bundle))


@pytest.fixture(scope="module")
def chart() -> list[dict[str, Any]]:
    return _resources(_identified_fixture())


@pytest.fixture
def request_body(chart):
    patient_id = next(r["id"] for r in chart if r["resourceType"] == "Patient")

    def build(**fields: Any) -> dict[str, Any]:
        body = {
            "hook": "patient-view",
            "hookInstance": str(uuid.uuid4()),
            "context": {"patientId": patient_id, "userId": "Practitioner/dr-1"},
            "prefetch": prefetch_for(chart),
        }
        body.update(fields)
        return body

    return build


@pytest.fixture
def logged(tmp_path, caplog):
    """The app, and a function returning every log line written so far (message and traceback)."""
    app = create_app(Config(feedback_db=tmp_path / "f.db", allowed_fhir_servers=(FHIR,)))
    caplog.set_level(logging.DEBUG)
    for name in ("cds_service", "werkzeug", "flask", "urllib3", "requests", "gunicorn"):
        logging.getLogger(name).setLevel(logging.DEBUG)

    def lines() -> str:
        formatter = TextFormatter()
        return "\n".join(formatter.format(record) for record in caplog.records)

    return app.test_client(), lines


def assert_no_leak(text: str, values: set[str]) -> None:
    leaked = sorted(value for value in values if value in text)
    assert not leaked, f"log lines carry patient data: {leaked}"


def test_hook_call_logs_instance_and_timing_but_no_patient_data(logged, request_body, chart):
    client, lines = logged
    body = request_body()
    response = client.post(HOOK_URL, json=body)
    assert response.status_code == 200
    text = lines()
    assert_no_leak(text, identifying_values(chart))
    hook_line = next(line for line in text.splitlines() if body["hookInstance"] in line)
    assert re.search(r"ms=\d+(\.\d+)?", hook_line)


def test_400_logs_no_patient_data(logged, request_body, chart):
    client, lines = logged
    body = request_body()
    body["context"]["userId"] = next(r["name"][0]["family"] for r in chart if r["resourceType"] == "Patient")
    assert client.post(HOOK_URL, json=body).status_code == 400
    assert_no_leak(lines(), identifying_values(chart))


def test_400_for_another_patients_data_logs_no_patient_data(logged, request_body, chart):
    client, lines = logged
    body = request_body()
    body["context"]["patientId"] = "someone-else"
    assert client.post(HOOK_URL, json=body).status_code == 400
    assert_no_leak(lines(), identifying_values(chart))


def test_412_without_fhir_server_logs_no_patient_data(logged, request_body, chart):
    client, lines = logged
    body = request_body()
    del body["prefetch"]["observations"]
    assert client.post(HOOK_URL, json=body).status_code == 412
    assert_no_leak(lines(), identifying_values(chart))


@responses.activate
def test_412_after_a_failed_fhir_call_logs_neither_patient_data_nor_token(logged, request_body, chart):
    responses.get(re.compile(re.escape(FHIR) + r"/.*"), status=500, body="patient not available")
    client, lines = logged
    body = request_body(fhirServer=FHIR, fhirAuthorization={"access_token": ACCESS_TOKEN, "token_type": "Bearer"})
    del body["prefetch"]["conditions"]
    assert client.post(HOOK_URL, json=body).status_code == 412
    assert len(responses.calls) == 1
    assert_no_leak(lines(), identifying_values(chart))


def test_feedback_logs_no_comment_text(logged, chart):
    client, lines = logged
    family = next(r["name"][0]["family"] for r in chart if r["resourceType"] == "Patient")
    feedback = {
        "feedback": [
            {
                "card": str(uuid.uuid4()),
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-24T10:00:00Z",
                "overrideReason": {"userComment": f"{family} declined chemotherapy"},
            }
        ]
    }
    assert client.post(FEEDBACK_URL, json=feedback).status_code == 200
    assert_no_leak(lines(), identifying_values(chart) | {"declined chemotherapy"})


def test_internal_error_logs_no_patient_data(logged, request_body, chart, monkeypatch):
    import cds_service.api.hooks as hooks

    family = next(r["name"][0]["family"] for r in chart if r["resourceType"] == "Patient")

    def fail(*args: Any, **kwargs: Any) -> None:
        raise ValueError(f"unexpected value {family!r}")

    monkeypatch.setattr(hooks, "cards_for", fail)
    client, lines = logged
    assert client.post(HOOK_URL, json=request_body()).status_code == 500
    assert_no_leak(lines(), identifying_values(chart))


# --- the lines as written ---------------------------------------------------------------------

TEXT_HOOK_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO cds_service\.hooks: hook call "
    r"hookInstance=(?P<instance>[0-9a-f-]{36}) service=sarcoma-patient-view status=200 "
    r"resources=\d+ fetched=- unavailable=0 cards=\d+( \w+=\S+)* ms=\d+(\.\d+)?$"
)


def _written(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


def test_a_hook_call_writes_one_text_line_with_time_level_instance_status_counts_and_ms(tmp_path, request_body, capsys):
    client = create_app(Config(feedback_db=tmp_path / "f.db")).test_client()
    _written(capsys)  # start-up warnings
    body = request_body()
    assert client.post(HOOK_URL, json=body).status_code == 200
    [line] = [line for line in _written(capsys) if body["hookInstance"] in line]
    match = TEXT_HOOK_LINE.match(line)
    assert match, line
    assert match["instance"] == body["hookInstance"]


def test_json_lines_carry_the_same_fields_as_values(tmp_path, request_body, capsys):
    client = create_app(Config(feedback_db=tmp_path / "f.db", log_format="json")).test_client()
    body = request_body()
    assert client.post(HOOK_URL, json=body).status_code == 200
    [line] = [json.loads(line) for line in _written(capsys) if body["hookInstance"] in line]
    assert line["level"] == "INFO" and line["logger"] == "cds_service.hooks" and line["message"] == "hook call"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert line["service"] == "sarcoma-patient-view" and line["status"] == 200
    assert line["unavailable"] == 0 and line["fetched"] == [] and line["cards"] >= 1 and line["resources"] > 1
    assert isinstance(line["ms"], float) and line["ms"] > 0


def test_a_refused_call_is_logged_with_its_status_and_a_uuid_instance_only(tmp_path, request_body, capsys):
    client = create_app(Config(feedback_db=tmp_path / "f.db", log_format="json")).test_client()
    _written(capsys)
    instance = str(uuid.uuid4())
    assert client.post(HOOK_URL, json={"hookInstance": instance}).status_code == 400
    assert client.post(HOOK_URL, json={**request_body(), "hookInstance": "Smith, John"}).status_code == 400
    assert client.post("/cds-services/Smith-John", json=request_body()).status_code == 404
    hooks = [json.loads(line) for line in _written(capsys) if '"hook call"' in line]
    assert [(h["status"], h["hookInstance"], h["service"]) for h in hooks] == [
        (400, instance, "sarcoma-patient-view"),
        (400, None, "sarcoma-patient-view"),
        (404, None, None),  # a made-up service id is not echoed
    ]
    assert all(h["ms"] >= 0 for h in hooks)


def test_feedback_calls_are_logged_with_their_counts(tmp_path, capsys):
    client = create_app(Config(feedback_db=tmp_path / "f.db", log_format="json")).test_client()
    item = {"card": str(uuid.uuid4()), "outcome": "accepted", "outcomeTimestamp": "2026-03-01T10:00:00Z"}
    item["acceptedSuggestions"] = [{"id": str(uuid.uuid4())}]
    _written(capsys)
    assert client.post(FEEDBACK_URL, json={"feedback": [item]}).status_code == 200
    [line] = [json.loads(line) for line in _written(capsys) if '"feedback call"' in line]
    assert line["status"] == 200 and line["accepted"] == 1 and line["overridden"] == 0 and "ms" in line


def test_other_routes_log_the_route_pattern_not_the_path_sent(tmp_path, capsys):
    client = create_app(Config(feedback_db=tmp_path / "f.db", log_format="json")).test_client()
    _written(capsys)
    client.get("/statements/Smith-John")
    client.get("/cds-services")
    client.get("/healthz")  # probes: DEBUG only
    lines = [json.loads(line) for line in _written(capsys)]
    assert [(line["route"], line["status"]) for line in lines if line["message"] == "request"] == [
        ("/statements/<statement_id>", 404),
        ("/cds-services", 200),
    ]
    assert "Smith" not in json.dumps(lines)


def test_the_handler_is_set_once_however_often_the_app_is_built(tmp_path, request_body, capsys):
    for _ in range(3):
        app = create_app(Config(feedback_db=tmp_path / "f.db"))
    ours = [h for h in logging.getLogger("cds_service").handlers if h.get_name() == HANDLER_NAME]
    assert len(ours) == 1
    _written(capsys)
    body = request_body()
    app.test_client().post(HOOK_URL, json=body)
    assert sum(body["hookInstance"] in line for line in _written(capsys)) == 1


def test_start_up_warnings_carry_time_and_level(tmp_path, capsys):
    create_app(Config(feedback_db=tmp_path / "f.db"))
    warnings = [line for line in _written(capsys) if " WARNING " in line]
    assert sum("CDS_AUTH_REQUIRED" in line or "CDS_ALLOWED_FHIR_SERVERS" in line for line in warnings) == 2
    assert all(re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+Z WARNING cds_service\.auth: ", line) for line in warnings)


def test_log_level_setting_silences_info(tmp_path, request_body, capsys):
    client = create_app(Config(feedback_db=tmp_path / "f.db", log_level="WARNING")).test_client()
    client.post(HOOK_URL, json=request_body())
    assert not [line for line in _written(capsys) if "hook call" in line]
    create_app(Config(feedback_db=tmp_path / "f.db"))  # back to INFO for the tests after this one


def test_a_traceback_stays_inside_one_json_line():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("cds_service", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    [line] = JsonFormatter().format(record).splitlines()
    assert "ValueError" in json.loads(line)["traceback"]


# --- the real process -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _sarcoma_cds() -> list[str]:
    installed = Path(sys.executable).parent / "sarcoma-cds"
    return [str(installed)] if installed.exists() else [sys.executable, "-m", "cds_service.cli"]


@pytest.fixture
def served(tmp_path):
    """``sarcoma-cds serve`` under gunicorn with JSON logs; yields its URL and a reader of its output."""
    port = _free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("CDS_")}
    env.update(CDS_LOG_FORMAT="json", CDS_FEEDBACK_DB=str(tmp_path / "f.db"))
    output = tmp_path / "serve.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [*_sarcoma_cds(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, output.read_text()
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # still starting, on a busy machine too
                pass
            assert time.monotonic() < deadline, "serve did not answer within 60 s"
            time.sleep(0.1)

        def stop_and_read() -> str:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
            return output.read_text(encoding="utf-8")

        yield base, stop_and_read
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_the_served_process_writes_one_json_line_per_hook_call_and_no_patient_data(served, chart):
    base, stop_and_read = served
    fixture = _identified_fixture()
    body = json.loads((FIXTURES / "requests" / f"{fixture.stem}.json").read_text())
    assert requests.post(f"{base}{HOOK_URL}", json=body, timeout=30).status_code == 200
    family = next(r["name"][0]["family"] for r in chart if r["resourceType"] == "Patient")
    comment = {"userComment": f"{family} declined chemotherapy"}
    item = {"card": str(uuid.uuid4()), "outcome": "overridden", "outcomeTimestamp": "2026-03-01T10:00:00Z"}
    assert requests.post(f"{base}{FEEDBACK_URL}", json={"feedback": [{**item, "overrideReason": comment}]}).ok

    text = stop_and_read()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON, gunicorn's too
    [hook] = [line for line in lines if line.get("hookInstance") == body["hookInstance"]]
    assert hook["message"] == "hook call" and hook["status"] == 200 and hook["level"] == "INFO"
    assert isinstance(hook["ms"], float) and hook["ms"] > 0 and hook["cards"] >= 1
    assert [line["status"] for line in lines if line["message"] == "feedback call"] == [200]
    warnings = [line for line in lines if line["level"] == "WARNING"]
    assert any("CDS_AUTH_REQUIRED" in line["message"] for line in warnings) and all("time" in w for w in warnings)
    assert_no_leak(text, identifying_values(chart) | {"declined chemotherapy"})
