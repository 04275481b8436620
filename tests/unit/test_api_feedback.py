"""Feedback: validation, storage, idempotency, concurrency (CDS Hooks 2.0 "Feedback")."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from store_builders import sqlite_store

FEEDBACK_URL = "/cds-services/sarcoma-patient-view/feedback"
REASON = {"code": "expert-contradicts", "system": "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"}


def item(**fields):
    base = {"card": "card-1", "outcome": "overridden", "outcomeTimestamp": "2026-11-24T10:00:00Z"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def stored(app):
    return app.extensions["sarcoma"].feedback.list()


def test_override_without_display_is_accepted_as_the_sandbox_sends_it(app, client):
    response = client.post(FEEDBACK_URL, json={"feedback": [item(overrideReason={"reason": REASON})]})
    assert response.status_code == 200
    assert response.get_json() == {"stored": 1, "duplicates": 0}
    [row] = stored(app)
    assert row["outcome"] == "overridden" and row["overrideReason"]["reason"]["code"] == "expert-contradicts"


def test_accepted_needs_accepted_suggestions(app, client):
    response = client.post(FEEDBACK_URL, json={"feedback": [item(outcome="accepted")]})
    assert response.status_code == 400
    assert "acceptedSuggestions" in response.get_json()["issue"][0]["diagnostics"]
    ok = client.post(FEEDBACK_URL, json={"feedback": [item(outcome="accepted", acceptedSuggestions=[{"id": "s-1"}])]})
    assert ok.status_code == 200
    assert stored(app)[0]["acceptedSuggestions"] == ["s-1"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "feedback"),
        ({"feedback": []}, "feedback"),
        ({"feedback": [item(card=None)]}, "card"),
        ({"feedback": [item(outcome="ignored")]}, "outcome"),
        ({"feedback": [item(outcomeTimestamp="yesterday")]}, "outcomeTimestamp"),
        ({"feedback": [item(outcomeTimestamp="2026-11-24T10:00:00")]}, "outcomeTimestamp"),
        ({"feedback": [item(overrideReason={})]}, "overrideReason"),
        ({"feedback": [item(overrideReason={"reason": {"code": "x"}})]}, "reason.system"),
        ({"feedback": [item(outcome="accepted", acceptedSuggestions=[{"uuid": "s"}])]}, "acceptedSuggestions[0].id"),
    ],
)
def test_invalid_feedback_names_the_field(client, body, field):
    response = client.post(FEEDBACK_URL, json=body)
    assert response.status_code == 400
    assert field in response.get_json()["issue"][0]["diagnostics"]


def test_feedback_is_idempotent(app, client):
    body = {"feedback": [item(overrideReason={"userComment": "tumour board"})]}
    assert client.post(FEEDBACK_URL, json=body).get_json() == {"stored": 1, "duplicates": 0}
    assert client.post(FEEDBACK_URL, json=body).get_json() == {"stored": 0, "duplicates": 1}
    assert len(stored(app)) == 1


def test_feedback_for_unknown_service_is_404(client):
    assert client.post("/cds-services/nope/feedback", json={"feedback": [item()]}).status_code == 404


def test_concurrent_posts_lose_nothing(app):
    def post(n):
        client = app.test_client()
        body = {"feedback": [item(card=f"card-{n}-{k}") for k in range(5)]}
        return client.post(FEEDBACK_URL, json=body).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(post, range(40)))
    assert statuses == [200] * 40
    assert len(stored(app)) == 200


def test_two_stores_on_one_file_share_feedback(app, tmp_path):
    from cds_service.feedback_store import FeedbackItem

    path = app.extensions["sarcoma"].feedback.db.path
    other = sqlite_store(path)  # as a second gunicorn worker would
    other.add("sarcoma-patient-view", [FeedbackItem("c9", "overridden", "2026-11-24T10:00:00Z")])
    assert [row["card"] for row in stored(app)] == ["c9"]
