"""FHIR fetch and JWT rejection metrics, read from a served ``/metrics``.

In-process: an app with metrics on reads a FHIR server on 127.0.0.1 (real sockets) and refuses bad
tokens; its ``/metrics`` then reports each request by resource type and outcome, the pages and
resources read, and each refusal by reason, with no label outside the bounded sets. Under
``sarcoma-cds serve`` with two workers the same counts are summed over both.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from hostile_http import running, stall
from jwt.algorithms import ECAlgorithm
from test_metrics import HOOK_URL, samples, scrape, value
from test_metrics_served import _free_port, _sarcoma_cds

from cds_service import Config, create_app
from cds_service.auth.verify import REJECTION_REASONS
from cds_service.metrics import FETCH_OUTCOMES
from cds_service.protocol.services import SARCOMA_PATIENT_VIEW

REQUESTS = "sarcoma_cds_fhir_request_duration_seconds_count"
PAGES = "sarcoma_cds_fhir_pages_total"
RESOURCES = "sarcoma_cds_fhir_resources_total"
REJECTIONS = "sarcoma_cds_jwt_rejections_total"
SEARCHED = sorted({SARCOMA_PATIENT_VIEW.resource_type(key) for key in SARCOMA_PATIENT_VIEW.prefetch} - {"Patient"})
# queries per resource type of one call without prefetch: its templates', and any supplement beside one
QUERIES = {
    kind: sum(SARCOMA_PATIENT_VIEW.resource_type(key) == kind for key in SARCOMA_PATIENT_VIEW.prefetch)
    + sum(SARCOMA_PATIENT_VIEW.resource_type(key) == kind for key in SARCOMA_PATIENT_VIEW.supplements)
    for kind in SEARCHED
}
AUTH = {"access_token": "tok", "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read", "subject": "cds"}
ISS = "https://ehr.example.org"


class FakeFhir(ThreadingHTTPServer):
    """Patient/p1, two pages of Conditions (2 then 1), and one empty page for every other search."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.base = f"http://127.0.0.1:{self.server_address[1]}/fhir"


class _Handler(BaseHTTPRequestHandler):
    server: FakeFhir

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parts = urlsplit(self.path)
        kind = parts.path.removeprefix("/fhir/").split("/")[0]
        if kind == "Patient":
            body: dict[str, Any] = {"resourceType": "Patient", "id": "p1"}
        else:
            condition = {"resourceType": "Condition", "subject": {"reference": "Patient/p1"}}
            second = parse_qs(parts.query).get("page") == ["2"]
            count = (1 if second else 2) if kind == "Condition" else 0
            body = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": condition}] * count}
            if kind == "Condition" and not second:
                body["link"] = [{"relation": "next", "url": f"{self.server.base}/Condition?page=2"}]
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fhir() -> Iterator[FakeFhir]:
    server = FakeFhir()
    Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def no_prefetch(hook, server: str) -> dict[str, Any]:
    return hook(prefetch=None, fhirServer=server, fhirAuthorization=AUTH)


def assert_fetch_counts(scraped, calls: int) -> None:
    """What ``calls`` hook calls without prefetch read from ``FakeFhir``."""
    assert value(scraped, REQUESTS, resource_type="Patient", outcome="ok") == calls
    assert value(scraped, REQUESTS, resource_type="Condition", outcome="ok") == 2 * calls  # two pages
    for kind in SEARCHED:
        if kind != "Condition":
            assert value(scraped, REQUESTS, resource_type=kind, outcome="ok") == QUERIES[kind] * calls, kind
            assert value(scraped, PAGES, resource_type=kind) == QUERIES[kind] * calls, kind
    assert value(scraped, PAGES, resource_type="Condition") == 2 * calls
    assert value(scraped, PAGES, resource_type="Patient") == 0  # a read, not a search
    assert value(scraped, RESOURCES, resource_type="Patient") == calls
    assert value(scraped, RESOURCES, resource_type="Condition") == 3 * calls


def test_fhir_reads_are_counted_by_resource_type_and_outcome_with_pages_and_resources(tmp_path, hook, fhir):
    client = create_app(Config(feedback_db=tmp_path / "f.db", metrics=True, allowed_fhir_servers=(fhir.base,)))
    client = client.test_client()
    for _ in range(2):
        assert client.post(HOOK_URL, json=no_prefetch(hook, fhir.base)).status_code == 200
    scraped = scrape(client)
    assert_fetch_counts(scraped, 2)
    assert (
        value(
            scraped,
            "sarcoma_cds_fhir_request_duration_seconds_bucket",
            resource_type="Patient",
            outcome="ok",
            le="+Inf",
        )
        == 2
    )


def test_a_server_that_never_answers_counts_timeouts_and_the_query_left_without_a_thread(tmp_path, hook):
    with running(stall(5)) as server:
        config = Config(
            feedback_db=tmp_path / "f.db",
            metrics=True,
            allowed_fhir_servers=(server.url,),
            fhir_deadline_s=1.5,  # every query has its thread well before it, on a loaded machine too
            fhir_timeout_s=3.0,  # longer than the deadline: each read is cut at the deadline
        )
        client = create_app(config).test_client()
        assert client.post(HOOK_URL, json=no_prefetch(hook, server.url)).status_code == 412
        keys = len(SARCOMA_PATIENT_VIEW.prefetch) + len(SARCOMA_PATIENT_VIEW.supplements)
        share = config.fhir_threads_per_server
        expected = {**dict.fromkeys(FETCH_OUTCOMES, 0), "timeout": share, "busy": keys - share}
        waited = time.monotonic() + 2  # the fetch threads count their timeouts as they end, just after the 412
        while (found := outcomes(scrape(client))) != expected and time.monotonic() < waited:
            time.sleep(0.05)
    assert found == expected


def outcomes(scraped) -> dict[str, float]:
    """Requests by outcome, all resource types together."""
    return {
        outcome: sum(v for (name, labels), v in scraped.items() if name == REQUESTS and ("outcome", outcome) in labels)
        for outcome in FETCH_OUTCOMES
    }


# --- JWT rejections ------------------------------------------------------------------------------


def forged(header: dict[str, Any], payload: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(payload)}.c2ln"


@pytest.fixture(scope="module")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def issuers_file(folder, key: ec.EllipticCurvePrivateKey):
    path = folder / "issuers.json"
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1"}
    path.write_text(json.dumps([{"iss": ISS, "jwks": {"keys": [jwk]}}]))
    return path


def token(key: ec.EllipticCurvePrivateKey, audience: str) -> str:
    now = int(time.time())
    claims = {"iss": ISS, "aud": audience, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, key, algorithm="ES384", headers={"kid": "k1", "typ": "JWT"})


BAD_TOKENS = {
    "malformed token": ["", "a.b.c"],
    "untrusted iss": [forged({"alg": "ES384", "typ": "JWT", "kid": "k1"}, {"iss": "https://evil.example"})],
    "alg not allowed": [forged({"alg": "none", "typ": "JWT", "kid": "k1"}, {"iss": ISS})],
    "unknown kid": [forged({"alg": "ES384", "typ": "JWT", "kid": "k9"}, {"iss": ISS})],
}


def test_jwt_rejections_are_counted_by_reason_from_a_bounded_set(tmp_path, hook, signing_key):
    config = Config(
        feedback_db=tmp_path / "f.db",
        metrics=True,
        auth_required=True,
        trusted_issuers_file=issuers_file(tmp_path, signing_key),
        public_base_url="https://cds.example.org",
    )
    client = create_app(config).test_client()
    for bad in [t for tokens in BAD_TOKENS.values() for t in tokens]:
        assert client.post(HOOK_URL, json=hook(), headers={"Authorization": f"Bearer {bad}"}).status_code == 401
    good = token(signing_key, "https://cds.example.org" + HOOK_URL)
    assert client.post(HOOK_URL, json=hook(), headers={"Authorization": f"Bearer {good}"}).status_code == 200
    scraped = scrape(client)
    for reason, tokens in BAD_TOKENS.items():
        assert value(scraped, REJECTIONS, reason=reason) == len(tokens), reason
    reasons = {dict(labels)["reason"] for (name, labels) in scraped if name == REJECTIONS}
    assert reasons == set(BAD_TOKENS) and reasons <= REJECTION_REASONS | {"other"}


# --- the same under gunicorn, summed over two workers ------------------------------------------------


def test_fetch_and_rejection_counts_are_summed_over_two_gunicorn_workers(tmp_path, hook, fhir, signing_key):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    (tmp_path / "tmp").mkdir()
    env.update(
        CDS_METRICS="true",
        CDS_AUTH_REQUIRED="true",
        CDS_TRUSTED_ISSUERS_FILE=str(issuers_file(tmp_path, signing_key)),
        CDS_PUBLIC_BASE_URL=base,
        CDS_ALLOWED_FHIR_SERVERS=fhir.base,
        CDS_FEEDBACK_DB=str(tmp_path / "f.db"),
        TMPDIR=str(tmp_path / "tmp"),
    )
    output = tmp_path / "serve.log"
    argv = [*_sarcoma_cds(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    with output.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _answers(base):
            assert process.poll() is None and time.monotonic() < deadline, output.read_text()[-3000:]
            time.sleep(0.2)
        calls = 6
        for _ in range(calls):  # a new connection each: gunicorn hands them to either worker
            headers = {"Authorization": f"Bearer {token(signing_key, base + HOOK_URL)}", "Connection": "close"}
            response = requests.post(base + HOOK_URL, json=no_prefetch(hook, fhir.base), headers=headers, timeout=30)
            assert response.status_code == 200, response.text
            bad = {"Authorization": "Bearer a.b.c", "Connection": "close"}
            assert requests.post(base + HOOK_URL, json=hook(), headers=bad, timeout=30).status_code == 401
        scraped = samples(requests.get(base + "/metrics", timeout=10).text)
        assert_fetch_counts(scraped, calls)
        assert value(scraped, REJECTIONS, reason="malformed token") == calls
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the session started for serve: the arbiter and its workers
        process.wait(timeout=30)


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False
