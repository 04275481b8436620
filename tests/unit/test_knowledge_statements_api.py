"""The statement pages (``cds_service.api.statements``): HTML for clinicians, JSON for clients.

Builder verbs: ``client_for`` serves a knowledge base folder; ``page`` fetches a statement page as text.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service.api.statements import bp
from cds_service.knowledge import load_knowledge
from cds_service.knowledge.model import INTERNAL_LANGUAGE

CARDS = Path(__file__).resolve().parents[2] / "cards"
KB = load_knowledge(CARDS)
REVIEWER_WORDS = re.compile(r"cross-check|V-TXT|\(R\)|\bF\d{1,2}\b|\bseed|\.txt|URL inferred|when:|lines_of_therapy")


def client_for(folder: Path) -> FlaskClient:
    app = Flask(__name__)
    app.extensions["sarcoma_knowledge"] = load_knowledge(folder)
    app.register_blueprint(bp)
    return app.test_client()


@pytest.fixture(scope="module")
def statements_client() -> FlaskClient:
    return client_for(CARDS)


def page(client: FlaskClient, statement_id: str) -> str:
    response = client.get(f"/statements/{statement_id}")
    assert response.status_code == 200 and response.mimetype == "text/html"
    return response.get_data(as_text=True)


def test_index_lists_every_statement_with_the_knowledge_base_version(statements_client: FlaskClient) -> None:
    response = statements_client.get("/statements")
    assert response.status_code == 200 and response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert all(f'href="statements/{sid}"' in text for sid in KB.statements)
    assert KB.version in text
    assert "Medscape: Treatment recommendations for metastatic soft tissue sarcoma (Gounder, 2019)" in text


def test_index_json_lists_every_statement(statements_client: FlaskClient) -> None:
    listing = statements_client.get("/statements?format=json").get_json()
    assert [item["id"] for item in listing] == list(KB.statements)


def test_statement_page_shows_statement_conditions_sources_evidence_and_version(statements_client: FlaskClient) -> None:
    text = page(statements_client, "S28")
    s28 = KB.statements["S28"]
    assert "Single-agent doxorubicin" in text
    assert s28.description.split(",")[0] in text  # the conditions in plain words
    assert "Dr.Oracle: summary of ESMO–EURACAN–GENTURIS 2021 guidance (AI-written, pending review, 2025)" in text
    assert 'href="https://www.droracle.ai/articles/355239/' in text
    assert "Canadian Cancer Society: Treatments for stage 4 soft tissue sarcoma" in text
    assert "[I, A], ESMO grading as quoted by Dr.Oracle; not verified against the ESMO guideline" in text
    assert f"Knowledge base version {KB.version}" in text


def test_principal_source_is_listed_first_and_named_so(statements_client: FlaskClient) -> None:
    text = page(statements_client, "S28")
    first = text.index("Dr.Oracle: summary")
    assert first < text.index("Canadian Cancer Society") and "(source of the principal recommendation)" in text


@pytest.mark.parametrize("statement_id", list(KB.statements))
def test_no_statement_page_shows_files_seeds_flags_or_reviewer_notes(
    statements_client: FlaskClient, statement_id: str
) -> None:
    text = page(statements_client, statement_id)
    assert not INTERNAL_LANGUAGE.search(text)
    assert not REVIEWER_WORDS.search(text)
    cross_check = KB.statements[statement_id].citation.cross_check
    if len(cross_check) > 3:  # "—" means no note
        assert cross_check not in text


def test_statement_without_a_level_says_so(statements_client: FlaskClient) -> None:
    assert "no level of evidence given by the sources" in page(statements_client, "S01")


def test_guardrail_page_names_the_statements_it_is_built_on(statements_client: FlaskClient) -> None:
    text = page(statements_client, "G7")
    assert 'href="S02"' in text and 'href="S17"' in text
    assert KB.statements["S17"].title in text
    assert "clinical judgement built on these statements" in text


def test_statement_page_escapes_text(tmp_path: Path) -> None:
    folder = tmp_path / "cards"
    shutil.copytree(CARDS, folder)
    s01 = folder / "S01.yaml"
    s01.write_text(s01.read_text(encoding="utf-8").replace("Plan and deliver care", "<b>Plan</b> & deliver care", 1))
    text = page(client_for(folder), "S01")
    assert "&lt;b&gt;Plan&lt;/b&gt; &amp; deliver care" in text and "<b>Plan</b>" not in text


def test_statement_json_keeps_the_citation_and_sets_reviewer_notes_apart(statements_client: FlaskClient) -> None:
    body = statements_client.get("/statements/S19?format=json").get_json()
    assert body["id"] == "S19" and body["version"] == KB.version
    assert body["when"]["metastasis_timing"] == "metachronous"
    assert body["citation"]["evidence"] == {
        "level": "[IV, B]",
        "reported_by": "004",
        "text": "[IV, B], ESMO grading as quoted by Dr.Oracle; not verified against the ESMO guideline",
    }
    assert body["citation"]["sources"][0]["label"].startswith("Dr.Oracle: summary of ESMO")
    assert "file" not in body["citation"]["sources"][0]
    assert body["review"]["source_files"][0] == "004_6a1ec949adfd3eb7.txt"
    assert "level not verifiable" in body["review"]["cross_check"]


def test_unknown_statement_is_404_operation_outcome(statements_client: FlaskClient) -> None:
    response = statements_client.get("/statements/S99")
    assert response.status_code == 404
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "not-found" and body["issue"][0]["severity"] == "error"
    assert "S99" not in body["issue"][0]["diagnostics"]
