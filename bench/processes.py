"""Servers the benchmark starts, and the guarantee that it stops every one of them.

Each server runs in a session of its own, so stopping it ends its whole process group (gunicorn's
arbiter and workers) and nothing else. ``Servers`` is a context manager: leaving it for any reason
(error, Ctrl-C, SIGTERM) stops what it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GUNICORN_LOG_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_on_signals() -> None:
    """Ctrl-C raises KeyboardInterrupt even if SIGINT was inherited ignored (``cmd &`` in a script),
    and SIGTERM raises SystemExit, so that ``finally`` blocks stop the servers."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, handler)


@dataclass
class Server:
    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Servers(AbstractContextManager["Servers"]):
    """Starts servers; stops all of them on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Server] = []

    def start(self, name: str, argv: list[str], port: int, env: dict[str, str] | None = None) -> Server:
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env={**os.environ, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        server = Server(name, f"http://127.0.0.1:{port}", process, log)
        self.started.append(server)
        return server

    def wait_healthy(self, server: Server, path: str = "/healthz", timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited during start-up:\n{server.tail()}")
            try:
                with urllib.request.urlopen(server.base_url + path, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{server.name} did not answer {path} within {timeout_s:.0f} s:\n{server.tail()}")

    def stop_all(self) -> None:
        for server in reversed(self.started):
            _stop_group(server.process)
        self.started.clear()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop_all()


def _stop_group(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM the server's process group (also any worker left behind), SIGKILL after ``grace_s``."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=grace_s)


def gunicorn_argv(app: str, port: int, workers: int, threads: int, *extra: str) -> list[str]:
    """The gunicorn command line ``sarcoma-cds serve`` uses, for any WSGI app."""
    return [
        str(BIN / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--timeout",
        "30",
        "--access-logfile",
        "-",
        "--access-logformat",
        GUNICORN_LOG_FORMAT,
        *extra,
        app,
    ]


def service_argv(port: int, workers: int, threads: int) -> list[str]:
    return [
        str(BIN / "sarcoma-cds"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]


def cpu_seconds(server: Server) -> float:
    """CPU time (user + system) used so far by every process of ``server``'s group: gunicorn's
    arbiter and its workers, live ones only (Linux ``/proc``; 0.0 where there is none)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process has just exited
        if int(fields[2]) == server.process.pid:  # fields[2]: the process group id
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / tick
