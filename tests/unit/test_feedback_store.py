"""Issued cards are recorded without patient data, feedback joins to them, and old rows are purged."""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from store_builders import sqlite_store

from cds_service import Config, create_app
from cds_service.config import ConfigError
from cds_service.feedback_store import (
    PURGE_EVERY_S,
    FeedbackItem,
    FeedbackStore,
    IssuedCard,
    record_issued_cards,
)
from cds_service.protocol.cards import Card, Indicator, Source
from cds_service.storage.database import SqliteDatabase, connect
from fhir_fixtures.ehr import hook_request, list_fixtures, load_bundle, patient_of

HOOK_URL = "/cds-services/sarcoma-patient-view"
FEEDBACK_URL = HOOK_URL + "/feedback"
SERVICE = "sarcoma-patient-view"
LMS = next(f for f in list_fixtures(Config().fixtures_dir) if "lms" in f.slug and "metastatic" in f.slug)
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def lms_app(tmp_path: Path):
    return create_app(Config(feedback_db=tmp_path / "feedback.sqlite3", today=LMS.today))


def lms_request() -> dict:
    return hook_request(LMS.slug, fixtures_dir=Config().fixtures_dir, hook_instance=str(uuid.uuid4()))


def patient_identifiers() -> list[str]:
    """The fixture patient's id, identifier values, names and birth date: none may be stored."""
    patient = patient_of(_resources())
    values = [patient["id"], patient.get("birthDate")]
    values += [i.get("value") for i in patient.get("identifier") or []]
    values += [n.get("family") for n in patient.get("name") or []]
    return [v for v in values if v]


def _resources() -> list[dict]:
    return [entry["resource"] for entry in load_bundle(LMS.slug, Config().fixtures_dir)["entry"]]


# --- recording issued cards -----------------------------------------------------------------------


def test_an_issued_card_is_recorded_with_its_statements_and_knowledge_version(lms_app):
    request = lms_request()
    response = lms_app.test_client().post(HOOK_URL, json=request)
    assert response.status_code == 200
    [card] = response.get_json()["cards"]
    extension = card["extension"]
    with closing(sqlite3.connect(lms_app.extensions["sarcoma"].feedback.db.path)) as conn:
        conn.row_factory = sqlite3.Row
        [row] = conn.execute("SELECT * FROM issued_card").fetchall()
    assert row.keys() == ["card", "service_id", "hook_instance", "statements", "knowledge_version", "issued_at"]
    assert row["card"] == card["uuid"]
    assert row["service_id"] == SERVICE
    assert row["hook_instance"] == request["hookInstance"]
    assert row["statements"] == '["' + '", "'.join(extension["org.sarcoma-cds.statements"]) + '"]'
    assert row["knowledge_version"] == extension["org.sarcoma-cds.knowledge-version"]
    issued = datetime.fromisoformat(row["issued_at"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - issued) < timedelta(minutes=1)


def test_no_patient_identifier_reaches_the_database_file(lms_app):
    lms_app.test_client().post(HOOK_URL, json=lms_request())
    store = lms_app.extensions["sarcoma"].feedback
    [row] = store.issued()
    identifiers = patient_identifiers()
    assert LMS.patient in identifiers and len(identifiers) >= 2
    assert not any(value in str(row) for value in identifiers)
    files = [p for p in store.db.path.parent.iterdir() if p.name.startswith(store.db.path.name)]
    raw = b"".join(p.read_bytes() for p in files)  # the database, its WAL and shared memory
    assert row["hook_instance"].encode() in raw  # the record is there to be searched...
    assert not [value for value in identifiers if value.encode() in raw]  # ...and nothing of the patient


def test_a_call_without_cards_records_nothing(app, client, hook):
    assert client.post(HOOK_URL, json=hook()).get_json() == {"cards": []}
    assert app.extensions["sarcoma"].feedback.issued() == []


def test_each_call_records_its_own_cards(lms_app):
    client = lms_app.test_client()
    first, second = lms_request(), lms_request()
    uuids = [client.post(HOOK_URL, json=body).get_json()["cards"][0]["uuid"] for body in (first, second)]
    rows = lms_app.extensions["sarcoma"].feedback.issued()
    assert sorted(r["card"] for r in rows) == sorted(uuids)
    assert {r["hook_instance"] for r in rows} == {first["hookInstance"], second["hookInstance"]}


def test_an_unwritable_store_does_not_fail_the_hook(lms_app, caplog):
    unwritable(lms_app.extensions["sarcoma"].feedback.db.path)
    with caplog.at_level(logging.WARNING, logger="cds_service"):
        response = lms_app.test_client().post(HOOK_URL, json=lms_request())
    assert response.status_code == 200 and len(response.get_json()["cards"]) == 1
    [record] = [r for r in caplog.records if r.getMessage() == "issued cards not recorded"]
    assert record.levelno == logging.WARNING
    assert record.fields["error"] == "OperationalError"


def test_a_locked_store_delays_the_hook_by_a_quarter_second_at_most(lms_app, caplog):
    client = lms_app.test_client()
    client.post(HOOK_URL, json=lms_request())  # warm up: knowledge compiled, connection open
    started = time.perf_counter()
    client.post(HOOK_URL, json=lms_request())
    unlocked_s = time.perf_counter() - started
    with closing(connect(lms_app.extensions["sarcoma"].feedback.db.path)) as holder:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock for the whole call
        started = time.perf_counter()
        with caplog.at_level(logging.WARNING, logger="cds_service"):
            response = client.post(HOOK_URL, json=lms_request())
        locked_s = time.perf_counter() - started
        holder.execute("ROLLBACK")
    assert response.status_code == 200 and response.get_json()["cards"]
    assert locked_s - unlocked_s < 0.25 + 0.2  # the busy wait, plus scheduling noise
    assert any(r.getMessage() == "issued cards not recorded" for r in caplog.records)
    assert len(lms_app.extensions["sarcoma"].feedback.issued()) == 2


def test_recording_the_same_card_twice_keeps_one_row(tmp_path):
    store = sqlite_store(tmp_path / "f.sqlite3")
    card = IssuedCard("c-1", ("S01",), "2.0.0+abc")
    assert store.record_issued(SERVICE, "h-1", [card]) == 1
    assert store.record_issued(SERVICE, "h-1", [card]) == 0
    assert len(store.issued()) == 1


# --- feedback joins to the issued card --------------------------------------------------------


def test_feedback_joins_to_the_card_it_is_about(lms_app):
    client = lms_app.test_client()
    card = client.post(HOOK_URL, json=lms_request()).get_json()["cards"][0]
    reason = {"code": "patient-refuses", "system": "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"}
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-03-01T10:00:00Z"}
    body = {"feedback": [item | {"overrideReason": {"reason": reason}}]}
    assert client.post(FEEDBACK_URL, json=body).status_code == 200
    store = lms_app.extensions["sarcoma"].feedback
    [(joined_card, statements, override)] = store.overrides()
    assert joined_card == card["uuid"]
    assert list(statements) == card["extension"]["org.sarcoma-cds.statements"]
    assert override == {"reason": reason}


def test_feedback_on_an_unrecorded_card_is_counted_apart(tmp_path):
    store = sqlite_store(tmp_path / "f.sqlite3")
    store.add(SERVICE, [FeedbackItem("never-issued", "overridden", "2026-03-01T10:00:00.000Z")])
    assert store.overrides() == []
    assert store.unmatched_feedback() == 1


def test_a_feedback_200_means_committed(lms_app, tmp_path):
    """Another connection (another worker) sees the feedback as soon as the 200 is sent."""
    body = {"feedback": [{"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-03-01T10:00:00Z"}]}
    assert lms_app.test_client().post(FEEDBACK_URL, json=body).status_code == 200
    with closing(sqlite3.connect(lms_app.extensions["sarcoma"].feedback.db.path)) as other:
        assert other.execute("SELECT card FROM feedback").fetchall() == [("c-1",)]


def test_feedback_that_cannot_be_stored_is_a_503_not_an_acknowledgement(lms_app):
    unwritable(lms_app.extensions["sarcoma"].feedback.db.path)
    body = {"feedback": [{"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-03-01T10:00:00Z"}]}
    response = lms_app.test_client().post(FEEDBACK_URL, json=body)
    assert response.status_code == 503
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "transient"
    assert "stored" not in outcome


# --- retention --------------------------------------------------------------------------------


def test_purge_keeps_a_row_exactly_at_the_boundary_and_removes_one_a_millisecond_older(tmp_path):
    store = sqlite_store(tmp_path / "f.sqlite3", retention_days=30)
    boundary = NOW - timedelta(days=30)
    store.record_issued(SERVICE, "h-old", [IssuedCard("older", ("S01",), "v")], at=boundary - timedelta(milliseconds=1))
    store.record_issued(SERVICE, "h-edge", [IssuedCard("at-boundary", ("S01",), "v")], at=boundary)
    store.record_issued(SERVICE, "h-new", [IssuedCard("recent", ("S01",), "v")], at=NOW - timedelta(days=1))
    assert store.purge(now=NOW) == (1, 0)
    assert [row["card"] for row in store.issued()] == ["at-boundary", "recent"]


def test_purge_removes_feedback_received_before_the_boundary(tmp_path):
    store = sqlite_store(tmp_path / "f.sqlite3", retention_days=30)
    store.add(SERVICE, [FeedbackItem("c-old", "overridden", "2026-01-01T00:00:00.000Z")])
    store.add(SERVICE, [FeedbackItem("c-edge", "overridden", "2026-01-02T00:00:00.000Z")])
    store.add(SERVICE, [FeedbackItem("c-new", "overridden", "2026-01-03T00:00:00.000Z")])
    boundary = NOW - timedelta(days=30)
    with closing(connect(store.db.path)) as conn:  # received_at is set by the database: age the rows
        for card, received in (("c-old", boundary - timedelta(milliseconds=1)), ("c-edge", boundary)):
            conn.execute("UPDATE feedback SET received_at = ? WHERE card = ?", (_text(received), card))
    assert store.purge(now=NOW) == (0, 1)
    assert [row["card"] for row in store.list()] == ["c-edge", "c-new"]


def test_start_up_purges_rows_past_the_retention_setting(tmp_path):
    path = tmp_path / "f.sqlite3"
    old = sqlite_store(path)
    old.record_issued(SERVICE, "h-1", [IssuedCard("old", ("S01",), "v")], at=datetime.now(UTC) - timedelta(days=8))
    old.record_issued(SERVICE, "h-2", [IssuedCard("kept", ("S01",), "v")], at=datetime.now(UTC) - timedelta(days=6))
    app = create_app(Config(feedback_db=path, retention_days=7))
    assert [row["card"] for row in app.extensions["sarcoma"].feedback.issued()] == ["kept"]


def test_a_long_running_worker_purges_once_a_day_during_hook_calls(tmp_path):
    clock = FakeClock()
    store = sqlite_store(tmp_path / "f.sqlite3", retention_days=1, clock=clock)
    store.purge_at_start()
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    store.record_issued(SERVICE, "h-old", [IssuedCard("old", ("S01",), "v")], at=two_days_ago)
    clock.now += PURGE_EVERY_S - 1
    record_issued_cards(store, SERVICE, "h-1", [Card("a card", Indicator.INFO, Source("x"), uuid="new-1")])
    assert [row["card"] for row in store.issued()] == ["old", "new-1"]
    clock.now += 1
    record_issued_cards(store, SERVICE, "h-2", [Card("a card", Indicator.INFO, Source("x"), uuid="new-2")])
    assert [row["card"] for row in store.issued()] == ["new-1", "new-2"]


def test_retention_is_read_from_the_environment_and_at_least_a_day():
    assert Config().retention_days == 365
    assert Config.from_env({"CDS_RETENTION_DAYS": "30"}).retention_days == 30
    with pytest.raises(ConfigError, match="CDS_RETENTION_DAYS"):
        Config.from_env({"CDS_RETENTION_DAYS": "0"})
    with pytest.raises(ValueError, match="at least one day"):
        FeedbackStore(SqliteDatabase(Path("unused.sqlite3")), retention_days=0)


# --- helpers ----------------------------------------------------------------------------------


def unwritable(path: Path) -> None:
    """Put a directory where the database file was: no process, root included, can write it."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.mkdir()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _text(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
