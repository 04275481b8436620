"""Every error is an OperationOutcome with a status that says what went wrong; never a stack trace."""

import pytest

from cds_service import Config, create_app

HOOK_URL = "/cds-services/sarcoma-patient-view"


def assert_outcome(response, status, words=""):
    assert response.status_code == status
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["severity"] == "error" and issue["code"]
    assert words.lower() in issue["diagnostics"].lower()
    assert "Traceback" not in response.get_data(as_text=True)
    return issue


def test_malformed_json_is_400(client):
    assert_outcome(client.post(HOOK_URL, data=b"{not json", content_type="application/json"), 400, "not valid JSON")


def test_empty_body_is_400(client):
    assert_outcome(client.post(HOOK_URL, data=b"", content_type="application/json"), 400, "empty")


def test_invalid_utf8_is_400(client):
    assert_outcome(client.post(HOOK_URL, data=b'{"hook": "\xff"}', content_type="application/json"), 400)


def test_missing_field_names_the_field(client, hook):
    issue = assert_outcome(client.post(HOOK_URL, json=hook(hookInstance=None)), 400, "hookInstance")
    assert issue["expression"] == ["hookInstance"]


def test_unknown_service_is_404(client, hook):
    assert_outcome(client.post("/cds-services/nope", json=hook()), 404, "no cds service")


def test_unknown_path_is_404(client):
    assert_outcome(client.get("/nowhere"), 404)


def test_wrong_method_is_405_with_allow_header(client):
    response = client.get(HOOK_URL)
    assert_outcome(response, 405, "not allowed")
    assert "POST" in response.headers["Allow"]
    assert_outcome(client.post("/cds-services", json={}), 405)


def test_oversized_body_is_413(tmp_path, hook):
    app = create_app(Config(feedback_db=tmp_path / "f.db", max_body_bytes=1000))
    body = hook()
    body["prefetch"]["patient"]["text"] = {"status": "generated", "div": "x" * 2000}
    assert_outcome(app.test_client().post(HOOK_URL, json=body), 413, "too large")


def test_internal_error_is_500_without_internals(app, hook, monkeypatch):
    import cds_service.api.hooks as hooks

    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail /srv/app.py line 3")

    monkeypatch.setattr(hooks, "cards_for", boom)
    response = app.test_client().post(HOOK_URL, json=hook())
    assert_outcome(response, 500, "internal error")
    assert "secret internal detail" not in response.get_data(as_text=True)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_body_not_declared_as_json_is_415(client, hook, content_type):
    import json

    response = client.post(HOOK_URL, data=json.dumps(hook()), content_type=content_type)
    assert_outcome(response, 415, "application/json")


def test_fhir_json_content_type_is_accepted(client, hook):
    import json

    response = client.post(HOOK_URL, data=json.dumps(hook()), content_type="application/fhir+json")
    assert response.status_code == 200
