"""Data the EHR could not provide never reads as "nothing recorded" (G6, G7).

When a prefetch key comes back as an OperationOutcome, the facts it feeds are withheld and the
data-quality card names them; the cards that depended on them do not show.
"""

from __future__ import annotations

import pytest

from cds_service import Config, create_app
from fhir_fixtures.ehr import hook_request

HOOK_URL = "/cds-services/sarcoma-patient-view"
STATEMENTS = "org.sarcoma-cds.statements"
FAILED = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}


@pytest.fixture(scope="module")
def post(tmp_path_factory):
    client = create_app(Config(feedback_db=tmp_path_factory.mktemp("db") / "f.db")).test_client()

    def send(slug: str, failed_key: str | None = None) -> list[dict]:
        body = hook_request(slug)
        if failed_key:
            body["prefetch"][failed_key] = FAILED
        response = client.post(HOOK_URL, json=body)
        assert response.status_code == 200
        return response.get_json()["cards"]

    return send


def ids(cards: list[dict]) -> set[str]:
    return {sid for card in cards for sid in card["extension"][STATEMENTS]}


def data_quality(cards: list[dict]) -> dict:
    return next(card for card in cards if "G7" in card["extension"][STATEMENTS])


def test_missing_medication_records_never_read_as_no_prior_therapy(post):
    complete = post("ddlps-metastatic-after-doxorubicin")
    assert {"S40", "S43"} <= ids(complete) and "S28" not in ids(complete)
    partial = post("ddlps-metastatic-after-doxorubicin", "medicationAdministrations")
    assert not {"S28", "S29", "S38", "S40", "S43"} & ids(partial)  # neither first nor later line
    detail = data_quality(partial)["detail"]
    assert "Lines of therapy for advanced disease, prior systemic drugs, prior anthracycline" in detail
    assert "could not provide the medication administrations" in detail


def test_missing_observations_withhold_stage_and_the_cards_resting_on_it(post):
    assert {"S05", "S08"} <= ids(post("sts-iiia-thigh-tnm-only"))
    partial = post("sts-iiia-thigh-tnm-only", "observations")
    assert ids(partial) & {"S04", "S05", "S07", "S08", "S09"} == set()
    assert "could not provide the patient's observations" in data_quality(partial)["detail"]


def test_missing_conditions_give_a_data_quality_card_not_silence(post):
    partial = post("lms-metastatic-first-line", "conditions")
    assert ids(partial) == {"G7"}
    assert "could not provide the patient's conditions" in data_quality(partial)["detail"]


def test_a_failed_patient_key_withholds_only_the_age(post):
    complete, partial = post("lms-metastatic-first-line"), post("lms-metastatic-first-line", "patient")
    assert ids(partial) == ids(complete)
    assert " y:" in complete[-1]["summary"] and " y:" not in partial[-1]["summary"]


def test_unreadable_medication_records_never_read_as_no_prior_therapy(tmp_path):
    client = create_app(Config(feedback_db=tmp_path / "f.db")).test_client()
    body = hook_request("ddlps-metastatic-after-doxorubicin")
    for entry in body["prefetch"]["medicationAdministrations"]["entry"]:
        entry["resource"]["status"] = 42  # fails FHIR validation
    cards = client.post(HOOK_URL, json=body).get_json()["cards"]
    assert not {"S28", "S29", "S38", "S40", "S43"} & ids(cards)
    assert "could not be read" in data_quality(cards)["detail"]


def test_an_unreadable_metastasis_withholds_extent(tmp_path):
    client = create_app(Config(feedback_db=tmp_path / "f.db")).test_client()
    body = hook_request("sts-limited-liver-only")
    complete = client.post(HOOK_URL, json=body).get_json()["cards"]
    assert "S18" in ids(complete)  # limited disease: local treatment of the metastasis
    body["prefetch"]["conditions"]["entry"].append(
        {
            "resource": {
                "resourceType": "Condition",
                "id": "sts-limited-liver-only-met-x",
                "code": "lung",
                "subject": {"reference": "Patient/sts-limited-liver-only"},
            }
        }
    )
    partial = client.post(HOOK_URL, json=body).get_json()["cards"]
    assert "S18" not in ids(partial)
    assert "Condition/sts-limited-liver-only-met-x could not be read" in data_quality(partial)["detail"]
