"""The one outbound HTTP client (``cds_service.outbound``), against real misbehaving servers on 127.0.0.1.

Each fault ends as an ``OutboundError`` within the deadline (plus ``SLACK``); no cookie, netrc or proxy
variable changes what is sent; the JWKS fetcher, which uses the same client, is cut off the same way.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hostile_http import (
    answer,
    bad_chunking,
    bad_gzip,
    garbage_status,
    gzip_bomb,
    reset,
    running,
    stall,
    trickle_body,
    trickle_headers,
    truncated,
)

from cds_service.auth.jwks import JwksCache, JwksUnavailable
from cds_service.outbound import (
    ByteBudget,
    Deadline,
    DeadlinePassed,
    NoRoom,
    NotPublic,
    OutboundError,
    TooLarge,
    Unreachable,
    UpstreamSlots,
    WorkerBytes,
    fetch,
    new_session,
)

SLACK = 0.35  # seconds past the deadline a cut-off may take (the watchdog, thread wake-ups, a loaded CI)


def get(url: str, *, deadline_s: float = 1.0, timeout_s: float = 0.6, max_bytes: int = 1_000_000, **kwargs):
    return fetch(
        new_session(), url, deadline=Deadline.after(deadline_s), timeout_s=timeout_s, max_bytes=max_bytes, **kwargs
    )


def timed(call) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        call()
    except BaseException as error:  # noqa: BLE001 - the test inspects what was raised
        return time.monotonic() - started, error
    return time.monotonic() - started, None


# --- the deadline covers headers and body ----------------------------------------------------------


@pytest.mark.parametrize("trickle", [trickle_headers, trickle_body], ids=["headers", "body"])
def test_a_trickling_server_is_cut_off_at_the_deadline(trickle):
    held: list[float] = []
    with running(trickle(held, interval=0.05)) as server:
        # each byte comes within the 0.6 s socket timeout: only the 1 s deadline can end this
        elapsed, error = timed(lambda: get(server.url + "/x", deadline_s=1.0, timeout_s=0.6))
        assert isinstance(error, DeadlinePassed)
        assert 0.9 < elapsed < 1.0 + SLACK, elapsed
        time.sleep(0.3)
        assert held and max(held) < 1.0 + SLACK, held  # the connection is closed, not left to the server


def test_a_silent_server_is_cut_off_by_the_socket_timeout_or_the_deadline():
    with running(stall(5)) as server:
        elapsed, error = timed(lambda: get(server.url, deadline_s=0.5, timeout_s=2.0))
    assert isinstance(error, DeadlinePassed)
    assert elapsed < 0.5 + SLACK


def test_a_deadline_already_passed_makes_no_call():
    with running(answer()) as server:
        with pytest.raises(DeadlinePassed):
            fetch(new_session(), server.url, deadline=Deadline.after(-1), timeout_s=1, max_bytes=100)
        assert server.requests == []


def test_a_pooled_connection_is_watched_too():
    """The second call reuses the first one's kept-alive connection; its trickle is cut off all the same."""
    calls = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 - http.server API
            calls.append(self.path)
            if self.path == "/fast":
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
                return
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            try:
                for _ in range(200):
                    self.wfile.write(b"a")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        session = new_session()
        assert fetch(session, base + "/fast", deadline=Deadline.after(2), timeout_s=1, max_bytes=100).body == b"{}"
        elapsed, error = timed(
            lambda: fetch(session, base + "/slow", deadline=Deadline.after(0.8), timeout_s=0.5, max_bytes=100)
        )
        assert isinstance(error, DeadlinePassed) and elapsed < 0.8 + SLACK, elapsed
        assert fetch(session, base + "/fast", deadline=Deadline.after(2), timeout_s=1, max_bytes=100).body == b"{}"
    finally:
        server.shutdown()
        server.server_close()


# --- every network fault is an OutboundError ------------------------------------------------------


@pytest.mark.parametrize(
    "behaviour",
    [reset, truncated, bad_gzip, bad_chunking, garbage_status],
    ids=["reset", "truncated", "bad-gzip", "bad-chunking", "not-http"],
)
def test_network_faults_are_outbound_errors(behaviour):
    with running(behaviour) as server:
        elapsed, error = timed(lambda: get(server.url))
    assert isinstance(error, Unreachable), repr(error)
    assert elapsed < 1.0 + SLACK


@pytest.mark.parametrize(
    "url",
    [
        "http://" + "a" * 64 + ".example/fhir",  # a host label over 63 characters (idna refuses it)
        "http://" + ".".join(["a" * 63] * 5) + "/fhir",  # a host name over 253 characters
        "http://127.0.0.1:1/fhir",  # nothing listens
        "http://[::1/fhir",  # not a URL
    ],
    ids=["long-label", "long-name", "refused", "bad-url"],
)
def test_unreachable_addresses_are_outbound_errors(url):
    with pytest.raises(OutboundError):
        get(url)


def test_a_header_that_cannot_be_sent_is_an_outbound_error():
    with running(answer()) as server:
        with pytest.raises(OutboundError):
            get(server.url, headers={"Authorization": "Bearer \u0436\u0436"})


# --- sizes ----------------------------------------------------------------------------------------


def test_a_body_over_the_cap_is_refused():
    with running(answer(b" " * 5000)) as server:
        with pytest.raises(TooLarge):
            get(server.url, max_bytes=1000)


def test_a_gzip_bomb_is_refused_at_the_cap_of_decoded_bytes():
    with running(gzip_bomb(50)) as server:
        elapsed, error = timed(lambda: get(server.url, max_bytes=2_000_000, deadline_s=5))
    assert isinstance(error, TooLarge), repr(error)
    assert elapsed < 2


def test_a_budget_bounds_several_answers_together():
    budget = ByteBudget(2500)
    with running(answer(b" " * 1000)) as server:
        get(server.url, budget=budget)
        get(server.url, budget=budget)
        with pytest.raises(TooLarge):
            get(server.url, budget=budget)


def test_redirects_are_answers_not_followed():
    with running(answer(b"", "Location: http://127.0.0.1:1/elsewhere", status="302 Found")) as server:
        assert get(server.url).status == 302
        assert len(server.requests) == 1


def test_public_only_refuses_a_loopback_address_before_sending_anything():
    with running(answer()) as server:
        with pytest.raises(NotPublic):
            get(server.url, public_only=True)
        time.sleep(0.1)
        assert server.requests == []


# --- no ambient state ------------------------------------------------------------------------------


@pytest.fixture
def two_servers() -> Iterator[tuple]:
    """Two ports of one host; each answers with a session cookie for the whole host."""
    cookie = "Set-Cookie: SESSION=caller-a; Path=/; Domain=127.0.0.1"
    with running(answer(b'{"keys": []}', cookie)) as first, running(answer(b'{"keys": []}', cookie)) as second:
        yield first, second


def test_a_cookie_set_on_one_call_is_never_sent_on_another(two_servers):
    first, second = two_servers
    session = new_session()  # shared by every caller, as the app's is
    for url in (first.url + "/a", first.url + "/b", second.url + "/c"):
        fetch(session, url, deadline=Deadline.after(2), timeout_s=1, max_bytes=1000, headers={"X-Caller": url})
    assert [r.headers.get("x-caller") for r in first.requests + second.requests] == [
        first.url + "/a",
        first.url + "/b",
        second.url + "/c",
    ]
    assert all("cookie" not in r.headers for r in first.requests + second.requests)
    assert len(session.cookies) == 0


def test_the_jwks_fetcher_shares_the_client_and_sends_no_cookie_a_fhir_call_received(two_servers):
    first, second = two_servers
    session = new_session()
    fetch(session, first.url + "/Patient/p1", deadline=Deadline.after(2), timeout_s=1, max_bytes=1000)
    assert JwksCache(session).key(second.url + "/jwks.json", "k") is None  # fetched; the set is empty
    assert [r.request_line.split()[1] for r in second.requests] == ["/jwks.json"]
    assert "cookie" not in second.requests[0].headers


def test_a_netrc_never_replaces_the_bearer_token_nor_adds_credentials(tmp_path, monkeypatch):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login intruder password secret\ndefault login intruder password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    with running(answer()) as server:
        get(server.url + "/with", headers={"Authorization": "Bearer ehr-token"})
        get(server.url + "/without")
    assert [r.headers.get("authorization") for r in server.requests] == ["Bearer ehr-token", None]


def test_proxy_variables_are_ignored(monkeypatch):
    with running(answer()) as target, running(answer()) as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy.url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        get(target.url + "/Patient/p1")
        time.sleep(0.1)
    assert len(target.requests) == 1
    assert proxy.requests == []


# --- the JWKS fetcher is bounded the same way ------------------------------------------------------


@pytest.mark.parametrize("trickle", [trickle_headers, trickle_body], ids=["headers", "body"])
def test_a_jwks_server_trickling_is_cut_off_at_the_fetch_timeout(trickle):
    held: list[float] = []
    with running(trickle(held, interval=0.05)) as server:
        cache = JwksCache(timeout_s=1.0)
        elapsed, error = timed(lambda: cache.key(server.url + "/jwks.json", "k"))
    assert isinstance(error, JwksUnavailable), repr(error)
    assert elapsed < 1.0 + SLACK, elapsed


def test_a_slow_key_server_does_not_delay_fetches_from_another():
    """A trickling jku and a healthy one, fetched at once: the healthy one answers at its own pace."""
    held: list[float] = []
    outcome: list[BaseException | None] = []
    with running(trickle_headers(held)) as slow, running(answer(b'{"keys": []}')) as healthy:
        cache = JwksCache(timeout_s=1.0)
        slow_call = threading.Thread(target=lambda: outcome.append(timed(lambda: cache.key(slow.url + "/j", "k"))[1]))
        slow_call.start()
        time.sleep(0.1)
        elapsed, error = timed(lambda: cache.key(healthy.url + "/j", "k"))
        slow_call.join(timeout=3)
    assert error is None and elapsed < 0.5, (error, elapsed)
    assert isinstance(outcome[0], JwksUnavailable)


# --- name resolution is inside the deadline ----------------------------------------------------------


def test_a_hanging_resolver_ends_at_the_deadline_and_other_names_resolve_meanwhile(monkeypatch):
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []
    release = threading.Event()

    def resolver(host, *args, **kwargs):  # a DNS server that never answers for one name
        lookups.append(host)
        if host == "hangs.example":
            release.wait(10)
            raise socket.gaierror("no answer")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    results: list[tuple[float, BaseException | None]] = []
    try:
        with running(answer()) as server:
            callers = [
                threading.Thread(
                    target=lambda: results.append(timed(lambda: get("http://hangs.example/fhir", deadline_s=0.5)))
                )
                for _ in range(3)
            ]
            for caller in callers:
                caller.start()
            time.sleep(0.1)
            elapsed, error = timed(lambda: get(f"http://localhost:{server.port}/fhir/Patient/1"))
            assert error is None and elapsed < 0.5, (elapsed, error)
            for caller in callers:
                caller.join(timeout=5)
    finally:
        release.set()
    assert len(results) == 3
    for elapsed, error in results:
        assert isinstance(error, DeadlinePassed) and elapsed < 0.5 + SLACK, (elapsed, error)
    assert lookups.count("hangs.example") == 1  # one lookup in flight per name, however many wait for it


def test_callers_do_not_queue_behind_a_slow_key_set_fetch():
    """One thread fetches from a key server trickling its headers; others naming it answer at once."""
    held: list[float] = []
    with running(trickle_headers(held)) as server:
        cache = JwksCache(timeout_s=1.0, wait_s=0.2)
        url = server.url + "/jwks.json"
        first = threading.Thread(target=lambda: timed(lambda: cache.key(url, "k1")))
        first.start()
        time.sleep(0.1)
        waits = [timed(lambda: cache.key(url, "k1")) for _ in range(3)]
        first.join(timeout=5)
    for elapsed, error in waits:
        assert isinstance(error, JwksUnavailable) and elapsed < 0.2 + SLACK, (elapsed, error)
    assert len(server.requests) == 1


# --- the worker's memory for answers: taken as read, given back when the call ends --------------------


def test_a_call_holding_nothing_waits_for_room_until_another_call_ends():
    pool = WorkerBytes(100)
    first, second = ByteBudget(100, pool), ByteBudget(100, pool)
    first.take(60, Deadline.after(1))
    threading.Timer(0.2, first.close).start()
    elapsed, error = timed(lambda: second.take(60, Deadline.after(2)))
    assert error is None and 0.15 < elapsed < 1.0
    second.close()
    assert pool.free == 100


def test_a_call_already_holding_part_is_refused_at_once_rather_than_wait_for_another():
    """Two calls each holding part of the room would otherwise wait for each other until their deadlines."""
    pool = WorkerBytes(100)
    first, second = ByteBudget(100, pool), ByteBudget(100, pool)
    first.take(60, Deadline.after(5))
    second.take(30, Deadline.after(5))
    elapsed, error = timed(lambda: second.take(20, Deadline.after(5)))
    assert isinstance(error, NoRoom) and elapsed < 0.1
    first.close()
    second.close()
    assert pool.free == 100


def test_a_call_that_finds_no_room_by_its_deadline_is_refused():
    pool = WorkerBytes(100)
    holder = ByteBudget(100, pool)
    holder.take(100, Deadline.after(1))
    elapsed, error = timed(lambda: ByteBudget(100, pool).take(1, Deadline.after(0.3)))
    assert isinstance(error, NoRoom) and 0.2 < elapsed < 0.3 + SLACK


def test_a_read_after_its_call_ended_takes_nothing_from_the_worker():
    pool = WorkerBytes(100)
    budget = ByteBudget(100, pool)
    budget.take(10, Deadline.after(1))
    budget.close()
    with pytest.raises(DeadlinePassed):
        budget.take(10, Deadline.after(1))
    assert pool.free == 100


# --- each upstream's share of the fetch threads -------------------------------------------------------


def test_a_caller_gives_up_on_an_upstream_that_answers_nothing_and_keeps_waiting_on_one_that_answers():
    slots = UpstreamSlots(1, stalled_s=0.3)
    stalled, busy = "http://stalled.example/fhir", "https://busy.example/fhir"
    assert slots.acquire(stalled, Deadline.after(1))  # held, never given back
    elapsed, error = timed(lambda: slots.acquire(stalled, Deadline.after(5)) and None)
    assert error is None and 0.25 < elapsed < 0.3 + SLACK  # stalled: not until the deadline

    stop = threading.Event()

    def steady() -> None:  # a server answering one query every 0.1 s
        while not stop.is_set():
            if slots.acquire(busy, Deadline.after(1)):
                time.sleep(0.1)
                slots.release(busy)
                time.sleep(0.05)

    worker = threading.Thread(target=steady)
    worker.start()
    try:
        time.sleep(0.05)
        assert slots.acquire(busy, Deadline.after(2))  # progress: worth waiting for
        slots.release(busy)
    finally:
        stop.set()
        worker.join(timeout=5)


def test_slots_are_kept_per_scheme_host_and_port():
    slots = UpstreamSlots(1, stalled_s=0.2)
    assert slots.acquire("https://ehr.example/fhir", Deadline.after(1))
    assert slots.acquire("https://ehr.example:8443/fhir", Deadline.after(1))
    assert slots.acquire("http://ehr.example/fhir", Deadline.after(1))
    assert not slots.acquire("https://EHR.example:443/other", Deadline.after(1))  # the first one's share


def test_fetches_cut_off_by_their_deadline_are_no_progress():
    slots = UpstreamSlots(1, stalled_s=0.3)
    url = "http://trickle.example/fhir"
    for _ in range(3):  # each fetch holds its slot until its deadline cuts it, then gives it back
        assert slots.acquire(url, Deadline.after(1))
        threading.Timer(0.05, lambda: slots.release(url, answered=False)).start()
        time.sleep(0.1)
    assert slots.acquire(url, Deadline.after(1))  # a slot is free...
    slots.release(url, answered=False)
    time.sleep(0.3)
    assert slots.acquire(url, Deadline.after(1))  # free slots are still handed out
    elapsed, error = timed(lambda: slots.acquire(url, Deadline.after(5)) and None)
    assert error is None and elapsed < 0.1  # but no one waits for a stalled server's slot
