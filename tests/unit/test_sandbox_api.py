"""The sandbox endpoints: page, fixture list, fixture prefetch, stored feedback (``CDS_SANDBOX``)."""

from __future__ import annotations

import json

import pytest

from cds_service import Config, create_app
from cds_service.protocol.request import parse_hook_request
from cds_service.protocol.services import SARCOMA_PATIENT_VIEW
from fhir_fixtures.ehr import list_fixtures

FIXTURES = list_fixtures(Config().fixtures_dir)
LMS = next(f for f in FIXTURES if "lms" in f.slug and "metastatic" in f.slug)


def test_page_is_served_with_a_strict_content_security_policy(client):
    response = client.get("/sandbox")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for testid in (
        "patient-select",
        "card",
        "dismiss",
        "override-reason",
        "submit-dismiss",
        "raw-request",
        "raw-response",
        "feedback-report",
    ):
        assert f'data-testid="{testid}"' in page
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


@pytest.mark.parametrize("name,mimetype", [("sandbox.js", "text/javascript"), ("sandbox.css", "text/css")])
def test_assets_are_served(client, name, mimetype):
    response = client.get(f"/sandbox/assets/{name}")
    assert response.status_code == 200
    assert response.mimetype == mimetype


def test_page_needs_no_external_resources(client):
    for path in ("/sandbox", "/sandbox/assets/sandbox.css", "/sandbox/assets/sandbox.js"):
        text = client.get(path).get_data(as_text=True)
        assert "//fonts." not in text and "cdn" not in text.lower() and "@import" not in text


def test_unknown_asset_is_404(client):
    assert client.get("/sandbox/assets/index.html").status_code == 404


def test_fixture_list_comes_from_the_index(client):
    response = client.get("/sandbox/fixtures")
    assert response.status_code == 200
    listed = response.get_json()["fixtures"]
    assert [f["slug"] for f in listed] == [f.slug for f in FIXTURES]
    lms = next(f for f in listed if f["slug"] == LMS.slug)
    assert lms["patient"] == LMS.patient and lms["description"] == LMS.description


def test_fixture_prefetch_makes_a_valid_request(client):
    response = client.get(f"/sandbox/fixtures/{LMS.slug}/prefetch")
    assert response.status_code == 200
    body = response.get_json()
    assert body["context"] == {"userId": "Practitioner/sandbox-clinician", "patientId": LMS.patient}
    assert list(body["prefetch"]) == list(SARCOMA_PATIENT_VIEW.prefetch)
    request = {"hook": "patient-view", "hookInstance": "8d6f4e5c-1b2a-4c3d-9e8f-7a6b5c4d3e2f", **body}
    assert parse_hook_request(request, SARCOMA_PATIENT_VIEW).patient_id == LMS.patient


def test_the_page_flow_gives_cards(client):
    """What the page does: prefetch from the sandbox, then the hook call."""
    body = client.get(f"/sandbox/fixtures/{LMS.slug}/prefetch").get_json()
    request = {"hook": "patient-view", "hookInstance": "8d6f4e5c-1b2a-4c3d-9e8f-7a6b5c4d3e2f", **body}
    response = client.post("/cds-services/sarcoma-patient-view", json=request)
    assert response.status_code == 200
    assert response.get_json()["cards"]


@pytest.mark.parametrize("slug", ["no-such-patient", "..", "UPPER"])
def test_unknown_fixture_is_404_with_an_operation_outcome(client, slug):
    response = client.get(f"/sandbox/fixtures/{slug}/prefetch")
    assert response.status_code == 404
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-found"


def test_a_broken_fixture_is_reported_not_hidden(tmp_path):
    (tmp_path / "index.yaml").write_text("- file: broken.json\n  patient: broken\n  description: broken\n")
    (tmp_path / "broken.json").write_text("{")
    app = create_app(Config(feedback_db=tmp_path / "f.sqlite3", sandbox=True, fixtures_dir=tmp_path))
    response = app.test_client().get("/sandbox/fixtures/broken/prefetch")
    assert response.status_code == 500
    assert "not valid JSON" in response.get_json()["issue"][0]["diagnostics"]


def test_stored_feedback_is_listed(client):
    assert client.get("/sandbox/feedback").get_json() == {"feedback": []}
    item = {
        "card": "card-1",
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-24T10:00:00.000Z",
        "overrideReason": {
            "reason": {
                "code": "patient-refuses",
                "system": "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes",
                "display": "Patient declines",
            },
            "userComment": "wants time to decide",
        },
    }
    assert (
        client.post(
            "/cds-services/sarcoma-patient-view/feedback",
            data=json.dumps({"feedback": [item]}),
            content_type="application/json",
        ).status_code
        == 200
    )
    [row] = client.get("/sandbox/feedback").get_json()["feedback"]
    assert row["card"] == "card-1" and row["outcome"] == "overridden"
    assert row["overrideReason"]["reason"]["code"] == "patient-refuses"


def test_feedback_report_shows_issued_cards_against_their_statements(client):
    assert client.get("/sandbox/feedback-report").get_json() == {
        "statements": [],
        "knowledgeVersions": [],
        "feedbackWithoutIssuedCard": 0,
    }
    body = client.get(f"/sandbox/fixtures/{LMS.slug}/prefetch").get_json()
    request = {"hook": "patient-view", "hookInstance": "8d6f4e5c-1b2a-4c3d-9e8f-7a6b5c4d3e2f", **body}
    [card] = client.post("/cds-services/sarcoma-patient-view", json=request).get_json()["cards"]
    reason = {"code": "patient-refuses", "system": "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"}
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-03-01T10:00:00.000Z"}
    feedback = {"feedback": [item | {"overrideReason": {"reason": reason}}]}
    assert client.post("/cds-services/sarcoma-patient-view/feedback", json=feedback).status_code == 200

    report = client.get("/sandbox/feedback-report").get_json()
    cited = card["extension"]["org.sarcoma-cds.statements"]
    assert sorted(row["statement"] for row in report["statements"]) == sorted(cited)
    for row in report["statements"]:
        assert (row["shown"], row["accepted"], row["overridden"]) == (1, 0, 1)
        assert row["overrideReasons"] == [{"reason": "patient-refuses", "count": 1}]
    version = card["extension"]["org.sarcoma-cds.knowledge-version"]
    assert report["knowledgeVersions"] == [{"version": version, "cards": 1, "hookCalls": 1}]


@pytest.mark.parametrize(
    "path",
    [
        "/sandbox",
        "/sandbox/fixtures",
        f"/sandbox/fixtures/{LMS.slug}/prefetch",
        "/sandbox/feedback",
        "/sandbox/feedback-report",
    ],
)
def test_sandbox_routes_are_absent_when_disabled(tmp_path, path):
    app = create_app(Config(feedback_db=tmp_path / "f.sqlite3", sandbox=False))
    assert app.test_client().get(path).status_code == 404
