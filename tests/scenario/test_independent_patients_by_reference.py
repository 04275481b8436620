"""Independent patients whose drugs are written as referenced Medication resources (``medicationReference``,
as EHRs that keep a drug formulary write them) show, card by card, the statements of the file as
written: through the hook, with the Medications arriving in the prefetch searchsets (``include``) as
a client that holds them sends them. The same patients read from a FHIR server are in
``tests/integration/test_independent_patients_on_server.py``.
"""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service import Config, create_app
from cds_service.engine import cards_for
from cds_service.knowledge import KnowledgeBase, load_knowledge
from fhir_fixtures.ehr import MEDICATION_USES, hook_request, medications_by_reference

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "tests" / "data" / "independent-patients"
TODAY = date(2026, 3, 1)  # as test_independent_patients.py reads them
STATEMENTS = "org.sarcoma-cds.statements"


@cache
def resources(name: str) -> tuple[dict[str, Any], ...]:
    bundle = json.loads((FOLDER / f"{name}.json").read_text("utf-8"))
    return tuple(entry["resource"] for entry in bundle.get("entry", []))


WITH_DRUGS = sorted(
    path.stem
    for path in FOLDER.glob("*.json")
    if any(r["resourceType"] in MEDICATION_USES and "medicationCodeableConcept" in r for r in resources(path.stem))
)


@cache
def knowledge() -> KnowledgeBase:
    return load_knowledge(ROOT / "cards")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    config = Config(feedback_db=tmp_path_factory.mktemp("by-reference") / "f.db", today=TODAY)
    return create_app(config).test_client()


@pytest.mark.parametrize("name", WITH_DRUGS)
def test_drugs_as_referenced_medications_give_the_statements_of_the_file(client: FlaskClient, name: str) -> None:
    expected = [
        list((card.extension or {}).get(STATEMENTS, []))
        for card in cards_for(resources(name), knowledge=knowledge(), base_url="http://t", today=TODAY)
    ]
    entries = [{"resource": r} for r in medications_by_reference(resources(name))]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    response = client.post("/cds-services/sarcoma-patient-view", json=hook_request(bundle))
    assert response.status_code == 200, response.get_data(as_text=True)[:800]
    assert [card["extension"][STATEMENTS] for card in response.get_json()["cards"]] == expected
