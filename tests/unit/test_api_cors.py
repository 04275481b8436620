"""CORS: the CDS Hooks sandbox's preflights pass (cds-hooks.md item 29)."""

import pytest

from cds_service import Config, create_app


@pytest.mark.parametrize(
    "path,headers",
    [
        ("/cds-services", "authorization"),
        ("/cds-services/sarcoma-patient-view", "authorization,content-type"),
        ("/cds-services/sarcoma-patient-view/feedback", "authorization,content-type"),
    ],
)
def test_preflight_allows_the_sandbox(client, path, headers):
    response = client.options(
        path,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": headers,
        },
    )
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://sandbox.cds-hooks.org")
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed
    methods = response.headers["Access-Control-Allow-Methods"]
    assert "POST" in methods and "GET" in methods and "OPTIONS" in methods


def test_simple_response_carries_the_origin_header(client):
    response = client.get("/cds-services", headers={"Origin": "https://ehr.example"})
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://ehr.example")


def test_origins_are_configurable(tmp_path):
    app = create_app(Config(feedback_db=tmp_path / "f.db", cors_origins=("https://ehr.example",)))
    client = app.test_client()
    ok = client.get("/cds-services", headers={"Origin": "https://ehr.example"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://ehr.example"
    other = client.get("/cds-services", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
