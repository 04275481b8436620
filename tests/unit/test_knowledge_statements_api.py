"""The statement pages (``cds_service.api.statements``): HTML for clinicians, JSON for clients."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service.api.statements import bp
from cds_service.knowledge import load_knowledge

CARDS = Path(__file__).resolve().parents[2] / "cards"


@pytest.fixture(scope="module")
def statements_client() -> FlaskClient:
    app = Flask(__name__)
    app.extensions["sarcoma_knowledge"] = load_knowledge(CARDS)
    app.register_blueprint(bp)
    return app.test_client()


def test_index_lists_every_statement(statements_client: FlaskClient) -> None:
    response = statements_client.get("/statements")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert 'href="statements/S01"' in page and 'href="statements/G7"' in page


def test_statement_page_gives_the_full_citation(statements_client: FlaskClient) -> None:
    page = statements_client.get("/statements/S28").get_data(as_text=True)
    assert "Single-agent doxorubicin" in page
    assert "004_6a1ec949adfd3eb7.txt" in page
    assert "https://www.droracle.ai/articles/355239/" in page
    assert "[I, A] as reported by seed 004" in page
    assert "PDQ: doxorubicin has been standard for decades" in page


def test_statement_page_escapes_text(statements_client: FlaskClient) -> None:
    page = statements_client.get("/statements/S08").get_data(as_text=True)
    assert "&quot;Stage II and node-negative stage III&quot;" in page


def test_statement_json(statements_client: FlaskClient) -> None:
    body = statements_client.get("/statements/S19?format=json").get_json()
    assert body["id"] == "S19"
    assert body["when"]["metastasis_timing"] == "metachronous"
    assert body["citation"]["evidence"] == {"level": "[IV, B]", "reported_by": "seed 004 (004_6a1ec949adfd3eb7.txt)"}
    assert body["citation"]["sources"][0]["file"] == "004_6a1ec949adfd3eb7.txt"


def test_unknown_statement_is_404_operation_outcome(statements_client: FlaskClient) -> None:
    response = statements_client.get("/statements/S99")
    assert response.status_code == 404
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "not-found" and body["issue"][0]["severity"] == "error"
    assert "S99" not in body["issue"][0]["diagnostics"]


def test_guardrail_page_links_what_it_derives_from(statements_client: FlaskClient) -> None:
    page = statements_client.get("/statements/G7").get_data(as_text=True)
    assert 'href="S02"' in page and 'href="S17"' in page
