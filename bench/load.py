"""Closed-loop load against two targets at once, interleaved so machine noise hits both.

At concurrency 1 each round sends one request to each target, in random order. At higher
concurrency each round runs one block of requests per target (random order), ``concurrency``
requests in flight to that target alone, so throughput is what the server sustains with the whole
machine. Connections are kept alive, one per worker thread and target, as an EHR's pool would.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

PLACEHOLDER = "00000000-0000-4000-8000-000000000000"
RESET_ERRORS = (http.client.RemoteDisconnected, http.client.BadStatusLine, ConnectionError, BrokenPipeError)


@dataclass(frozen=True)
class Payload:
    """A serialised hook request whose ``hookInstance`` is fresh on every call."""

    head: bytes
    tail: bytes

    @classmethod
    def of(cls, body: dict[str, Any]) -> Payload:
        raw = orjson.dumps({**body, "hookInstance": PLACEHOLDER})
        head, _, tail = raw.partition(PLACEHOLDER.encode())
        return cls(head, tail)

    def render(self) -> bytes:
        return self.head + str(uuid.uuid4()).encode() + self.tail

    @property
    def size(self) -> int:
        return len(self.head) + 36 + len(self.tail)


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str
    path: str

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.base_url)
        return parts.hostname or "127.0.0.1", parts.port or 80


@dataclass
class Samples:
    latencies_s: list[float] = field(default_factory=list)
    busy_s: float = 0.0  # wall time spent on this target's requests
    errors: dict[int, int] = field(default_factory=dict)  # status (0: no answer) -> count
    cpu_s: float | None = None  # CPU time the server's processes used meanwhile (``processes.cpu_seconds``)

    def add_error(self, status: int) -> None:
        self.errors[status] = self.errors.get(status, 0) + 1


class Connections(threading.local):
    """One keep-alive connection per thread and target."""

    def __init__(self) -> None:
        self.by_target: dict[str, http.client.HTTPConnection] = {}

    def get(self, target: Target) -> http.client.HTTPConnection:
        conn = self.by_target.get(target.name)
        if conn is None:
            conn = http.client.HTTPConnection(*target.host_port, timeout=120)
            self.by_target[target.name] = conn
        return conn

    def drop(self, target: Target) -> None:
        conn = self.by_target.pop(target.name, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for name in list(self.by_target):
            self.by_target.pop(name).close()


HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def post(connections: Connections, target: Target, body: bytes) -> tuple[int, float, bytes]:
    """POST once; a connection the server closed while idle is reopened and the call retimed."""
    for attempt in (1, 2):
        conn = connections.get(target)
        started = time.perf_counter()
        try:
            conn.request("POST", target.path, body=body, headers=HEADERS)
            reply = conn.getresponse()
            data = reply.read()
            return reply.status, time.perf_counter() - started, data
        except RESET_ERRORS:
            connections.drop(target)
            if attempt == 2:
                return 0, time.perf_counter() - started, b""
    raise AssertionError("unreachable")


class Load:
    """Sends interleaved load to several targets; threads and connections live for one cell."""

    def __init__(self, targets: list[Target], concurrency: int, seed: int = 1) -> None:
        self.targets = targets
        self.concurrency = concurrency
        self.rng = random.Random(seed)
        self.connections = Connections()
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="load")

    def __enter__(self) -> Load:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.connections.close()

    def _block(self, target: Target, payload: Payload, count: int, samples: Samples) -> None:
        def one(_: int) -> tuple[int, float]:
            status, seconds, _body = post(self.connections, target, payload.render())
            return status, seconds

        started = time.perf_counter()
        if self.concurrency == 1:
            results = [one(i) for i in range(count)]
        else:
            results = list(self.pool.map(one, range(count)))
        samples.busy_s += time.perf_counter() - started
        for status, seconds in results:
            if status == 200:
                samples.latencies_s.append(seconds)
            else:
                samples.add_error(status)

    def run(self, payload: Payload, requests: int, time_cap_s: float, block: int) -> dict[str, Samples]:
        """Rounds of one ``block`` per target until ``requests`` per target or ``time_cap_s`` (>= 1 round)."""
        samples = {t.name: Samples() for t in self.targets}
        started = time.monotonic()
        for done in range(max(1, requests // block)):
            if done and time.monotonic() - started > time_cap_s:
                break
            for target in self.rng.sample(self.targets, len(self.targets)):
                self._block(target, payload, block, samples[target.name])
        return samples

    def warm_up(self, payload: Payload, requests: int) -> None:
        """Unmeasured calls, so that the timed ones find warm caches and open connections."""
        for target in self.targets:
            self._block(target, payload, requests, Samples())
