"""FHIR fallback faults, simulated with ``responses``: each ends within the deadline with a 412."""

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import responses

from cds_service import Config, create_app
from cds_service.protocol.services import prefetch_templates

HOOK_URL = "/cds-services/sarcoma-patient-view"
FHIR = "https://ehr.example/fhir"
AUTH = {"access_token": "tok", "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read", "subject": "cds"}
ANY = re.compile(re.escape(FHIR) + r"/.*")


def no_prefetch(hook, server=FHIR):
    return hook(prefetch=None, fhirServer=server, fhirAuthorization=AUTH)


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
    assert len(responses.calls) < 200


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
            "/fhir/MedicationStatement",
            "/fhir/MedicationRequest",
            "/fhir/MedicationAdministration",
            "/fhir/Procedure",
        ]
    )


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
    app = create_app(Config(feedback_db=tmp_path / "f.db", fhir_deadline_s=0.5, fhir_timeout_s=5))
    assert_412_within(app.test_client(), no_prefetch(hook, slow_server), 1.5, "did not answer in time")


class _Trickle(BaseHTTPRequestHandler):
    """Promises a large body, then sends one byte every half second; records how much it sent."""

    sent: list[int] = []

    def do_GET(self):  # noqa: N802 - http.server API
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
    _Trickle.sent = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app = create_app(Config(feedback_db=tmp_path / "f.db", fhir_deadline_s=1.0, fhir_timeout_s=2))
        base = f"http://127.0.0.1:{server.server_address[1]}/fhir"
        assert_412_within(app.test_client(), no_prefetch(hook, base), 2.0, "did not answer in time")
        time.sleep(2.5)  # a fetch thread still reading would keep each connection for the full 6 s
        assert len(_Trickle.sent) == len(prefetch_templates()) and max(_Trickle.sent) < 12, _Trickle.sent
    finally:
        server.shutdown()
        server.server_close()
