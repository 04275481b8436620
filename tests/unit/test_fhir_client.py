"""FHIR fallback faults: each ends within the deadline with a 412 naming what failed, never a 5xx.

Status-level faults are simulated with ``responses``; network faults (trickled headers, resets,
truncation, bad gzip or chunking), cookies, ``~/.netrc`` and proxy variables with real servers on
127.0.0.1 (``hostile_http``).
"""

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest
import requests
import responses
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

from cds_service import Config, create_app
from cds_service.outbound import ByteBudget, Deadline
from cds_service.protocol.services import prefetch_templates, supplement_templates

HOOK_URL = "/cds-services/sarcoma-patient-view"
FHIR = "https://ehr.example/fhir"
AUTH = {"access_token": "tok", "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read", "subject": "cds"}
ANY = re.compile(re.escape(FHIR) + r"/.*")
SLACK = 0.5  # seconds past the FHIR deadline a hook call may take (cut-off, 412 and its log line)
# a server's share of fetch threads that lets every query of a call run at once
ALL_QUERIES = len(prefetch_templates()) + len(supplement_templates())


@pytest.fixture
def client(tmp_path):
    return app_for(tmp_path, FHIR).test_client()


def app_for(tmp_path, *servers, **settings):
    """The app, allowed to read ``servers`` (every fhirServer is refused by default)."""
    return create_app(Config(feedback_db=tmp_path / "f.db", allowed_fhir_servers=servers, **settings))


def no_prefetch(hook, server=FHIR, auth=AUTH):
    return hook(prefetch=None, fhirServer=server, fhirAuthorization=auth)


def assert_412_within(client, body, seconds, *words):
    started = time.monotonic()
    response = client.post(HOOK_URL, json=body)
    elapsed = time.monotonic() - started
    assert response.status_code == 412, response.get_json()
    text = response.get_json()["issue"][0]["diagnostics"]
    for word in words:
        assert word in text
    assert elapsed < seconds, elapsed
    return text


@responses.activate
def test_timeout_gives_412(client, hook):
    responses.get(ANY, body=requests.exceptions.ReadTimeout())
    assert_412_within(client, no_prefetch(hook), 3, "did not answer in time")


@responses.activate
def test_server_error_gives_412(client, hook):
    responses.get(ANY, status=500, json={"resourceType": "OperationOutcome"})
    assert_412_within(client, no_prefetch(hook), 3, "HTTP 500", "observations")


@responses.activate
def test_rejected_token_gives_412(client, hook):
    responses.get(ANY, status=401)
    assert_412_within(client, no_prefetch(hook), 3, "refused the access token")


@responses.activate
def test_malformed_json_gives_412(client, hook):
    responses.get(ANY, body="{{{ not json", content_type="application/fhir+json")
    assert_412_within(client, no_prefetch(hook), 3, "malformed JSON")


@responses.activate
def test_endless_next_links_stop_at_the_page_cap(client, hook):
    def endless(request):
        n = int(request.params.get("page", 0)) + 1
        return (
            200,
            {},
            '{"resourceType": "Bundle", "type": "searchset", '
            f'"link": [{{"relation": "next", "url": "{FHIR}/Condition?page={n}"}}]}}',
        )

    responses.add_callback(responses.GET, ANY, callback=endless)
    assert_412_within(client, no_prefetch(hook), 3, "pages")
    assert len(responses.calls) <= ALL_QUERIES * Config().fhir_max_pages  # each query stops at the cap


@responses.activate
def test_next_link_to_another_host_is_not_followed(client, hook):
    responses.get(
        ANY,
        json={
            "resourceType": "Bundle",
            "type": "searchset",
            "link": [{"relation": "next", "url": "https://evil.example/x"}],
        },
    )
    assert_412_within(client, no_prefetch(hook), 3, "outside the FHIR server")
    assert not any("evil" in call.request.url for call in responses.calls)


@responses.activate
def test_redirects_are_not_followed(client, hook):
    responses.get(ANY, status=302, headers={"Location": "https://evil.example/"})
    assert_412_within(client, no_prefetch(hook), 3, "HTTP 302")
    assert not any("evil" in call.request.url for call in responses.calls)


@responses.activate
def test_all_missing_queries_run_and_the_fetch_is_complete(client, hook):
    responses.get(re.compile(re.escape(FHIR) + r"/Patient/p1"), json={"resourceType": "Patient", "id": "p1"})
    responses.get(re.compile(re.escape(FHIR) + r"/\w+\?.*"), json={"resourceType": "Bundle", "type": "searchset"})
    assert client.post(HOOK_URL, json=no_prefetch(hook)).status_code == 200
    paths = sorted(call.request.path_url.split("?")[0] for call in responses.calls)
    assert paths == sorted(
        [
            "/fhir/Patient/p1",
            "/fhir/Condition",
            "/fhir/Observation",
            "/fhir/Observation",  # the mCODE profiles a code search cannot find
            "/fhir/Observation",  # assessments (survey category): a performance status under a local code
            "/fhir/MedicationStatement",
            "/fhir/MedicationRequest",
            "/fhir/MedicationAdministration",
            "/fhir/MedicationDispense",
            "/fhir/Procedure",
            "/fhir/DiagnosticReport",
        ]
    )
    profiled = [c.request.url for c in responses.calls if "_profile=" in c.request.url]
    assert len(profiled) == 1 and "mcode-ecog-performance-status" in unquote(profiled[0])


class _Slow(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server API
        time.sleep(3)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    server.shutdown()
    server.server_close()


def test_a_real_slow_server_hits_the_overall_deadline(tmp_path, hook, slow_server):
    app = app_for(tmp_path, slow_server, fhir_deadline_s=0.5, fhir_timeout_s=5)
    assert_412_within(app.test_client(), no_prefetch(hook, slow_server), 1.5, "did not answer in time")


class _Trickle(BaseHTTPRequestHandler):
    """Promises a large body, then sends one byte every half second; records how much it sent."""

    sent: list[int] = []
    opened: list[int] = []

    def do_GET(self):  # noqa: N802 - http.server API
        _Trickle.opened.append(1)
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        written = 0
        try:
            for _ in range(12):
                self.wfile.write(b" ")
                self.wfile.flush()
                written += 1
                time.sleep(0.5)
        except OSError:
            pass  # the client hung up
        _Trickle.sent.append(written)

    def log_message(self, *args):
        pass


def test_a_trickling_server_is_hung_up_on_at_the_deadline(tmp_path, hook):
    _Trickle.sent, _Trickle.opened = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/fhir"
        app = app_for(tmp_path, base, fhir_deadline_s=1.0, fhir_timeout_s=2, fhir_threads_per_server=ALL_QUERIES)
        assert_412_within(app.test_client(), no_prefetch(hook, base), 2.0, "did not answer in time")
        # A fetch thread still reading would keep its connection for the full 6 s; a hung-up one
        # ends within a write or two. Which queries opened before the deadline depends on the machine.
        ends = time.monotonic() + 3.5
        while len(_Trickle.sent) < len(_Trickle.opened) and time.monotonic() < ends:
            time.sleep(0.1)
        assert _Trickle.opened and len(_Trickle.sent) == len(_Trickle.opened), (_Trickle.opened, _Trickle.sent)
        assert max(_Trickle.sent) < 12, _Trickle.sent
    finally:
        server.shutdown()
        server.server_close()


# --- real servers on 127.0.0.1: the deadline covers headers, every fault is a 412 ----------------


def test_a_server_trickling_its_headers_is_hung_up_on_at_the_deadline(tmp_path, hook):
    held: list[float] = []
    with running(trickle_headers(held, interval=0.05)) as server:
        app = app_for(
            tmp_path, server.url, fhir_deadline_s=1.0, fhir_timeout_s=0.8, fhir_threads_per_server=ALL_QUERIES
        )
        assert_412_within(app.test_client(), no_prefetch(hook, server.url), 1.0 + SLACK, "did not answer in time")
        time.sleep(0.5)
        # every query's connection was closed at the deadline: no fetch thread is left holding one
        assert len(held) == ALL_QUERIES and max(held) < 1.0 + SLACK, held


def test_fetch_threads_are_free_again_for_the_next_call_after_a_trickle(tmp_path, hook):
    """Calls naming a trickling server must not leave the fetch pool busy for healthy calls after them."""
    held: list[float] = []
    with running(trickle_headers(held)) as slow, running(answer()) as healthy:
        app = app_for(tmp_path, slow.url, healthy.url, fhir_deadline_s=0.8, fhir_timeout_s=0.5)
        client = app.test_client()
        for _ in range(3):  # 3 x 7 queries: more than the 16 fetch threads
            assert client.post(HOOK_URL, json=no_prefetch(hook, slow.url)).status_code == 412
        body = hook(fhirServer=healthy.url, fhirAuthorization=AUTH)
        del body["prefetch"]["patient"]
        started = time.monotonic()
        assert client.post(HOOK_URL, json=body).status_code == 200
        assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(
    ("behaviour", "words"),
    [
        (reset, "could not be reached"),
        (truncated, "could not be reached"),
        (bad_gzip, "could not be reached"),
        (bad_chunking, "could not be reached"),
        (garbage_status, "could not be reached"),
        (stall(10), "did not answer in time"),
        (trickle_body([]), "did not answer in time"),
        (gzip_bomb(50), "too large"),
        (answer(b"[" * 100_000 + b"]" * 100_000), "malformed JSON"),
        (answer(b'{"resourceType": "Patient", "id": "p1", "x": ' + b'{"a":' * 5000 + b"1" + b"}" * 5001), "malformed"),
        (answer(b'{"resourceType": "Patient", "id": "p1", "x": NaN}'), "malformed JSON"),
    ],
    ids=[
        "reset",
        "truncated",
        "bad-gzip",
        "bad-chunking",
        "not-http",
        "stall",
        "trickled-body",
        "gzip-bomb",
        "deep-array",
        "deep-object-in-resource",
        "nan",
    ],
)
def test_every_network_fault_is_a_412_naming_it(tmp_path, hook, behaviour, words):
    with running(behaviour) as server:
        app = app_for(tmp_path, server.url, fhir_deadline_s=1.0, fhir_timeout_s=0.8, fhir_max_bytes=5_000_000)
        body = hook(fhirServer=server.url)
        del body["prefetch"]["patient"]
        assert_412_within(app.test_client(), body, 1.0 + SLACK + 1.0, words)


def test_an_access_token_that_cannot_be_a_header_is_a_412_and_nothing_is_sent(tmp_path, hook):
    with running(answer()) as server:
        app = app_for(tmp_path, server.url)
        auth = {**AUTH, "access_token": "t\u00f6k\u0436en"}
        body = hook(fhirServer=server.url, fhirAuthorization=auth)
        del body["prefetch"]["patient"]
        assert_412_within(app.test_client(), body, 2, "access token cannot be sent")
        assert server.requests == []


def test_the_byte_cap_covers_all_queries_and_pages_of_a_call(tmp_path, hook):
    """Each answer is under the cap; together they are over it."""
    page = b'{"resourceType": "Bundle", "type": "searchset", "entry": [], "x": "' + b"x" * 3000 + b'"}'
    with running(answer(page)) as server:
        app = app_for(tmp_path, server.url, fhir_max_bytes=10_000)
        assert_412_within(app.test_client(), no_prefetch(hook, server.url), 3, "too large", "10000 bytes")


# --- no ambient state: cookies, netrc, proxies --------------------------------------------------


def test_a_fhir_session_cookie_is_never_sent_on_another_callers_call(tmp_path, hook):
    cookie = "Set-Cookie: JSESSIONID=user-a; Path=/; Domain=127.0.0.1"
    with running(answer(b'{"resourceType": "Patient", "id": "p1"}', cookie)) as server:
        client = app_for(tmp_path, server.url).test_client()
        for token in ("token-of-user-a", "token-of-user-b"):
            body = hook(fhirServer=server.url, fhirAuthorization={**AUTH, "access_token": token})
            del body["prefetch"]["patient"]
            assert client.post(HOOK_URL, json=body).status_code == 200
    assert [r.headers.get("authorization") for r in server.requests] == [
        "Bearer token-of-user-a",
        "Bearer token-of-user-b",
    ]
    assert all("cookie" not in r.headers for r in server.requests)


def test_a_netrc_on_the_host_never_replaces_the_ehrs_bearer_token(tmp_path, hook, monkeypatch):
    netrc = tmp_path / ".netrc"
    netrc.write_text("default login intruder password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    with running(answer()) as server:
        client = app_for(tmp_path, server.url).test_client()
        for auth in (AUTH, None):  # with the EHR's token, and for an open server
            body = hook(fhirServer=server.url, fhirAuthorization=auth)
            del body["prefetch"]["patient"]
            assert client.post(HOOK_URL, json=body).status_code == 200
    assert [r.headers.get("authorization") for r in server.requests] == ["Bearer tok", None]


def test_proxy_variables_are_not_honoured(tmp_path, hook, monkeypatch):
    with running(answer()) as server, running(answer()) as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy.url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        body = hook(fhirServer=server.url, fhirAuthorization=AUTH)
        del body["prefetch"]["patient"]
        assert app_for(tmp_path, server.url).test_client().post(HOOK_URL, json=body).status_code == 200
    assert len(server.requests) == 1 and proxy.requests == []


# --- a slow server holds its own share of the fetch threads, never the others' -----------------------


def test_a_slow_server_holds_only_its_share_and_healthy_calls_run_meanwhile(tmp_path, hook):
    held: list[float] = []
    with running(trickle_headers(held)) as slow, running(answer()) as healthy:
        app = app_for(
            tmp_path, slow.url, healthy.url, fhir_deadline_s=1.5, fhir_timeout_s=1.0, fhir_threads_per_server=2
        )
        outcomes: list[dict] = []

        def call_slow() -> None:
            response = app.test_client().post(HOOK_URL, json=no_prefetch(hook, slow.url))
            outcomes.append({"status": response.status_code, **response.get_json()})

        callers = [threading.Thread(target=call_slow) for _ in range(3)]  # 3 x 7 queries: all 16 threads and more
        for caller in callers:
            caller.start()
        time.sleep(0.3)  # the slow server's share is taken, the other queries wait for it
        body = hook(fhirServer=healthy.url, fhirAuthorization=AUTH)
        del body["prefetch"]["patient"]
        started = time.monotonic()
        response = app.test_client().post(HOOK_URL, json=body)
        assert response.status_code == 200 and time.monotonic() - started < 0.5
        for caller in callers:
            caller.join(timeout=5)
        assert len(slow.requests) <= 2 * 2  # never more than its share at once (2), across the 1.5 s
        assert [outcome["status"] for outcome in outcomes] == [412, 412, 412]
        texts = [outcome["issue"][0]["diagnostics"] for outcome in outcomes]
        assert all(outcome["resourceType"] == "OperationOutcome" for outcome in outcomes)
        assert any(
            "was busy: its share of the service's fetch threads stayed taken, none freed in time" in t for t in texts
        )


def test_a_call_gives_up_when_its_servers_share_stays_taken_and_frees_its_thread(tmp_path, hook):
    """The one query that got the share's only slot trickles; the next waits while the server answers
    nothing for half a second, then the call ends at once with a 412 naming the busy server."""
    held: list[float] = []
    with running(trickle_headers(held)) as slow:
        app = app_for(tmp_path, slow.url, fhir_deadline_s=2.0, fhir_timeout_s=1.5, fhir_threads_per_server=1)
        text = assert_412_within(app.test_client(), no_prefetch(hook, slow.url), 0.5 + SLACK, "was busy")
        assert text.count("was busy") == ALL_QUERIES - 1
        assert "had not answered when another query found it busy" in text  # the one that had the slot
        assert len(slow.requests) == 1


# --- the worker's memory for FHIR answers -----------------------------------------------------------------


def test_the_bytes_a_call_read_are_given_back_to_the_worker_when_it_ends(tmp_path, hook):
    body = b'{"resourceType": "Patient", "id": "p1", "note": "' + b"x" * 50_000 + b'"}'
    with running(answer(body)) as server:
        app = app_for(tmp_path, server.url, fhir_bytes_per_worker=200_000, fhir_max_bytes=200_000)
        pool = app.extensions["sarcoma"].answer_bytes
        no_patient = hook(fhirServer=server.url, fhirAuthorization=AUTH)
        del no_patient["prefetch"]["patient"]
        for _ in range(5):  # five calls of 50 kB each through a worker that can hold 200 kB at once
            assert app.test_client().post(HOOK_URL, json=no_patient).status_code == 200
        assert pool.free == pool.limit


def test_a_call_finding_the_workers_memory_for_answers_taken_gets_a_412_saying_so(tmp_path, hook):
    with running(answer()) as server:
        app = app_for(tmp_path, server.url, fhir_deadline_s=0.5)
        pool = app.extensions["sarcoma"].answer_bytes
        other_call = ByteBudget(pool.limit, pool)
        other_call.take(pool.limit, Deadline.after(1))  # another call holds all of it
        no_patient = hook(fhirServer=server.url, fhirAuthorization=AUTH)
        del no_patient["prefetch"]["patient"]
        assert_412_within(app.test_client(), no_patient, 0.5 + SLACK, "memory for FHIR answers stayed in use")
        other_call.close()
        assert app.test_client().post(HOOK_URL, json=no_patient).status_code == 200
