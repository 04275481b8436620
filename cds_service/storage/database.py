"""The database: the embedded SQLite file, or a PostgreSQL server shared by several replicas.

Both are used through ``Database.transaction()``, which yields a ``Transaction`` taking SQL with ``?``
placeholders, so every query is written once (``feedback_store``, ``short_lived``). What the two
dialects spell differently is named in ``Dialect``. Any driver error, an unreachable server or a
connection not had within ``wait_s`` raises ``StoreDown("database")``: callers decide what that
means for their request (a hook call carries on; feedback and JWT-protected calls answer 503).

SQLite: WAL mode and a busy timeout let the workers and threads of one host write at once; a
durable transaction syncs the WAL before it returns (``synchronous=FULL``), a hurried one
(``durable=False``) only before the next checkpoint. PostgreSQL: a pool per process (psycopg_pool),
``synchronous_commit`` on for durable transactions and off for hurried ones.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from . import StoreDown


@dataclass(frozen=True)
class Dialect:
    name: str
    json_elements: str
    """A FROM item expanding the JSON text array ``{column}`` into rows of one column, ``value``."""
    identity: str
    """The column type of an auto-numbered primary key."""
    real: str
    table_exists: str
    """A query counting the tables named ``?`` (0 or 1)."""


SQLITE = Dialect(
    "sqlite",
    "json_each({column}) AS s",
    "INTEGER PRIMARY KEY",
    "REAL",
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
)
POSTGRESQL = Dialect(
    "postgresql",
    "LATERAL jsonb_array_elements_text({column}::jsonb) AS s(value)",
    "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    "DOUBLE PRECISION",
    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?",
)


class Transaction(Protocol):
    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (empty for statements that return none)."""

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run one statement per row; how many rows they changed."""

    def rollback_at_end(self) -> None:
        """Undo everything at the end instead of committing (a probe that must leave nothing)."""


class Database(Protocol):
    dialect: Dialect
    setting: str
    """The setting that names this database, for messages."""

    def transaction(self, *, wait_s: float = 5.0, durable: bool = True) -> AbstractContextManager[Transaction]:
        """A ``Transaction``, committed on leaving it; ``wait_s`` bounds the wait for a lock or a connection."""

    def describe(self) -> str:
        """Where the data lives, without credentials."""

    def close(self) -> None: ...


def open_database(url: str | None, sqlite_path: Path, *, pool_size: int = 6) -> Database:
    """PostgreSQL when ``url`` is set (``CDS_DATABASE_URL``), else the SQLite file ``sqlite_path``."""
    if url:
        return PostgresDatabase(url, pool_size=pool_size)
    return SqliteDatabase(sqlite_path)


# --- SQLite --------------------------------------------------------------------------------------


def connect(path: Path, *, busy_s: float = 10.0) -> sqlite3.Connection:
    """A connection with the settings every writer needs (WAL, busy timeout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=busy_s, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={int(busy_s * 1000)}")
    _wal(conn, time.monotonic() + busy_s)
    return conn


def _wal(conn: sqlite3.Connection, deadline: float) -> None:
    """Switch to WAL; switching a new database can answer "locked" at once while another connection
    switches it (the busy timeout does not cover it), so it is tried again until ``deadline``."""
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() >= deadline:
                conn.close()
                raise
            time.sleep(0.01)


class _SqliteTransaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.rollback = False

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, args).fetchall()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        before = self.conn.total_changes
        self.conn.executemany(sql, rows)
        return self.conn.total_changes - before

    def rollback_at_end(self) -> None:
        self.rollback = True


class _ThreadConnection(threading.local):
    conn: sqlite3.Connection | None = None
    pid: int = 0


class SqliteDatabase:
    """One file on one host. Durable transactions open their own connection (a probe finds a file
    removed or made read-only at once); hurried ones reuse this thread's (a forked worker opens its own)."""

    dialect = SQLITE
    setting = "CDS_FEEDBACK_DB"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = _ThreadConnection()

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    @contextmanager
    def transaction(self, *, wait_s: float = 5.0, durable: bool = True) -> Iterator[Transaction]:
        try:
            conn = self._connection(wait_s, durable)
            conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            conn.execute("BEGIN IMMEDIATE")
        except (sqlite3.Error, OSError) as error:
            self._drop(durable)
            raise StoreDown("database", error) from None
        tx = _SqliteTransaction(conn)
        try:
            yield tx
            conn.execute("ROLLBACK" if tx.rollback else "COMMIT")
        except (sqlite3.Error, OSError) as error:
            self._abandon(conn, durable)
            raise StoreDown("database", error) from None
        except BaseException:
            self._abandon(conn, durable)
            raise
        finally:
            if durable:
                conn.close()

    def _connection(self, wait_s: float, durable: bool) -> sqlite3.Connection:
        if durable:
            return connect(self.path, busy_s=wait_s)
        local = self._local
        if local.conn is None or local.pid != os.getpid():
            local.conn, local.pid = connect(self.path, busy_s=wait_s), os.getpid()
        local.conn.execute(f"PRAGMA busy_timeout={int(wait_s * 1000)}")
        return local.conn

    def _abandon(self, conn: sqlite3.Connection, durable: bool) -> None:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        self._drop(durable)

    def _drop(self, durable: bool) -> None:
        if not durable:
            conn, self._local.conn = self._local.conn, None
            if conn is not None:
                conn.close()

    def close(self) -> None:
        self._drop(False)


# --- PostgreSQL ----------------------------------------------------------------------------------

CONNECT_TIMEOUT_S = 3


def redacted(url: str) -> str:
    """``url`` without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


class _PostgresTransaction:
    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor
        self.rollback = False

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.cursor.execute(sql.replace("?", "%s"), args)
        return self.cursor.fetchall() if self.cursor.description else []

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        self.cursor.executemany(sql.replace("?", "%s"), rows)
        return int(self.cursor.rowcount)

    def rollback_at_end(self) -> None:
        self.rollback = True


class PostgresDatabase:
    """A connection pool of this process (opened lazily, so a forked worker opens its own)."""

    dialect = POSTGRESQL
    setting = "CDS_DATABASE_URL"

    def __init__(self, url: str, *, pool_size: int = 6) -> None:
        import psycopg  # the postgres extra; ImportError tells the caller it is missing
        import psycopg_pool

        self.url = url
        self._errors: tuple[type[BaseException], ...] = (psycopg.Error, psycopg_pool.PoolTimeout, OSError)
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            check=psycopg_pool.ConnectionPool.check_connection,  # a server restart costs no request
            kwargs={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "sarcoma-cds"},
            name="cds",
        )
        self._opened_by = 0
        self._lock = threading.Lock()

    def describe(self) -> str:
        return redacted(self.url)

    def _pool_of_this_process(self) -> Any:
        with self._lock:
            if self._opened_by != os.getpid():
                self._pool.open(wait=False)
                self._opened_by = os.getpid()
        return self._pool

    @contextmanager
    def transaction(self, *, wait_s: float = 5.0, durable: bool = True) -> Iterator[Transaction]:
        try:
            with self._pool_of_this_process().connection(timeout=wait_s) as conn, conn.cursor() as cursor:
                if not durable:
                    cursor.execute("SET LOCAL synchronous_commit = off")
                tx = _PostgresTransaction(cursor)
                yield tx
                if tx.rollback:
                    conn.rollback()
        except self._errors as error:
            raise StoreDown("database", error) from None

    def close(self) -> None:
        self._pool.close()
