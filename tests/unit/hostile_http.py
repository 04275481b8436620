"""Real HTTP servers on 127.0.0.1 that misbehave, for the outbound client's tests.

``RawServer(behaviour)`` accepts connections on a free port, reads each request head, records it
(``requests``: one ``Received`` each) and hands the socket to ``behaviour``, a function of the
socket, in a thread of its own. The behaviours below are the faults an upstream can show:
``answer`` (a well-formed answer, optionally with extra headers), ``trickle_headers``,
``trickle_body``, ``stall``, ``reset``, ``truncated``, ``bad_gzip``, ``bad_chunking``, ``gzip_bomb``.
Each trickle records, in ``server.held``, how long it kept the connection before the client hung up.
"""

from __future__ import annotations

import functools
import gzip
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

Behaviour = Callable[[socket.socket], None]


@dataclass(frozen=True)
class Received:
    request_line: str
    headers: dict[str, str]  # names lower-cased


class RawServer:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests: list[Received] = []
        self.held: list[float] = []  # seconds each trickle kept its connection (until the client hung up)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._open: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self.requests.append(Received(lines[0], headers))
            self.behaviour(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._stopped.set()
        self._listener.close()
        for conn in self._open:
            try:
                conn.close()
            except OSError:
                pass
        self._thread.join(timeout=2)


@contextmanager
def running(behaviour: Behaviour) -> Iterator[RawServer]:
    server = RawServer(behaviour)
    try:
        yield server
    finally:
        server.close()


# --- behaviours -----------------------------------------------------------------------------------


def answer(body: bytes = b'{"resourceType": "Patient", "id": "p1"}', *extra_headers: str, status: str = "200 OK"):
    def behave(conn: socket.socket) -> None:
        head = [f"HTTP/1.1 {status}", "Content-Type: application/fhir+json", f"Content-Length: {len(body)}"]
        head += [*extra_headers, "Connection: close"]
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    return behave


def _trickle(server_held: list[float], prefix: bytes, byte: bytes, interval: float, most_s: float):
    def behave(conn: socket.socket) -> None:
        started = time.monotonic()
        try:
            conn.sendall(prefix)
            while time.monotonic() - started < most_s:
                conn.sendall(byte)
                time.sleep(interval)
        except OSError:
            pass  # the client hung up
        finally:
            server_held.append(time.monotonic() - started)

    return behave


def trickle_headers(held: list[float], interval: float = 0.05, most_s: float = 30.0) -> Behaviour:
    """A status line, then one header byte every ``interval``: the header block never ends."""
    return _trickle(held, b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a", interval, most_s)


def trickle_body(held: list[float], interval: float = 0.05, most_s: float = 30.0) -> Behaviour:
    """Headers promising a large body, then one byte of it every ``interval``."""
    return _trickle(held, b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n", b" ", interval, most_s)


def stall(seconds: float = 30.0) -> Behaviour:
    """Read the request, then say nothing."""
    return lambda conn: time.sleep(seconds)


def reset(conn: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0) instead of an answer."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def truncated(conn: socket.socket) -> None:
    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"resourceType": "Pat')


def bad_gzip(conn: socket.socket) -> None:
    body = b"\x1f\x8b\x08\x00garbage that is not deflate data at all"
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


def bad_chunking(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n0\r\n\r\n")


def garbage_status(conn: socket.socket) -> None:
    conn.sendall(b"NOT-HTTP garbage\r\n\r\n")


@functools.cache
def _gzipped_spaces(megabytes: int) -> bytes:
    return gzip.compress(b" " * (megabytes * 1_000_000), compresslevel=9)


def gzip_bomb(megabytes: int = 50) -> Behaviour:
    """A small gzip body that inflates to ``megabytes`` of spaces (compressed on first use)."""

    def behave(conn: socket.socket) -> None:
        body = _gzipped_spaces(megabytes)
        head = f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        conn.sendall(head.encode() + body)

    return behave
