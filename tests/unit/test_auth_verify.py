"""Key selection (issue 13): configured keys first, an allow-listed ``jku`` only when they lack the ``kid``.

Every token here is shaped exactly like the reference CDS Hooks sandbox's: ES384, header ``typ``,
``kid`` and ``jku`` to its well-known JWKS; payload ``iss``, ``aud`` (service URL + endpoint path),
``exp``, ``iat``, ``jti`` and no ``sub``. Calls go through the real Flask app.

Builders: ``sandbox_token(key, path)`` signs such a token for an endpoint; ``junk_token(i)`` signs one
with a made-up ``kid`` and a made-up ``jku`` under the sandbox's allowed prefix. ``key_server`` is a
real HTTP server on 127.0.0.1 serving a ``jwks_uri``; ``outbound`` (``responses``) serves the
sandbox's ``jku`` and answers 404 for every made-up one, counting each.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from test_auth_guard import BASE, FEEDBACK_PATH, HOOK_PATH, SANDBOX_ISS, SANDBOX_JKU, assert_refused, bearer, public_jwk

from cds_service import Config, create_app

SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
SANDBOX_PREFIX = "https://sandbox.cds-hooks.org/.well-known/"
MADE_UP_JKU = re.compile(re.escape(SANDBOX_PREFIX) + r"junk-.*")
DISCOVERY_PATH = "/cds-services"
ENDPOINTS = (DISCOVERY_PATH, HOOK_PATH, FEEDBACK_PATH)
FEEDBACK = {"feedback": [{"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-11-24T10:00:00Z"}]}


@pytest.fixture(scope="module")
def sandbox_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def attacker_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def sandbox_jwks(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    return {"keys": [public_jwk(key, SANDBOX_KID)]}


def sandbox_token(key: Any, path: str, *, kid: str = SANDBOX_KID, jku: str = SANDBOX_JKU) -> str:
    """As the sandbox signs it: header alg/typ/kid/jku; payload iss/aud/exp/iat/jti, no sub."""
    now = int(time.time())
    payload = {"iss": SANDBOX_ISS, "aud": BASE + path, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    return jwt.encode(payload, key, algorithm="ES384", headers={"typ": "JWT", "kid": kid, "jku": jku})


def junk_token(key: Any, i: int) -> str:
    return sandbox_token(key, HOOK_PATH, kid=f"junk-kid-{i}", jku=f"{SANDBOX_PREFIX}junk-{i}/jwks.json")


class KeyServer:
    """A JWKS endpoint on a real loopback socket; ``hits`` lists the paths requested."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.hits.append(self.path)
                document = server.documents.get(self.path)
                body = json.dumps(document).encode()
                self.send_response(200 if document is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
def key_server(sandbox_key) -> Iterator[KeyServer]:
    server = KeyServer()
    server.documents["/.well-known/jwks.json"] = sandbox_jwks(sandbox_key)
    thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def outbound(sandbox_key, key_server) -> Iterator[responses.RequestsMock]:
    """Every outbound HTTPS call: the sandbox's jku, made-up jku URLs (404); the loopback passes through."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(key_server.base)
        mock.get(SANDBOX_JKU, json=sandbox_jwks(sandbox_key))
        mock.get(MADE_UP_JKU, status=404)
        yield mock


def fetched(outbound: responses.RequestsMock, url: str | re.Pattern[str] = SANDBOX_JKU) -> int:
    """How many times ``url`` (or a URL matching the pattern) was fetched from outside the loopback."""
    urls = [call.request.url for call in outbound.calls]
    return sum(1 for u in urls if (url.fullmatch(u) if isinstance(url, re.Pattern) else u == url))


def issuer_entry(source: str, key_server: KeyServer, sandbox_key: Any) -> dict[str, Any]:
    """The sandbox as a trusted issuer, its keys configured one way."""
    if source == "inline":
        return {"iss": SANDBOX_ISS, "jwks": sandbox_jwks(sandbox_key)}
    if source == "jwks_uri":
        return {"iss": SANDBOX_ISS, "jwks_uri": key_server.url("/.well-known/jwks.json")}
    return {"iss": SANDBOX_ISS, "jku": [SANDBOX_PREFIX]}


def app_client(tmp_path: Path, *entries: dict[str, Any]) -> FlaskClient:
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps(list(entries)))
    config = Config(
        feedback_db=tmp_path / "shared.sqlite3",
        auth_required=True,
        trusted_issuers_file=issuers,
        public_base_url=BASE,
    )
    return create_app(config).test_client()


def call(client: FlaskClient, path: str, token: str, hook: Any) -> int:
    """The endpoint's status for a well-formed call carrying ``token``."""
    if path == DISCOVERY_PATH:
        return client.get(path, headers=bearer(token)).status_code
    body = FEEDBACK if path == FEEDBACK_PATH else hook()
    return client.post(path, json=body, headers=bearer(token)).status_code


def discovery_hook_and_feedback(client: FlaskClient, key: Any, hook: Any, **header: str) -> list[int]:
    return [call(client, path, sandbox_token(key, path, **header), hook) for path in ENDPOINTS]


def rejection_reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    prefix = "jwt rejected: "
    return [r.getMessage()[len(prefix) :] for r in caplog.records if r.getMessage().startswith(prefix)]


# --- each key source accepts the sandbox's tokens ---------------------------------------------


def test_inline_keys_accept_sandbox_tokens_and_never_fetch_the_jku(tmp_path, hook, sandbox_key, key_server, outbound):
    client = app_client(tmp_path, issuer_entry("inline", key_server, sandbox_key))
    assert discovery_hook_and_feedback(client, sandbox_key, hook) == [200, 200, 200]
    assert len(outbound.calls) == 0 and key_server.hits == []


def test_jwks_uri_accepts_sandbox_tokens_with_one_fetch_and_never_the_jku(
    tmp_path, hook, sandbox_key, key_server, outbound
):
    client = app_client(tmp_path, issuer_entry("jwks_uri", key_server, sandbox_key))
    assert discovery_hook_and_feedback(client, sandbox_key, hook) == [200, 200, 200]
    assert key_server.hits == ["/.well-known/jwks.json"]
    assert fetched(outbound) == 0


def test_allow_listed_jku_accepts_sandbox_tokens_with_one_fetch(tmp_path, hook, sandbox_key, key_server, outbound):
    client = app_client(tmp_path, issuer_entry("jku", key_server, sandbox_key))
    assert discovery_hook_and_feedback(client, sandbox_key, hook) == [200, 200, 200]
    assert fetched(outbound) == 1


def test_configured_keys_win_over_an_allow_listed_jku(tmp_path, hook, sandbox_key, key_server, outbound):
    entry = {**issuer_entry("inline", key_server, sandbox_key), "jku": [SANDBOX_PREFIX]}
    client = app_client(tmp_path, entry)
    assert discovery_hook_and_feedback(client, sandbox_key, hook) == [200, 200, 200]
    assert len(outbound.calls) == 0


def test_allow_listed_jku_is_used_when_the_configured_keys_lack_the_kid(
    tmp_path, hook, sandbox_key, key_server, outbound
):
    """A client that rotated its key before the operator updated the file keeps working via its jku."""
    old = public_jwk(ec.generate_private_key(ec.SECP384R1()), "retired-key")
    client = app_client(tmp_path, {"iss": SANDBOX_ISS, "jwks": {"keys": [old]}, "jku": [SANDBOX_PREFIX]})
    assert discovery_hook_and_feedback(client, sandbox_key, hook) == [200, 200, 200]
    assert fetched(outbound) == 1


def test_a_jku_equal_to_the_jwks_uri_is_that_url_fetched_once(tmp_path, hook, sandbox_key, key_server, caplog):
    jwks_uri = key_server.url("/.well-known/jwks.json")
    client = app_client(tmp_path, {"iss": SANDBOX_ISS, "jwks_uri": jwks_uri, "jku": [key_server.url("/.well-known/")]})
    assert discovery_hook_and_feedback(client, sandbox_key, hook, jku=jwks_uri) == [200, 200, 200]
    with caplog.at_level(logging.WARNING, logger="cds_service.auth"):
        unknown = sandbox_token(sandbox_key, HOOK_PATH, kid="rotated-away", jku=jwks_uri)
        assert_refused(client.post(HOOK_PATH, json=hook(), headers=bearer(unknown)))
    assert rejection_reasons(caplog) == ["unknown kid"]
    assert key_server.hits == ["/.well-known/jwks.json"]


def test_a_jku_equal_to_the_jwks_uri_needs_no_jku_prefix(tmp_path, hook, sandbox_key, key_server):
    jwks_uri = key_server.url("/.well-known/jwks.json")
    client = app_client(tmp_path, {"iss": SANDBOX_ISS, "jwks_uri": jwks_uri})
    token = sandbox_token(sandbox_key, HOOK_PATH, jku=jwks_uri)
    assert client.post(HOOK_PATH, json=hook(), headers=bearer(token)).status_code == 200


# --- refused without a fetch -------------------------------------------------------------------


@pytest.mark.parametrize("source", ["inline", "jwks_uri"])
def test_unknown_kid_with_a_jku_not_allow_listed_is_refused_without_fetching_it(
    tmp_path, hook, sandbox_key, key_server, outbound, source, caplog
):
    client = app_client(tmp_path, issuer_entry(source, key_server, sandbox_key))
    assert client.post(HOOK_PATH, json=hook(), headers=bearer(sandbox_token(sandbox_key, HOOK_PATH))).status_code == 200
    hits_before = list(key_server.hits)
    with caplog.at_level(logging.WARNING, logger="cds_service.auth"):
        token = sandbox_token(sandbox_key, HOOK_PATH, kid="not-configured")
        assert_refused(client.post(HOOK_PATH, json=hook(), headers=bearer(token)))
    assert rejection_reasons(caplog) == ["jku not allowed"]
    assert len(outbound.calls) == 0
    assert key_server.hits == hits_before


def test_configured_kid_with_a_foreign_signature_is_refused_without_fetching_its_jku(
    tmp_path, hook, sandbox_key, attacker_key, key_server, outbound, caplog
):
    entry = {**issuer_entry("inline", key_server, sandbox_key), "jku": [SANDBOX_PREFIX]}
    client = app_client(tmp_path, entry)
    with caplog.at_level(logging.WARNING, logger="cds_service.auth"):
        token = sandbox_token(attacker_key, HOOK_PATH, jku=SANDBOX_PREFIX + "junk-1/jwks.json")
        assert_refused(client.post(HOOK_PATH, json=hook(), headers=bearer(token)))
    assert rejection_reasons(caplog) == ["bad signature"]
    assert len(outbound.calls) == 0


def test_unreachable_jwks_uri_without_a_usable_jku_is_refused(tmp_path, hook, sandbox_key, key_server, caplog):
    client = app_client(tmp_path, {"iss": SANDBOX_ISS, "jwks_uri": key_server.url("/gone.json")})
    with caplog.at_level(logging.WARNING, logger="cds_service.auth"):
        token = sandbox_token(sandbox_key, HOOK_PATH, jku=key_server.url("/gone.json"))
        assert_refused(client.post(HOOK_PATH, json=hook(), headers=bearer(token)))
    assert rejection_reasons(caplog) == ["key set unavailable"]


# --- junk tokens cannot lock a trusted issuer out (issue 17) ----------------------------------


@pytest.mark.parametrize("source", ["inline", "jwks_uri", "jku"])
def test_two_hundred_junk_jku_tokens_do_not_lock_out_the_trusted_issuer(
    tmp_path, hook, sandbox_key, attacker_key, key_server, outbound, source
):
    """Made-up kid and jku under the allowed prefix, 200 times: the sandbox's own tokens still get 200."""
    entry = {**issuer_entry(source, key_server, sandbox_key), "jku": [SANDBOX_PREFIX]}
    client = app_client(tmp_path, entry)
    assert discovery_hook_and_feedback(client, sandbox_key, hook) == [200, 200, 200]
    for i in range(200):
        assert_refused(client.post(HOOK_PATH, json=hook(), headers=bearer(junk_token(attacker_key, i))))
    assert discovery_hook_and_feedback(client, sandbox_key, hook) == [200, 200, 200]
    assert fetched(outbound, MADE_UP_JKU) <= 30  # the issuer's budget for unknown key URLs per minute
    assert fetched(outbound) == (1 if source == "jku" else 0)
    assert len(key_server.hits) == (1 if source == "jwks_uri" else 0)


def test_junk_tokens_before_the_first_real_call_do_not_lock_out_a_jwks_uri_issuer(
    tmp_path, hook, sandbox_key, attacker_key, key_server, outbound
):
    entry = {**issuer_entry("jwks_uri", key_server, sandbox_key), "jku": [SANDBOX_PREFIX]}
    client = app_client(tmp_path, entry)
    for i in range(200):
        assert_refused(client.post(HOOK_PATH, json=hook(), headers=bearer(junk_token(attacker_key, i))))
    assert discovery_hook_and_feedback(client, sandbox_key, hook) == [200, 200, 200]
    assert key_server.hits == ["/.well-known/jwks.json"]


def test_every_reason_a_token_is_refused_for_is_one_of_the_metric_labels():
    """``REJECTION_REASONS`` bounds the rejection metric's labels: a new reason must be added to it."""
    import ast

    from cds_service.auth import verify

    tree = ast.parse(Path(verify.__file__).read_text())
    literal = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Rejected"
        if node.args and isinstance(node.args[0], ast.Constant)
    }
    assert literal and literal <= verify.REJECTION_REASONS
    assert {"exp missing", "nbf is not a number", "bad signature", "invalid token"} <= verify.REJECTION_REASONS
