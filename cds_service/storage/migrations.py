"""Versioned schema of the database: ``MIGRATIONS`` in order, the versions applied in ``schema_version``.

``sarcoma-cds migrate`` applies the missing ones, each in its own transaction (on PostgreSQL under
an advisory lock, so two migrations started at once run one after the other). Start-up checks the
version and refuses a schema behind or ahead of this release with one line (``schema_problem``):
replicas of two releases never write one schema each expects differently. The embedded SQLite
file belongs to one host and is migrated at start-up; a shared database only by ``migrate``, run
once per release before the new replicas start.

Version 1 is the schema the SQLite file had before versioning (``IF NOT EXISTS``: such a file is
adopted as it is). Timestamps are UTC text, ``2026-03-01T12:00:00.000Z``, which sorts as it reads
in both dialects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from . import StoreDown
from .database import POSTGRESQL, Database, Dialect

ADVISORY_LOCK = 0x5A4C0D5  # any constant of this application's own


@dataclass(frozen=True)
class Migration:
    version: int
    summary: str
    statements: tuple[str, ...]
    """SQL with ``{identity}`` and ``{real}`` standing for the dialect's spelling (``Dialect``)."""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "feedback, issued cards and the JWT replay store",
        (
            """CREATE TABLE IF NOT EXISTS feedback (
                id {identity},
                service_id TEXT NOT NULL,
                card TEXT NOT NULL,
                outcome TEXT NOT NULL,
                outcome_timestamp TEXT NOT NULL,
                accepted_suggestions TEXT,
                override_reason TEXT,
                received_at TEXT NOT NULL,
                UNIQUE (service_id, card, outcome, outcome_timestamp)
            )""",
            "CREATE INDEX IF NOT EXISTS feedback_received_at ON feedback (received_at)",
            """CREATE TABLE IF NOT EXISTS issued_card (
                card TEXT PRIMARY KEY,
                service_id TEXT NOT NULL,
                hook_instance TEXT NOT NULL,
                statements TEXT NOT NULL,
                knowledge_version TEXT NOT NULL,
                issued_at TEXT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS issued_card_issued_at ON issued_card (issued_at)",
            """CREATE TABLE IF NOT EXISTS jwt_replay (
                jti TEXT NOT NULL,
                iss TEXT NOT NULL,
                expires_at {real} NOT NULL,
                UNIQUE (iss, jti)
            )""",
            "CREATE INDEX IF NOT EXISTS jwt_replay_expires_at ON jwt_replay (expires_at)",
        ),
    ),
    Migration(
        2,
        "calls counted per name and fixed window (the feedback rate limit)",
        (
            """CREATE TABLE call_window (
                name TEXT NOT NULL,
                window_start BIGINT NOT NULL,
                hits INTEGER NOT NULL,
                PRIMARY KEY (name, window_start)
            )""",
            "CREATE INDEX call_window_start ON call_window (window_start)",
        ),
    ),
)
LATEST = MIGRATIONS[-1].version

VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    summary TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""


def sql(statement: str, dialect: Dialect) -> str:
    return statement.format(identity=dialect.identity, real=dialect.real)


def current_version(db: Database) -> int:
    """The highest version applied; 0 for an empty database. Raises ``StoreDown``."""
    with db.transaction(wait_s=5.0) as tx:
        [(tables,)] = tx.execute(db.dialect.table_exists, ("schema_version",))
        if not tables:
            return 0
        [(version,)] = tx.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
    return int(version)


def migrate(db: Database, *, target: int = LATEST) -> list[Migration]:
    """Apply every migration above the database's version up to ``target``, each in one transaction;
    return those applied. Raises ``StoreDown``."""
    applied = []
    for migration in MIGRATIONS[:target]:
        with db.transaction() as tx:
            if db.dialect is POSTGRESQL:
                tx.execute("SELECT pg_advisory_xact_lock(?)", (ADVISORY_LOCK,))
            tx.execute(VERSION_TABLE)
            [(version,)] = tx.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            if int(version) >= migration.version:
                continue
            for statement in migration.statements:
                tx.execute(sql(statement, db.dialect))
            now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            tx.execute(
                "INSERT INTO schema_version (version, summary, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.summary, now),
            )
        applied.append(migration)
    return applied


def schema_problem(db: Database) -> str | None:
    """One line when the service must not start on this database: unreachable, or its schema behind or ahead."""
    try:
        version = current_version(db)
    except StoreDown as down:
        return f"{db.setting}: cannot use the database at {db.describe()} ({down.reason})"
    if version < LATEST:
        return (
            f"{db.setting}: the database schema is at version {version}, this release needs {LATEST}: "
            "run `sarcoma-cds migrate`"
        )
    if version > LATEST:
        return (
            f"{db.setting}: the database schema is at version {version}, ahead of this release ({LATEST}): "
            "run the release that migrated it, or a later one"
        )
    return None
