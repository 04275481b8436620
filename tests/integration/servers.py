"""PostgreSQL and Redis for the test session: Debian's servers started on free loopback ports.

``start_postgres(folder)`` runs ``initdb`` and ``pg_ctl`` from ``/usr/lib/postgresql/*/bin`` with a
data folder of their own; as root they run as the ``postgres`` user (PostgreSQL refuses root).
``start_redis(folder)`` runs ``redis-server`` without persistence. Each returns the URL and a
``stop`` function. ``scripts/install-test-packages.sh`` installs the packages when they are missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import psycopg
import redis

HOST = "127.0.0.1"
INSTALL_HINT = "install them with: bash scripts/install-test-packages.sh (Debian packages postgresql and redis-server)"


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def postgres_bin() -> Path:
    """The newest Debian PostgreSQL's binaries folder."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise ServerError(f"no PostgreSQL server binaries under /usr/lib/postgresql: {INSTALL_HINT}")
    return Path(found[-1]).parent


def _as_server_user(command: list[str]) -> list[str]:
    """Root runs PostgreSQL as ``postgres`` (the Debian package creates that user)."""
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise ServerError(f"running as root and there is no 'postgres' user: {INSTALL_HINT}") from None
    return ["runuser", "-u", "postgres", "--", *command]


def start_postgres(folder: Path) -> tuple[str, Callable[[], None]]:
    """A fresh cluster in ``folder`` (which the server user must be able to own); its URL and ``stop``."""
    binaries = postgres_bin()
    data = folder / "data"
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    port = free_port()
    log = folder / "postgres.log"
    run = _as_server_user
    _checked([*run([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"])])
    options = f"-p {port} -k {folder} -c listen_addresses={HOST} -c fsync=off -c full_page_writes=off"
    _checked(run([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"]))

    def stop() -> None:
        subprocess.run(
            run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
            check=False,
        )

    url = f"postgresql://postgres@{HOST}:{port}/postgres"
    try:
        with psycopg.connect(url, connect_timeout=10):
            pass
    except psycopg.Error as error:
        stop()
        raise ServerError(f"PostgreSQL started but refuses connections ({error}); see {log}") from None
    return url, stop


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections see ``schema`` first (libpq ``options``): a test's own tables."""
    return url + ("&" if "?" in url else "?") + "options=" + quote(f"-csearch_path={schema}")


def start_redis(folder: Path) -> tuple[str, Callable[[], None]]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerError(f"no redis-server on PATH: {INSTALL_HINT}")
    port = free_port()
    log = (folder / "redis.log").open("wb")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()

    url = f"redis://{HOST}:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=1)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.RedisError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop()
                raise ServerError(f"redis-server did not answer on {url}; see {folder / 'redis.log'}") from None
            time.sleep(0.05)
    client.close()
    return url, stop


def _checked(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise ServerError(f"{Path(command[-1]).name if command else ''} failed: {' '.join(command)}\n{done.stderr}")


class TcpForwarder:
    """127.0.0.1:``port`` forwarded to ``target``; ``stop()`` closes the listener and every open
    connection, as a server that went away (connections reset, new ones refused)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server((HOST, 0))
        self.port = int(self.listener.getsockname()[1])
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                return
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone does not)
        except OSError:
            pass
        self.listener.close()
        with self._lock:
            for end in self._open:
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()
