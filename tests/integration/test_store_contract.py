"""One contract for every store, run on SQLite, PostgreSQL and Redis (real servers, started by the session).

The short-lived store (the JWT ``jti`` replay store and call counts) on all three; feedback, issued
cards and the schema migrations on both databases. Several store objects on one server stand for
several workers or replicas.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cds_service.feedback_store import FeedbackItem, FeedbackStore, IssuedCard
from cds_service.storage import ShortLived, StoreDown
from cds_service.storage.database import Database, PostgresDatabase, SqliteDatabase
from cds_service.storage.migrations import LATEST, current_version, migrate, schema_problem
from cds_service.storage.redis_store import RedisShortLived, RedisStore
from cds_service.storage.short_lived import SqlShortLived

SERVICE = "sarcoma-patient-view"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


# --- fixtures: the same factories over three back ends ----------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Database]]:
    """A factory of connections to one database (each call: another worker's), migrated unless told."""
    opened: list[Database] = []

    def new(*, migrated: bool = True) -> Database:
        if request.param == "sqlite":
            db: Database = SqliteDatabase(tmp_path / "cds.sqlite3")
        else:
            db = PostgresDatabase(request.getfixturevalue("postgres_url"), pool_size=8)
        opened.append(db)
        if migrated:
            migrate(db)
        return db

    yield new
    for db in opened:
        db.close()


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def short_lived(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], ShortLived]]:
    """A factory of short-lived stores on one server or file."""
    closers: list[Callable[[], None]] = []

    def new() -> ShortLived:
        if request.param == "redis":
            store = RedisStore(request.getfixturevalue("redis_url"))
            closers.append(store.close)
            return RedisShortLived(store)
        if request.param == "sqlite":
            db: Database = SqliteDatabase(tmp_path / "cds.sqlite3")
        else:
            db = PostgresDatabase(request.getfixturevalue("postgres_url"), pool_size=8)
        closers.append(db.close)
        migrate(db)
        return SqlShortLived(db)

    yield new
    for close in closers:
        close()


# --- the short-lived store ---------------------------------------------------------------------------


def test_a_jti_is_accepted_once(short_lived):
    store, jti = short_lived(), unique("jti")
    expires = time.time() + 300
    assert store.first_use("https://ehr.example.org", jti, expires)
    assert not store.first_use("https://ehr.example.org", jti, expires)


def test_the_same_jti_from_another_issuer_is_another_token(short_lived):
    store, jti = short_lived(), unique("jti")
    expires = time.time() + 300
    assert store.first_use("https://a.example.org", jti, expires)
    assert store.first_use("https://b.example.org", jti, expires)


def test_a_second_worker_or_replica_sees_the_first_use(short_lived):
    jti, expires = unique("jti"), time.time() + 300
    assert short_lived().first_use("iss", jti, expires)
    assert not short_lived().first_use("iss", jti, expires)


def test_of_simultaneous_uses_of_one_jti_exactly_one_is_accepted(short_lived):
    stores = [short_lived() for _ in range(4)]
    jti, expires = unique("jti"), time.time() + 300
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda n: stores[n % 4].first_use("iss", jti, expires), range(48)))
    assert results.count(True) == 1


def test_a_record_lapses_when_the_token_has_expired(short_lived):
    store, jti = short_lived(), unique("jti")
    expires = time.time() + 0.3
    assert store.first_use("iss", jti, expires)
    time.sleep(max(0.0, math.ceil(expires) + 0.05 - time.time()))  # Redis expires on whole seconds
    assert store.first_use("iss", jti, time.time() + 300)


def test_calls_are_counted_per_name_and_window(short_lived):
    store, name, other = short_lived(), unique("client"), unique("client")
    now = time.time() // 60 * 60 + 1  # early in a minute: the next three calls share its window
    assert [store.hit(name, 60, now=now + n) for n in range(3)] == [1, 2, 3]
    assert store.hit(other, 60, now=now) == 1
    assert store.hit(name, 60, now=now + 60) == 1  # the next minute starts again


def test_simultaneous_calls_each_get_their_own_count(short_lived):
    stores, name = [short_lived() for _ in range(4)], unique("client")
    now = time.time()
    with ThreadPoolExecutor(max_workers=16) as pool:
        counts = list(pool.map(lambda n: stores[n % 4].hit(name, 60, now=now), range(40)))
    assert sorted(counts) == list(range(1, 41))


def test_a_store_that_does_not_answer_raises_store_down_within_seconds(tmp_path):
    redis, postgres = RedisStore("redis://127.0.0.1:9/0"), PostgresDatabase("postgresql://cds@127.0.0.1:9/cds")
    (tmp_path / "cds.sqlite3").mkdir()  # a folder where the file should be
    stores = [RedisShortLived(redis), SqlShortLived(postgres), SqlShortLived(SqliteDatabase(tmp_path / "cds.sqlite3"))]
    try:
        for store in stores:  # port 9 (discard): nothing listens
            started = time.monotonic()
            with pytest.raises(StoreDown):
                store.first_use("iss", unique("jti"), time.time() + 300)
            with pytest.raises(StoreDown):
                store.hit(unique("client"), 60)
            assert time.monotonic() - started < 6
    finally:
        redis.close()
        postgres.close()


# --- feedback and issued cards on both databases ---------------------------------------------------


def test_feedback_is_stored_once_however_often_it_is_sent(database):
    store = FeedbackStore(database())
    item = FeedbackItem("c-1", "overridden", "2026-03-01T10:00:00.000Z", override_reason={"userComment": "é ✓"})
    assert store.add(SERVICE, [item]) == (1, 0)
    assert store.add(SERVICE, [item, FeedbackItem("c-2", "accepted", "2026-03-01T10:00:00.000Z", ("s-1",))]) == (1, 1)
    assert [(row["card"], row["outcome"]) for row in store.list()] == [("c-1", "overridden"), ("c-2", "accepted")]
    assert store.list(card="c-2")[0]["acceptedSuggestions"] == ["s-1"]
    assert store.list(card="c-1")[0]["overrideReason"] == {"userComment": "é ✓"}
    assert store.list(service_id="another") == []


def test_feedback_committed_by_one_worker_is_read_by_another(database):
    FeedbackStore(database()).add(SERVICE, [FeedbackItem("c-9", "overridden", "2026-03-01T10:00:00.000Z")])
    assert [row["card"] for row in FeedbackStore(database()).list()] == ["c-9"]


def test_simultaneous_feedback_from_many_threads_is_all_stored(database):
    stores = [FeedbackStore(database()) for _ in range(4)]

    def post(n: int) -> tuple[int, int]:
        return stores[n % 4].add(SERVICE, [FeedbackItem(f"c-{n}", "overridden", "2026-03-01T10:00:00.000Z")])

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert list(pool.map(post, range(60))) == [(1, 0)] * 60
    assert len(stores[0].list()) == 60


def test_the_report_queries_join_feedback_to_issued_cards(database):
    store = FeedbackStore(database())
    store.record_issued(SERVICE, "h-1", [IssuedCard("c-1", ("S01", "S02"), "v1"), IssuedCard("c-2", ("S01",), "v1")])
    assert store.record_issued(SERVICE, "h-1", [IssuedCard("c-1", ("S01", "S02"), "v1")]) == 0
    store.add(
        SERVICE,
        [
            FeedbackItem("c-1", "overridden", "2026-03-01T10:00:00.000Z", override_reason={"reason": {"code": "x"}}),
            FeedbackItem("c-2", "accepted", "2026-03-01T10:00:00.000Z", ("s-1",)),
            FeedbackItem("never-issued", "overridden", "2026-03-01T10:00:00.000Z"),
        ],
    )
    assert sorted(store.statement_tallies()) == [("S01", 2, 1, 1), ("S02", 1, 0, 1)]
    assert store.overrides() == [("c-1", ("S01", "S02"), {"reason": {"code": "x"}})]
    assert store.issued_totals() == [("v1", 2, 1)]
    assert store.unmatched_feedback() == 1
    assert [row["statements"] for row in store.issued("c-1")] == [["S01", "S02"]]


def test_the_purge_keeps_the_boundary_and_drops_older_rows(database):
    store = FeedbackStore(database(), retention_days=30)
    boundary = NOW - timedelta(days=30)
    store.record_issued(SERVICE, "h", [IssuedCard("older", ("S01",), "v")], at=boundary - timedelta(milliseconds=1))
    store.record_issued(SERVICE, "h", [IssuedCard("edge", ("S01",), "v")], at=boundary)
    assert store.purge(now=NOW) == (1, 0)
    assert [row["card"] for row in store.issued()] == ["edge"]


def test_the_readiness_probe_leaves_nothing_behind(database):
    store = FeedbackStore(database())
    store.check_writable()
    assert store.issued() == [] and store.list() == []


# --- migrations ------------------------------------------------------------------------------------


def test_an_empty_database_is_migrated_in_order_and_a_second_run_applies_nothing(database):
    db = database(migrated=False)
    assert current_version(db) == 0
    assert [m.version for m in migrate(db)] == list(range(1, LATEST + 1))
    assert migrate(db) == []
    assert current_version(db) == LATEST and schema_problem(db) is None


def test_two_migrations_started_at_once_apply_each_step_once(database):
    dbs = [database(migrated=False) for _ in range(3)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        applied = list(pool.map(migrate, dbs))
    assert sorted(m.version for steps in applied for m in steps) == list(range(1, LATEST + 1))


def test_a_schema_behind_or_ahead_of_this_release_is_refused_with_one_line(database):
    db = database(migrated=False)
    migrate(db, target=LATEST - 1)
    behind = schema_problem(db)
    assert behind is not None and f"version {LATEST - 1}" in behind and "sarcoma-cds migrate" in behind
    assert "\n" not in behind
    assert [m.version for m in migrate(db)] == [LATEST]
    with db.transaction() as tx:
        tx.execute("INSERT INTO schema_version (version, summary, applied_at) VALUES (?, ?, ?)", (99, "x", "now"))
    ahead = schema_problem(db)
    assert ahead is not None and "version 99" in ahead and "ahead" in ahead
