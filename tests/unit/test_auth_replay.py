"""The jti replay store: one use per (iss, jti) until expiry, across connections and threads."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

from cds_service.auth.replay import ReplayStore
from cds_service.feedback_store import FeedbackStore, connect


def test_second_use_is_refused(tmp_path):
    store = ReplayStore(tmp_path / "db.sqlite3")
    assert store.first_use("iss", "j1", expires_at=2000, now=1000)
    assert not store.first_use("iss", "j1", expires_at=2000, now=1001)


def test_same_jti_from_another_issuer_is_a_different_token(tmp_path):
    store = ReplayStore(tmp_path / "db.sqlite3")
    assert store.first_use("a", "j1", expires_at=2000, now=1000)
    assert store.first_use("b", "j1", expires_at=2000, now=1000)


def test_expired_rows_are_purged(tmp_path):
    store = ReplayStore(tmp_path / "db.sqlite3")
    for n in range(10):
        store.first_use("iss", f"old-{n}", expires_at=1500, now=1000)
    store.first_use("iss", "new", expires_at=3000, now=2000)
    assert store.count() == 1


def test_two_stores_on_one_file_share_the_record(tmp_path):
    path = tmp_path / "db.sqlite3"
    worker_a, worker_b = ReplayStore(path), ReplayStore(path)
    assert worker_a.first_use("iss", "j1", expires_at=2000, now=1000)
    assert not worker_b.first_use("iss", "j1", expires_at=2000, now=1000)


def test_concurrent_uses_of_one_jti_admit_exactly_one(tmp_path):
    path = tmp_path / "db.sqlite3"
    stores = [ReplayStore(path) for _ in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: stores[n % 4].first_use("iss", "same", expires_at=2000, now=1000), range(32)))
    assert results.count(True) == 1


def test_lives_beside_feedback_in_the_same_file(tmp_path):
    path = tmp_path / "db.sqlite3"
    FeedbackStore(path)
    ReplayStore(path)
    with closing(connect(path)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"feedback", "jwt_replay"} <= tables


def test_uniqueness_is_enforced_by_the_database(tmp_path):
    path = tmp_path / "db.sqlite3"
    ReplayStore(path).first_use("iss", "j1", expires_at=2000, now=1000)
    with closing(connect(path)) as conn:
        try:
            conn.execute("INSERT INTO jwt_replay (jti, iss, expires_at) VALUES ('j1', 'iss', 3000)")
        except sqlite3.IntegrityError:
            return
    raise AssertionError("UNIQUE (iss, jti) is missing")
