"""Client JWT check on discovery, hook and feedback calls (cds-hooks.md items 23-29).

Builders: ``sign(claims, key, **header)`` signs a token; ``claims(aud)`` gives valid sandbox-shaped
claims for an endpoint; ``forge(header, payload, signature)`` builds tokens no library would sign.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cds_service import Config, create_app
from cds_service.auth import TrustedIssuersError

BASE = "http://localhost"
HOOK_PATH = "/cds-services/sarcoma-patient-view"
FEEDBACK_PATH = HOOK_PATH + "/feedback"
HOOK_AUD = BASE + HOOK_PATH
SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
EPIC_ISS = "https://ehr.example.org/fhir"


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private_key: Any, kid: str) -> dict[str, Any]:
    algorithm = ECAlgorithm if isinstance(private_key, ec.EllipticCurvePrivateKey) else RSAAlgorithm
    return {**algorithm.to_jwk(private_key.public_key(), as_dict=True), "kid": kid, "use": "sig"}


def claims(aud: str | list[str] = HOOK_AUD, iss: str = SANDBOX_ISS, **extra: Any) -> dict[str, Any]:
    """The sandbox's payload: iss, aud, exp, iat, jti and no sub."""
    now = int(time.time())
    body = {"iss": iss, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def sign(payload: dict[str, Any], key: Any, alg: str = "ES384", **header: Any) -> str:
    headers = {"typ": "JWT", "kid": "sandbox-key", "jku": SANDBOX_JKU, **header}
    return jwt.encode(payload, key, algorithm=alg, headers={k: v for k, v in headers.items() if v is not None})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(signature)}"


def swap_signature(token: str, other: str) -> str:
    """``token``'s header and payload with ``other``'s signature."""
    return token.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def issuers_file(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> Path:
    path = tmp_path / "issuers.json"
    path.write_text(
        json.dumps(
            [
                {"iss": SANDBOX_ISS, "jku": ["https://sandbox.cds-hooks.org/.well-known/"]},
                {"iss": EPIC_ISS, "jwks": {"keys": [public_jwk(rsa_key, "epic-key")]}},
            ]
        )
    )
    return path


@pytest.fixture
def auth_config(tmp_path: Path, issuers_file: Path) -> Config:
    return Config(
        feedback_db=tmp_path / "shared.sqlite3",
        auth_required=True,
        trusted_issuers_file=issuers_file,
        public_base_url=BASE,
    )


@pytest.fixture
def auth_app(auth_config: Config):
    return create_app(auth_config)


@pytest.fixture
def auth_client(auth_app):
    return auth_app.test_client()


@pytest.fixture
def sandbox_jwks(ec_key):
    """The sandbox's jku, served by ``responses``."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(SANDBOX_JKU, json={"keys": [public_jwk(ec_key, "sandbox-key")]})
        yield mock


def assert_refused(response) -> None:
    assert response.status_code == 401
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "security"
    assert body["issue"][0]["diagnostics"] == "Client authentication failed"


# --- accepted ----------------------------------------------------------------------------------


def test_sandbox_es384_token_with_jku_is_accepted(auth_client, hook, ec_key, sandbox_jwks):
    response = auth_client.post(HOOK_PATH, json=hook(), headers=bearer(sign(claims(), ec_key)))
    assert response.status_code == 200
    assert [call.request.url for call in sandbox_jwks.calls] == [SANDBOX_JKU]


def test_epic_rs384_token_with_sub_tenant_and_nbf_is_accepted(auth_client, hook, rsa_key):
    now = int(time.time())
    payload = claims(iss=EPIC_ISS, sub="cds-client-id", tenant="org-1", nbf=now - 300)
    token = sign(payload, rsa_key, alg="RS384", kid="epic-key", jku=None)
    assert auth_client.post(HOOK_PATH, json=hook(), headers=bearer(token)).status_code == 200


def test_aud_may_be_an_array_holding_the_endpoint(auth_client, hook, ec_key, sandbox_jwks):
    token = sign(claims(aud=["https://other.example/x", HOOK_AUD]), ec_key)
    assert auth_client.post(HOOK_PATH, json=hook(), headers=bearer(token)).status_code == 200


def test_token_without_typ_is_accepted(auth_client, hook, ec_key, sandbox_jwks):
    token = sign(claims(), ec_key, typ=None)
    assert auth_client.post(HOOK_PATH, json=hook(), headers=bearer(token)).status_code == 200


def test_discovery_and_feedback_require_and_accept_a_token(auth_client, ec_key, sandbox_jwks):
    assert_refused(auth_client.get("/cds-services"))
    ok = auth_client.get("/cds-services", headers=bearer(sign(claims(aud=BASE + "/cds-services"), ec_key)))
    assert ok.status_code == 200
    feedback = {"feedback": [{"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-11-24T10:00:00Z"}]}
    assert_refused(auth_client.post(FEEDBACK_PATH, json=feedback))
    token = sign(claims(aud=BASE + FEEDBACK_PATH), ec_key)
    assert auth_client.post(FEEDBACK_PATH, json=feedback, headers=bearer(token)).status_code == 200


def test_aud_uses_the_public_base_url_when_configured(auth_config, hook, ec_key, sandbox_jwks):
    client = create_app(auth_config.with_overrides(public_base_url="https://cds.example.org")).test_client()
    local = sign(claims(aud=HOOK_AUD), ec_key)
    assert_refused(client.post(HOOK_PATH, json=hook(), headers=bearer(local)))
    public = sign(claims(aud="https://cds.example.org" + HOOK_PATH), ec_key)
    assert client.post(HOOK_PATH, json=hook(), headers=bearer(public)).status_code == 200


def test_open_endpoints_and_preflight_need_no_token(auth_client):
    assert auth_client.get("/healthz").status_code == 200
    assert auth_client.get("/openapi.yaml").status_code == 200
    preflight = auth_client.options(
        HOOK_PATH,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code in (200, 204)
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()


def test_auth_is_off_by_default(client, hook):
    assert Config().auth_required is False
    assert client.post(HOOK_PATH, json=hook()).status_code == 200
    assert client.get("/cds-services").status_code == 200


def test_refusal_carries_cors_headers_so_the_browser_shows_the_401(auth_client):
    response = auth_client.get("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert_refused(response)
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://sandbox.cds-hooks.org")


# --- refused -----------------------------------------------------------------------------------


def hs256_with_public_key(rsa_key: rsa.RSAPrivateKey) -> str:
    """The key-confusion attack: HMAC-signed with the issuer's public key PEM as the secret."""
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "epic-key"}).encode())
    payload = b64(json.dumps(claims(iss=EPIC_ISS)).encode())
    signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


# Each builder takes the trusted EC key (sandbox, via jku) and RSA key (Epic-style, inline JWKS);
# ``reason`` is the start of the log line that must explain the refusal.
@pytest.mark.parametrize(
    "make_token,reason",
    [
        pytest.param(
            lambda es, rs: forge({"alg": "none", "typ": "JWT", "kid": "sandbox-key", "jku": SANDBOX_JKU}, claims()),
            "alg not allowed",
            id="alg-none",
        ),
        pytest.param(lambda es, rs: hs256_with_public_key(rs), "alg not allowed", id="hs256-with-public-key-as-secret"),
        pytest.param(
            lambda es, rs: sign(claims(), ec.generate_private_key(ec.SECP256R1()), alg="ES256"),
            "alg not allowed",
            id="alg-not-configured",
        ),
        pytest.param(lambda es, rs: sign(claims(iss="https://evil.example"), es), "untrusted iss", id="wrong-iss"),
        pytest.param(
            lambda es, rs: sign(claims(aud="https://cds.example.org" + HOOK_PATH), es),
            "aud is not this endpoint",
            id="wrong-aud",
        ),
        pytest.param(
            lambda es, rs: sign(claims(aud=BASE + FEEDBACK_PATH), es),
            "aud is not this endpoint",
            id="aud-of-another-endpoint",
        ),
        pytest.param(
            lambda es, rs: sign(claims(aud=BASE + "/cds-services"), es),
            "aud is not this endpoint",
            id="aud-of-discovery",
        ),
        pytest.param(lambda es, rs: sign(claims(aud=None), es), "aud missing", id="aud-missing"),
        pytest.param(lambda es, rs: sign(claims(exp=int(time.time()) - 120), es), "expired", id="expired"),
        pytest.param(lambda es, rs: sign(claims(nbf=int(time.time()) + 600), es), "not yet valid", id="future-nbf"),
        pytest.param(lambda es, rs: sign(claims(iat=int(time.time()) + 600), es), "not yet valid", id="future-iat"),
        pytest.param(lambda es, rs: sign(claims(iat=None), es), "iat missing", id="iat-missing"),
        pytest.param(lambda es, rs: sign(claims(exp=None), es), "exp missing", id="exp-missing"),
        pytest.param(
            lambda es, rs: sign(claims(exp=str(int(time.time()) + 300)), es),
            "exp is not a number",
            id="exp-not-a-number",
        ),
        pytest.param(
            lambda es, rs: sign(claims(exp=int(time.time()) + 86_400), es),
            "exp too far in the future",
            id="lifetime-over-an-hour",
        ),
        pytest.param(lambda es, rs: sign(claims(jti=None), es), "jti missing", id="jti-missing"),
        pytest.param(lambda es, rs: sign(claims(jti=42), es), "jti", id="jti-not-a-string"),
        pytest.param(lambda es, rs: sign(claims(), es, kid="rotated-away"), "unknown kid", id="unknown-kid"),
        pytest.param(lambda es, rs: sign(claims(), es, kid=None), "kid missing", id="kid-missing"),
        pytest.param(lambda es, rs: sign(claims(), es, typ="at+jwt"), "typ is not JWT", id="typ-not-jwt"),
        pytest.param(
            lambda es, rs: sign(claims(), es, jku="https://evil.example/.well-known/jwks.json"),
            "jku not allowed",
            id="jku-other-host",
        ),
        pytest.param(
            lambda es, rs: sign(claims(), es, jku="https://sandbox.cds-hooks.org.evil.net/.well-known/jwks.json"),
            "jku not allowed",
            id="jku-lookalike-host",
        ),
        pytest.param(
            lambda es, rs: sign(claims(), es, jku="https://sandbox.cds-hooks.org/other/jwks.json"),
            "jku not allowed",
            id="jku-outside-prefix",
        ),
        pytest.param(
            lambda es, rs: sign(claims(iss=EPIC_ISS), es, jku="https://sandbox.cds-hooks.org/.well-known/jwks.json"),
            "jku not allowed",
            id="jku-of-another-issuer",
        ),
        pytest.param(lambda es, rs: sign(claims(), es, jku=None), "no jku", id="no-jku-and-no-other-key-source"),
        pytest.param(
            lambda es, rs: sign(claims(), ec.generate_private_key(ec.SECP384R1())),
            "bad signature",
            id="signed-by-another-key",
        ),
        pytest.param(
            lambda es, rs: sign(claims(iss=EPIC_ISS), es, kid="epic-key", jku=None),
            "key does not fit alg",
            id="es-alg-on-rs-key",
        ),
        pytest.param(
            lambda es, rs: swap_signature(sign(claims(), es), sign(claims(), es)),
            "bad signature",
            id="tampered-signature",
        ),
        pytest.param(lambda es, rs: "not.a.jwt", "malformed token", id="malformed"),
        pytest.param(lambda es, rs: "a" * 20_000, "malformed token", id="oversized"),
        pytest.param(lambda es, rs: sign(claims(), es, crit=["exp"]), "", id="crit-header"),
    ],
)
def test_each_rule_refuses_a_bad_token(auth_client, hook, ec_key, rsa_key, sandbox_jwks, make_token, reason, caplog):
    with caplog.at_level(logging.WARNING, logger="cds_service.auth"):
        response = auth_client.post(HOOK_PATH, json=hook(), headers=bearer(make_token(ec_key, rsa_key)))
    assert_refused(response)
    assert any(r.getMessage().startswith(f"jwt rejected: {reason}") for r in caplog.records), caplog.text


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"])
def test_missing_or_non_bearer_authorization_is_refused(auth_client, hook, header):
    headers = {} if header is None else {"Authorization": header}
    assert_refused(auth_client.post(HOOK_PATH, json=hook(), headers=headers))


def test_replayed_jti_is_refused(auth_client, hook, ec_key, sandbox_jwks):
    token = sign(claims(), ec_key)
    assert auth_client.post(HOOK_PATH, json=hook(), headers=bearer(token)).status_code == 200
    assert_refused(auth_client.post(HOOK_PATH, json=hook(), headers=bearer(token)))


def test_replay_is_refused_across_two_apps_sharing_the_database(auth_config, hook, ec_key, sandbox_jwks):
    worker_a, worker_b = create_app(auth_config).test_client(), create_app(auth_config).test_client()
    token = sign(claims(), ec_key)
    assert worker_a.post(HOOK_PATH, json=hook(), headers=bearer(token)).status_code == 200
    assert_refused(worker_b.post(HOOK_PATH, json=hook(), headers=bearer(token)))


def test_a_replay_store_that_does_not_answer_fails_closed_with_503(auth_config, hook, ec_key, sandbox_jwks):
    """Redis down (nothing listens on port 9): no call is let through unchecked, none is blamed on the client."""
    client = create_app(auth_config.with_overrides(redis_url="redis://127.0.0.1:9/0")).test_client()
    response = client.post(HOOK_PATH, json=hook(), headers=bearer(sign(claims(), ec_key)))
    assert response.status_code == 503
    [issue] = response.get_json()["issue"]
    assert issue["code"] == "transient" and "try again later" in issue["diagnostics"]
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_refusal_logs_the_reason_but_never_the_token(auth_client, hook, ec_key, sandbox_jwks, caplog):
    token = sign(claims(iss="https://evil.example"), ec_key)
    with caplog.at_level(logging.DEBUG):
        assert_refused(auth_client.post(HOOK_PATH, json=hook(), headers=bearer(token)))
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "jwt rejected: untrusted iss" in text
    assert token not in text and token.split(".")[1] not in text


def test_response_body_gives_no_detail_of_the_reason(auth_client, hook, ec_key, sandbox_jwks):
    expired = auth_client.post(HOOK_PATH, json=hook(), headers=bearer(sign(claims(exp=1), ec_key)))
    wrong_iss = auth_client.post(HOOK_PATH, json=hook(), headers=bearer(sign(claims(iss="x"), ec_key)))
    assert expired.get_data() == wrong_iss.get_data()


# --- the sandbox's feedback lists: clinicians' comments ---------------------------------------


@pytest.mark.parametrize("path", ["/sandbox/feedback", "/sandbox/feedback-report"])
def test_the_sandbox_feedback_lists_need_a_token_when_authentication_is_on(auth_config, ec_key, sandbox_jwks, path):
    client = create_app(auth_config.with_overrides(sandbox=True)).test_client()
    assert_refused(client.get(path))
    assert client.get(path, headers=bearer(sign(claims(aud=BASE + path), ec_key))).status_code == 200
    assert client.get("/sandbox").status_code == 200  # the page and its fixture patients stay open
    assert client.get("/sandbox/fixtures").status_code == 200


@pytest.mark.parametrize("path", ["/sandbox/feedback", "/sandbox/feedback-report"])
def test_the_sandbox_feedback_lists_stay_open_when_authentication_is_off(client, path):
    assert client.get(path).status_code == 200


# --- start-up ----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithms", [("none",), ("HS256",), ("ES384", "HS512"), ("XYZ1",), ()])
def test_unsafe_algorithm_settings_stop_start_up_even_with_auth_off(tmp_path, algorithms):
    with pytest.raises(TrustedIssuersError, match="CDS_JWT_ALGORITHMS"):
        create_app(Config(feedback_db=tmp_path / "f.db", jwt_algorithms=algorithms))


def test_auth_required_without_issuers_file_stops_start_up(tmp_path):
    with pytest.raises(TrustedIssuersError, match="CDS_TRUSTED_ISSUERS_FILE is not set"):
        create_app(Config(feedback_db=tmp_path / "f.db", auth_required=True))


def test_auth_required_with_unreadable_issuers_file_stops_start_up(tmp_path):
    with pytest.raises(TrustedIssuersError, match="cannot be read"):
        create_app(
            Config(feedback_db=tmp_path / "f.db", auth_required=True, trusted_issuers_file=tmp_path / "nope.json")
        )


def test_auth_required_without_public_base_url_stops_start_up(auth_config):
    with pytest.raises(TrustedIssuersError, match="CDS_PUBLIC_BASE_URL"):
        create_app(auth_config.with_overrides(public_base_url=None))
