"""``/healthz`` says the process answers; ``/readyz`` that the knowledge base is loaded and the database writable."""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import yaml

from cds_service import Config, create_app
from cds_service.storage.database import connect

SPEC = Path(__file__).resolve().parents[2] / "cds_service" / "openapi.yaml"


def unwritable(path: Path) -> None:
    """A directory where the database file was: not writable by any process, root included."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.mkdir()


def test_ready_when_the_knowledge_base_is_loaded_and_the_database_writable(app, client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "knowledgeVersion": app.extensions["sarcoma"].knowledge.version,
        "stores": {"database": "sqlite"},
    }


def test_readiness_writes_nothing(app, client):
    store = app.extensions["sarcoma"].feedback
    for _ in range(3):
        assert client.get("/readyz").status_code == 200
    assert store.issued() == [] and store.list() == []


def test_not_ready_when_the_database_is_not_writable(app, client):
    unwritable(app.extensions["sarcoma"].feedback.db.path)
    response = client.get("/readyz")
    assert response.status_code == 503
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"] == [
        {"severity": "error", "code": "no-store", "diagnostics": "The database (sqlite) is not writable"}
    ]
    assert client.get("/healthz").status_code == 200  # alive: no restart, only no traffic


def test_not_ready_when_the_database_is_locked_by_another_writer(app, client):
    with closing(connect(app.extensions["sarcoma"].feedback.db.path)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        assert client.get("/readyz").status_code == 503
        holder.execute("ROLLBACK")
    assert client.get("/readyz").status_code == 200


def test_not_ready_names_every_part_that_is_down(app, client):
    runtime = app.extensions["sarcoma"]
    runtime.knowledge = replace(runtime.knowledge, _shown=())  # a knowledge base with nothing to match
    unwritable(runtime.feedback.db.path)
    response = client.get("/readyz")
    assert response.status_code == 503
    issues = response.get_json()["issue"]
    assert [(i["code"], i["diagnostics"]) for i in issues] == [
        ("exception", "The knowledge base is not loaded"),
        ("no-store", "The database (sqlite) is not writable"),
    ]


def test_probes_need_no_client_token_when_authentication_is_on(tmp_path):
    issuers = tmp_path / "issuers.json"
    issuers.write_text(
        json.dumps([{"iss": "https://sandbox.cds-hooks.org", "jku": ["https://sandbox.cds-hooks.org/"]}])
    )
    config = Config(
        feedback_db=tmp_path / "f.sqlite3",
        auth_required=True,
        trusted_issuers_file=issuers,
        public_base_url="https://cds.example.org",
    )
    client = create_app(config).test_client()
    assert client.get("/cds-services").status_code == 401
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_both_probes_are_documented():
    paths = yaml.safe_load(SPEC.read_text())["paths"]
    assert set(paths["/readyz"]["get"]["responses"]) == {"200", "503"}
    assert "200" in paths["/healthz"]["get"]["responses"]
