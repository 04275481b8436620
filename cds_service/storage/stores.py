"""The stores a running app uses, built from the settings: ``open_stores(config)``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Config, ConfigError
from ..feedback_store import FeedbackStore
from . import ShortLived, StoreDown
from .database import Database, SqliteDatabase, open_database
from .migrations import LATEST, current_version, migrate, schema_problem
from .redis_store import JwksShare, RedisShortLived, RedisStore
from .short_lived import SqlShortLived


@dataclass
class Stores:
    database: Database
    feedback: FeedbackStore
    short_lived: ShortLived
    """The ``jti`` replay store and call counts: Redis when configured, else the database."""
    redis: RedisStore | None = None
    jwks: JwksShare | None = None
    """Fetched key sets shared by the replicas (Redis only; otherwise each process keeps its own)."""


def database_of(config: Config) -> Database:
    """The configured database, not yet connected; ``ConfigError`` when its driver is not installed."""
    try:
        return open_database(config.database_url, config.feedback_db, pool_size=config.threads + 2)
    except ImportError:
        raise ConfigError(
            ["CDS_DATABASE_URL needs the PostgreSQL driver: pip install 'sarcoma-cds[postgres]'"]
        ) from None


def redis_of(url: str) -> RedisStore:
    try:
        return RedisStore(url)
    except ImportError:
        raise ConfigError(["CDS_REDIS_URL needs the Redis client: pip install 'sarcoma-cds[redis]'"]) from None


def open_stores(config: Config) -> Stores:
    """The stores, the schema checked: ``ConfigError`` (one line) when the database cannot be used.

    The embedded SQLite file is migrated here; a shared database only by ``sarcoma-cds migrate``.
    """
    db = database_of(config)
    if isinstance(db, SqliteDatabase):
        try:
            migrate(db)
        except StoreDown as down:
            raise ConfigError([f"CDS_FEEDBACK_DB: cannot use {db.path} ({down.reason})"]) from None
    problem = schema_problem(db)
    if problem:
        db.close()
        raise ConfigError([problem])
    feedback = FeedbackStore(db, retention_days=config.retention_days)
    feedback.purge_at_start()
    if not config.redis_url:
        return Stores(db, feedback, SqlShortLived(db))
    redis = redis_of(config.redis_url)
    return Stores(db, feedback, RedisShortLived(redis), redis, JwksShare(redis))


def store_problems(config: Config) -> list[str]:
    """What ``check-config`` and ``serve`` report before start-up: the database's schema, Redis reachable."""
    db = database_of(config)
    try:
        if isinstance(db, SqliteDatabase):
            problems = _sqlite_problems(db)
        else:
            problems = [p for p in (schema_problem(db),) if p]
    finally:
        db.close()
    if config.redis_url:
        redis = redis_of(config.redis_url)
        try:
            RedisShortLived(redis).check()
        except StoreDown as down:
            problems.append(f"CDS_REDIS_URL: cannot use Redis ({down.reason})")
        finally:
            redis.close()
    return problems


def _sqlite_problems(db: SqliteDatabase) -> list[str]:
    """An existing file must not be ahead of this release (behind is fine: start-up migrates it)."""
    if not Path(db.path).is_file():
        return []
    try:
        version = current_version(db)
    except StoreDown as down:
        return [f"CDS_FEEDBACK_DB: cannot read {db.path} ({down.reason})"]
    if version > LATEST:
        return [f"CDS_FEEDBACK_DB: the database schema is at version {version}, ahead of this release ({LATEST})"]
    return []
