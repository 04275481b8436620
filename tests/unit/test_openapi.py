"""The OpenAPI description is true of the app, and fuzzing it finds no 5xx."""

import re
import tempfile
from pathlib import Path

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings

from cds_service import Config, create_app

SPEC = Path(__file__).resolve().parents[2] / "cds_service" / "openapi.yaml"


def test_every_documented_route_exists_and_every_api_route_is_documented(app):
    documented = set(yaml.safe_load(SPEC.read_text())["paths"])
    routes = {
        re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule).replace("{service_id}", "{id}")
        for rule in app.url_map.iter_rules()
    }
    assert documented <= routes
    api = {r for r in routes if r.startswith("/cds-services") or r == "/healthz"}
    assert api <= documented


def test_served_spec_is_the_file(client):
    assert yaml.safe_load(client.get("/openapi.yaml").get_data(as_text=True)) == yaml.safe_load(SPEC.read_text())


def _operations():
    app = create_app(Config(feedback_db=Path(tempfile.mkdtemp()) / "f.db"))
    schema = schemathesis.openapi.from_wsgi("/openapi.yaml", app)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("operation", _operations(), ids=lambda op: op.label)
def test_fuzzed_requests_never_get_a_5xx(operation):
    @given(operation.as_strategy())
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case):
        response = case.call()
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert response.json()["resourceType"] == "OperationOutcome"

    run()
