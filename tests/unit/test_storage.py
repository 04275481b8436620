"""The embedded SQLite database as the app opens it: settings, schema versions, failure behaviour, rate limit.

The same store contract on SQLite, PostgreSQL and Redis is in ``tests/integration/test_store_contract.py``.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from cds_service import Config, create_app
from cds_service.cli import main
from cds_service.config import ConfigError
from cds_service.storage.database import redacted
from cds_service.storage.migrations import LATEST, MIGRATIONS

FEEDBACK_URL = "/cds-services/sarcoma-patient-view/feedback"
UNREACHABLE_REDIS = "redis://127.0.0.1:9/0"  # port 9 (discard): nothing listens

SCHEMA_BEFORE_VERSIONS = """
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY, service_id TEXT NOT NULL, card TEXT NOT NULL, outcome TEXT NOT NULL,
    outcome_timestamp TEXT NOT NULL, accepted_suggestions TEXT, override_reason TEXT,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (service_id, card, outcome, outcome_timestamp));
CREATE TABLE issued_card (card TEXT PRIMARY KEY, service_id TEXT NOT NULL, hook_instance TEXT NOT NULL,
    statements TEXT NOT NULL, knowledge_version TEXT NOT NULL, issued_at TEXT NOT NULL);
CREATE TABLE jwt_replay (jti TEXT NOT NULL, iss TEXT NOT NULL, expires_at REAL NOT NULL, UNIQUE (iss, jti));
INSERT INTO feedback (service_id, card, outcome, outcome_timestamp) VALUES ('s', 'kept', 'overridden', 't');
"""


def item(card: str = "c-1") -> dict:
    return {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-03-01T10:00:00Z"}


def versions(path: Path) -> list[int]:
    with closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]


# --- settings --------------------------------------------------------------------------------------


def test_the_database_and_redis_urls_are_read_and_never_echoed():
    config = Config.from_env(
        {"CDS_DATABASE_URL": "postgresql://cds:s3cret@db.internal/cds", "CDS_REDIS_URL": "redis://cache:6379/0"}
    )
    assert config.database_url == "postgresql://cds:s3cret@db.internal/cds"
    assert config.redis_url == "redis://cache:6379/0"
    with pytest.raises(ConfigError) as refused:
        Config.from_env({"CDS_DATABASE_URL": "mysql://cds:s3cret@db/cds", "CDS_REDIS_URL": "cache:6379"})
    assert [line.split(":")[0] for line in refused.value.problems] == ["CDS_DATABASE_URL", "CDS_REDIS_URL"]
    assert "s3cret" not in str(refused.value)
    assert redacted("postgresql://cds:s3cret@db.internal:5432/cds") == "postgresql://cds:***@db.internal:5432/cds"


# --- schema versions -------------------------------------------------------------------------------


def test_a_new_file_is_created_at_this_releases_version(tmp_path):
    create_app(Config(feedback_db=tmp_path / "new.sqlite3"))
    assert versions(tmp_path / "new.sqlite3") == [m.version for m in MIGRATIONS]


def test_a_file_from_before_schema_versions_is_adopted_with_its_rows(tmp_path):
    path = tmp_path / "old.sqlite3"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(SCHEMA_BEFORE_VERSIONS)
    app = create_app(Config(feedback_db=path))
    assert versions(path) == [m.version for m in MIGRATIONS]
    assert [row["card"] for row in app.extensions["sarcoma"].feedback.list()] == ["kept"]
    assert app.test_client().post(FEEDBACK_URL, json={"feedback": [item()]}).status_code == 200


def test_a_file_ahead_of_this_release_stops_start_up_with_one_line(tmp_path, monkeypatch, capsys):
    path = tmp_path / "later.sqlite3"
    create_app(Config(feedback_db=path))
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("INSERT INTO schema_version VALUES (?, 'from a later release', 'now')", (LATEST + 1,))
    with pytest.raises(ConfigError, match=f"CDS_FEEDBACK_DB: the database schema is at version {LATEST + 1}, ahead"):
        create_app(Config(feedback_db=path))
    monkeypatch.setenv("CDS_FEEDBACK_DB", str(path))
    assert main(["check-config"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line.startswith("sarcoma-cds: error: CDS_FEEDBACK_DB: the database schema is at version")


def test_migrate_applies_each_step_once_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CDS_FEEDBACK_DB", str(tmp_path / "m.sqlite3"))
    assert main(["migrate", "--check"]) == 1
    assert capsys.readouterr().out.strip().endswith(f"schema version 0, this release's is {LATEST}")
    assert main(["migrate"]) == 0
    first = capsys.readouterr().out.splitlines()
    assert first[: len(MIGRATIONS)] == [f"applied {m.version}: {m.summary}" for m in MIGRATIONS]
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"schema version {LATEST} (already up to date)")
    assert main(["migrate", "--check"]) == 0


def test_migrate_says_in_one_line_when_the_database_cannot_be_reached(monkeypatch, capsys):
    monkeypatch.setenv("CDS_DATABASE_URL", "postgresql://cds:s3cret@127.0.0.1:9/cds")
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sarcoma-cds: error: cannot migrate the database at postgresql://cds:***@127.0.0.1:9/cds")
    assert "s3cret" not in err and len(err.splitlines()) == 1


# --- failure behaviour -----------------------------------------------------------------------------


def test_with_redis_down_hooks_answer_feedback_is_refused_and_readiness_names_redis(tmp_path, hook):
    client = create_app(Config(feedback_db=tmp_path / "f.sqlite3", redis_url=UNREACHABLE_REDIS)).test_client()
    assert client.post("/cds-services/sarcoma-patient-view", json=hook()).status_code == 200
    feedback = client.post(FEEDBACK_URL, json={"feedback": [item()]})
    assert feedback.status_code == 503 and feedback.get_json()["issue"][0]["code"] == "transient"
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert [i["diagnostics"] for i in ready.get_json()["issue"]] == ["Redis is not reachable"]


# --- feedback rate limit ---------------------------------------------------------------------------


def test_feedback_beyond_the_rate_limit_is_a_429_for_that_client_only(tmp_path):
    app = create_app(Config(feedback_db=tmp_path / "f.sqlite3", feedback_per_minute=3))
    client = app.test_client()
    statuses = [client.post(FEEDBACK_URL, json={"feedback": [item(f"c-{n}")]}).status_code for n in range(3)]
    refused = client.post(FEEDBACK_URL, json={"feedback": [item("c-over")]})
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    [issue] = refused.get_json()["issue"]
    assert issue["code"] == "throttled" and "CDS_FEEDBACK_PER_MINUTE" in issue["diagnostics"]
    assert "c-over" not in [row["card"] for row in app.extensions["sarcoma"].feedback.list()]
    other = client.post(FEEDBACK_URL, json={"feedback": [item("c-other")]}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200


def test_the_rate_limit_holds_across_workers_sharing_the_database(tmp_path):
    config = Config(feedback_db=tmp_path / "f.sqlite3", feedback_per_minute=2)
    worker_a, worker_b = create_app(config).test_client(), create_app(config).test_client()
    assert worker_a.post(FEEDBACK_URL, json={"feedback": [item("a")]}).status_code == 200
    assert worker_b.post(FEEDBACK_URL, json={"feedback": [item("b")]}).status_code == 200
    assert worker_a.post(FEEDBACK_URL, json={"feedback": [item("c")]}).status_code == 429


def test_a_feedback_list_with_the_database_gone_is_a_503_not_a_500(app, client):
    path = app.extensions["sarcoma"].feedback.db.path
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.mkdir()  # a folder where the file was: no process can open it
    for url in ("/sandbox/feedback", "/sandbox/feedback-report"):
        response = client.get(url)
        assert response.status_code == 503, url
        assert response.get_json()["issue"][0]["code"] == "transient"
