"""The one outbound HTTP client: every FHIR read and every JWKS fetch goes through ``fetch``.

What each outbound call gets, whoever makes it (issue 17):

- **No ambient state.** The session keeps no cookies, so a cookie that one EHR user's FHIR server
  sets is never sent on another caller's call, nor to another port of that host. ``trust_env`` is
  off: a ``~/.netrc`` on the host never replaces the EHR's bearer token, and ``HTTP(S)_PROXY``,
  ``ALL_PROXY``, ``NO_PROXY`` and ``REQUESTS_CA_BUNDLE`` change nothing. Connections are pooled per
  host and port (keep-alive only; every request carries its own headers).
- **No redirects**: a 3xx is an answer like any other status, and the caller refuses it.
- **One deadline over connect, TLS, response headers and body.** The socket timeout (of connect and
  of each read) is at most the time left, and a watchdog thread shuts the socket down when the
  deadline passes. A socket timeout alone restarts with every byte, so a server that trickles its
  headers or its body one byte at a time would hold the thread for as long as it likes.
- **A size cap** on the decoded body (compressed answers included), per answer and, through a
  ``ByteBudget``, across all the answers of one hook call; and through ``WorkerBytes``, across all the
  calls of a worker process, held until each call ends (what it read stays in memory until then).
- **Public addresses only, when asked** (``public_only``): the address actually connected to is
  checked, so a name that resolves, or rebinds, to a loopback, link-local or private address is
  refused.
- **Name resolution within the deadline too.** ``getaddrinfo`` cannot be interrupted, so it runs on a
  small pool of resolver threads (one lookup per name at a time, however many fetches wait for it)
  and the fetch waits for it at most until its deadline; a resolver that hangs costs a resolver
  thread, never the caller's time. The connection is then made to the addresses found.
- **A share of the fetch threads per upstream** (``UpstreamSlots``): at most so many fetches run at
  once against one scheme, host and port; a caller waits for a free slot while that upstream is making
  progress, at most until its deadline, so a slow server holds its own share and never the threads of
  calls that do not name it, and callers naming a stalled one give their request thread back at once.
- **Every network fault is an ``OutboundError``** (requests, urllib3, http.client, ssl and socket
  errors alike) whose ``reason`` is safe to show a client; never an exception the caller forgot.
"""

from __future__ import annotations

import contextvars
import heapq
import http.client
import ipaddress
import itertools
import os
import socket
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

CHUNK_BYTES = 65_536
RESOLVER_THREADS = 4
ROOM_MARGIN_S = 0.05
STALLED_S = 0.5
DEFAULT_PORTS = {"http": 80, "https": 443}


# --- errors: each carries a reason that completes "the FHIR server ..." / "the key set ..." ---------


class OutboundError(Exception):
    """No usable answer; ``reason`` says why without any value from the request."""

    reason = "could not be reached"

    def __init__(self) -> None:
        super().__init__(self.reason)


class DeadlinePassed(OutboundError):
    """The deadline passed, or a connect or read waited longer than its timeout."""

    reason = "did not answer in time"


class TooLarge(OutboundError):
    reason = "answer is too large"


class Unreachable(OutboundError):
    reason = "could not be reached"


class NotPublic(OutboundError):
    reason = "is at a loopback, link-local or private address"


class Busy(OutboundError):
    reason = "was busy: its share of the service's fetch threads stayed taken, none freed in time"


class NoRoom(OutboundError):
    reason = "answers could not be held: the service's memory for FHIR answers stayed in use until the deadline"


_TIMEOUTS = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)


# --- what a caller passes and gets -------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock by which every read of one task must be done."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()


class WorkerBytes:
    """Bytes that the answers held by all the calls of one worker process may add up to (its memory
    for FHIR answers). A call that holds none waits for room at most until its deadline; one that
    already holds some is refused at once, so that calls each holding part of the room never wait
    for one another."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = limit
        self._room = threading.Condition()

    def take(self, size: int, deadline: Deadline, *, wait: bool = True) -> None:
        with self._room:
            # gives up just before the deadline, so that the call's 412 says why rather than "in time"
            timeout = max(deadline.remaining() - ROOM_MARGIN_S, 0) if wait else 0
            if not self._room.wait_for(lambda: self._free >= size, timeout=timeout):
                raise NoRoom()
            self._free -= size

    def give(self, size: int) -> None:
        with self._room:
            self._free += size
            self._room.notify_all()

    @property
    def free(self) -> int:
        return self._free


class ByteBudget:
    """Bytes that all the answers of one task may add up to, shared by its parallel fetches; with a
    ``pool``, also taken from the worker's ``WorkerBytes`` and given back by ``close`` (when the task,
    which keeps what it read, ends)."""

    def __init__(self, limit: int, pool: WorkerBytes | None = None) -> None:
        self.limit = limit
        self.pool = pool
        self._used = 0
        self._held = 0
        self._closed = False
        self._lock = threading.Lock()

    def take(self, size: int, deadline: Deadline | None = None) -> None:
        with self._lock:
            if self._closed:
                raise DeadlinePassed()  # a fetch still reading after its task has ended
            self._used += size
            if self._used > self.limit:
                raise TooLarge()
        if self.pool is None:
            return
        self.pool.take(size, deadline or Deadline.after(0), wait=self._held == 0)
        with self._lock:
            if not self._closed:
                self._held += size
                return
        self.pool.give(size)
        raise DeadlinePassed()

    def close(self) -> None:
        with self._lock:
            self._closed, held, self._held = True, self._held, 0
        if self.pool is not None and held:
            self.pool.give(held)

    @property
    def used(self) -> int:
        return self._used


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes | bytearray
    """The decoded body of a 200 answer; empty for any other status (never read)."""


def fetch(
    session: requests.Session,
    url: str,
    *,
    deadline: Deadline,
    timeout_s: float,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    budget: ByteBudget | None = None,
    public_only: bool = False,
) -> Answer:
    """GET ``url`` within ``deadline``: connect and each read wait at most ``timeout_s`` (and never
    past the deadline); the body of a 200 is read whole, up to ``max_bytes`` (and ``budget``)."""
    remaining = deadline.remaining()
    if remaining <= 0:
        raise DeadlinePassed()
    watch = _Watch(deadline.at, public_only)
    _WATCHDOG.add(watch)
    token = _current_watch.set(watch)
    try:
        answer = _get(session, url, dict(headers or {}), min(timeout_s, remaining), max_bytes, budget, deadline)
        if watch.expired:  # the watchdog cut a body that had no length: it is incomplete
            raise DeadlinePassed()
        return answer
    except OutboundError:
        raise
    except (
        requests.RequestException,
        urllib3.exceptions.HTTPError,
        http.client.HTTPException,
        OSError,
        ValueError,  # UnicodeError of an over-long host label, a header value that is not Latin-1, ...
    ) as error:
        if watch.refused_address:
            raise NotPublic() from None
        if watch.expired or deadline.remaining() <= 0 or isinstance(error, _TIMEOUTS):
            raise DeadlinePassed() from None
        raise Unreachable() from None
    finally:
        _current_watch.reset(token)
        watch.finish()


def _get(
    session: requests.Session,
    url: str,
    headers: dict[str, str],
    timeout: float,
    max_bytes: int,
    budget: ByteBudget | None,
    deadline: Deadline,
) -> Answer:
    with session.get(url, headers=headers, timeout=timeout, stream=True, allow_redirects=False) as response:
        if response.status_code != 200:
            return Answer(response.status_code, b"")
        body = bytearray()  # one buffer, grown in place: never the pieces and their join at once
        try:
            # read1: whatever has arrived, so the deadline is checked between pieces however slowly they come.
            while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
                if len(body) + len(chunk) > max_bytes:
                    raise TooLarge()
                if budget is not None:
                    budget.take(len(chunk), deadline)
                if deadline.remaining() <= 0:
                    raise DeadlinePassed()
                body += chunk
        except BaseException:
            # The traceback keeps this frame, and with it the buffer, alive until the cyclic garbage
            # collector runs, which the gunicorn workers make rare (wsgi.py): free it now.
            body.clear()
            raise
        return Answer(200, body)


# --- the session: pooled connections, nothing else shared ----------------------------------------


class _NoCookies(RequestsCookieJar):
    """A cookie jar that never keeps a cookie (a session's jar is shared by every caller)."""

    def set_cookie(self, cookie: Any, *args: Any, **kwargs: Any) -> None:
        return None


def new_session(pool_size: int = 32) -> requests.Session:
    """A session for ``fetch``: no cookies, no environment (netrc, proxies, CA bundle), no retries."""
    session = requests.Session()
    session.trust_env = False
    session.cookies = _NoCookies()
    adapter = _WatchedAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# --- the deadline watchdog ------------------------------------------------------------------------

_current_watch: contextvars.ContextVar[_Watch | None] = contextvars.ContextVar("outbound_watch", default=None)


class _Watch:
    """The sockets of one ``fetch``: shut down if the fetch is still running at its deadline.

    It holds duplicates of the sockets' descriptors (``socket.fromfd``), which stay valid however the
    connection is wrapped (TLS) or closed meanwhile, and are closed when the fetch ends; shutting a
    duplicate down ends reads on the original.
    """

    def __init__(self, at: float, public_only: bool) -> None:
        self.at = at
        self.public_only = public_only
        self.expired = False
        self.refused_address = False
        self._finished = False
        self._sockets: dict[int, socket.socket] = {}
        self._lock = threading.Lock()

    def attach(self, sock: socket.socket) -> None:
        try:
            fd = sock.fileno()
            if fd < 0 or fd in self._sockets:
                return
            duplicate = socket.fromfd(fd, sock.family, sock.type)
        except OSError:
            return
        with self._lock:
            if not self._finished and not self.expired:
                self._sockets[fd] = duplicate
                return
            expired = self.expired
        if expired:
            _shut(duplicate)
        duplicate.close()

    def expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
            for duplicate in self._sockets.values():
                _shut(duplicate)

    def finish(self) -> None:
        with self._lock:
            self._finished = True
            duplicates, self._sockets = list(self._sockets.values()), {}
        for duplicate in duplicates:
            duplicate.close()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer or by the reader


class _Watchdog:
    """One daemon thread per process that expires each ``_Watch`` at its deadline."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # gunicorn workers: a fresh thread and heap

    def _reset(self) -> None:
        self._wake = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, watch: _Watch) -> None:
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="outbound-watchdog", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (watch.at, next(self._order), watch))
            if self._heap[0][2] is watch:
                self._wake.notify()

    def _run(self) -> None:
        wake, heap = self._wake, self._heap
        while True:
            with wake:
                while not heap:
                    wake.wait()
                at, _, watch = heap[0]
                delay = at - time.monotonic()
                if delay > 0:
                    wake.wait(delay)
                    continue
                heapq.heappop(heap)
            watch.expire()


_WATCHDOG = _Watchdog()


# --- name resolution within the deadline -----------------------------------------------------------


class _Resolver:
    """``getaddrinfo`` on a few threads of its own, one lookup per (name, port) in flight at a time."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=RESOLVER_THREADS, thread_name_prefix="resolve")
        self._pending: dict[tuple[str, int | None], Future[list[str]]] = {}
        self._lock = threading.RLock()  # a lookup that fails at once calls ``_forget`` while it is held

    def addresses(self, host: str, port: int | None, timeout: float) -> list[str]:
        """The addresses of ``host``, in the resolver's order; ``TimeoutError`` after ``timeout``,
        ``socket.gaierror`` if it does not resolve."""
        if _literal(host):
            return [host.strip("[]")]
        key = (host, port)
        with self._lock:
            future = self._pending.get(key)
            if future is None:
                future = self._pool.submit(_getaddrinfo, host, port)
                self._pending[key] = future
                future.add_done_callback(lambda _done: self._forget(key))
        try:
            return future.result(timeout=max(timeout, 0))
        except FutureTimeout:
            raise TimeoutError(f"name resolution took longer than {timeout:.2f} s") from None

    def _forget(self, key: tuple[str, int | None]) -> None:
        with self._lock:
            self._pending.pop(key, None)


def _getaddrinfo(host: str, port: int | None) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
        return True
    except ValueError:
        return False


_RESOLVER = _Resolver()


def resolve(host: str, port: int | None, timeout: float) -> list[str]:
    """The addresses ``host`` resolves to, waiting at most ``timeout`` seconds (``TimeoutError``)."""
    return _RESOLVER.addresses(host, port, timeout)


# --- a share of the fetch threads per upstream -------------------------------------------------------


def upstream_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, effective port): what one slot pool is kept for."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme, 0)


@dataclass
class _Share:
    semaphore: threading.BoundedSemaphore
    answered_at: float
    """When a fetch from this upstream last ended with an answer, of any status (monotonic clock)."""


class UpstreamSlots:
    """At most ``per_upstream`` fetches at once per upstream, shared by every call of the process.

    A caller waits for a slot while the upstream is making progress: as long as one of its fetches
    has ended with an answer within ``stalled_s``, until its deadline. An upstream that has answered
    none for that long is stalled (a server that hangs or trickles, whose fetches end only when their
    deadline cuts them); waiting for it would only hold the caller's request thread until its own
    deadline, so the caller gives up at once and the thread serves other calls.
    """

    def __init__(self, per_upstream: int, stalled_s: float = STALLED_S) -> None:
        self.per_upstream = per_upstream
        self.stalled_s = stalled_s
        self._shares: dict[tuple[str, str, int], _Share] = {}
        self._lock = threading.Lock()

    def _share(self, url: str) -> _Share:
        key = upstream_of(url)
        with self._lock:
            share = self._shares.get(key)
            if share is None:
                share = _Share(threading.BoundedSemaphore(self.per_upstream), time.monotonic())
                self._shares[key] = share
            return share

    def acquire(self, url: str, deadline: Deadline) -> bool:
        """Take a slot of ``url``'s upstream; False at the deadline, or once it has answered none for ``stalled_s``."""
        share = self._share(url)
        while (remaining := deadline.remaining()) > 0:
            if share.semaphore.acquire(timeout=min(remaining, self.stalled_s / 5)):
                return True
            if time.monotonic() - share.answered_at >= self.stalled_s:
                return False
        return False

    def release(self, url: str, *, answered: bool = True) -> None:
        """Give a slot back; ``answered``: the fetch ended with an answer, not cut off by its deadline."""
        share = self._share(url)
        if answered:
            share.answered_at = time.monotonic()
        share.semaphore.release()


# --- urllib3 plumbing: register each connection's socket with the running fetch's watch ---------


def _is_public(sock: socket.socket) -> bool:
    try:
        address = ipaddress.ip_address(sock.getpeername()[0])
    except (OSError, ValueError, IndexError):
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


class _AddressRefused(OSError):
    """The connected address is not public; the fetch reports ``NotPublic``."""


class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        watch = _current_watch.get()
        sock = self._connect(watch) if watch is not None else super()._new_conn()
        if watch is not None:
            if watch.public_only and not _is_public(sock):
                watch.refused_address = True
                sock.close()
                raise _AddressRefused("not a public address")
            watch.attach(sock)  # from here on, the TLS handshake included
        return sock

    def _connect(self, watch: _Watch) -> socket.socket:
        """Resolve within the fetch's deadline, then connect to each address found in turn."""
        name = self._dns_host
        addresses = resolve(name, self.port, watch.at - time.monotonic())
        last: Exception | None = None
        try:
            for address in addresses:
                self._dns_host = address  # urllib3 connects to this; TLS still checks the name (self.host)
                try:
                    return super()._new_conn()
                except (OSError, urllib3.exceptions.HTTPError) as error:
                    last = error
        finally:
            self._dns_host = name
        raise last or OSError("the name has no address")

    def getresponse(self) -> Any:  # a pooled connection is reused without a new socket
        watch = _current_watch.get()
        if watch is not None and self.sock is not None:
            watch.attach(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(_WatchedHTTPConnection, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
