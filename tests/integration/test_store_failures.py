"""A store that goes away while the service runs, and JWKS shared through Redis, against real servers.

PostgreSQL is reached through a forwarder the test stops (connections reset, new ones refused):
hook calls still answer with their cards, feedback is a 503 and never a false 200, JWT-protected
calls fail closed, and ``/readyz`` names the database.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from jwt.algorithms import ECAlgorithm
from servers import TcpForwarder

from cds_service import Config, create_app
from cds_service.auth.jwks import JwksCache
from cds_service.storage.database import PostgresDatabase
from cds_service.storage.migrations import migrate
from cds_service.storage.redis_store import JwksShare, RedisStore
from fhir_fixtures.ehr import hook_request, list_fixtures

ROOT = Path(__file__).resolve().parents[2]
HOOK = "/cds-services/sarcoma-patient-view"
FEEDBACK = HOOK + "/feedback"
ISS = "https://ehr.example.org"
BASE = "https://cds.example.org"
LMS = next(f for f in list_fixtures(ROOT / "fhir_fixtures") if f.slug == "lms-metastatic-first-line")
KEY = ec.generate_private_key(ec.SECP384R1())


def bearer(path: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": ISS, "aud": BASE + path, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    return {"Authorization": "Bearer " + jwt.encode(claims, KEY, algorithm="ES384", headers={"kid": "k1"})}


def lms_request() -> dict:
    return hook_request(LMS.slug, fixtures_dir=ROOT / "fhir_fixtures", hook_instance=str(uuid.uuid4()))


def feedback_body() -> dict:
    item = {"card": str(uuid.uuid4()), "outcome": "overridden", "outcomeTimestamp": "2026-03-01T10:00:00Z"}
    return {"feedback": [item]}


@pytest.fixture
def forwarded(postgres_url: str) -> Iterator[tuple[str, TcpForwarder]]:
    """The test's database reached through a forwarder: (its URL, the forwarder)."""
    db = PostgresDatabase(postgres_url)
    migrate(db)
    db.close()
    parts = urlsplit(postgres_url)
    forwarder = TcpForwarder(parts.hostname or "127.0.0.1", parts.port or 5432)
    netloc = parts.netloc.rpartition("@")[0] + f"@127.0.0.1:{forwarder.port}"
    yield parts._replace(netloc=netloc).geturl(), forwarder
    forwarder.stop()


@pytest.fixture
def clients(forwarded: tuple[str, TcpForwarder], tmp_path: Path) -> Iterator[tuple[FlaskClient, FlaskClient]]:
    """An open app and one requiring JWTs, both on the forwarded database; their pools closed after."""
    issuers = tmp_path / "issuers.json"
    jwk = {**ECAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k1"}
    issuers.write_text(json.dumps([{"iss": ISS, "jwks": {"keys": [jwk]}}]))
    config = Config(database_url=forwarded[0], today=LMS.today)
    secured = config.with_overrides(auth_required=True, trusted_issuers_file=issuers, public_base_url=BASE)
    apps = [create_app(config), create_app(secured)]
    yield apps[0].test_client(), apps[1].test_client()
    for app in apps:
        app.extensions["sarcoma"].stores.database.close()


def test_a_database_that_goes_away_leaves_hooks_answering_and_refuses_what_needs_it(forwarded, clients):
    _, forwarder = forwarded
    open_client, secured = clients
    assert open_client.post(HOOK, json=lms_request()).status_code == 200
    assert open_client.post(FEEDBACK, json=feedback_body()).status_code == 200
    assert secured.post(HOOK, json=lms_request(), headers=bearer(HOOK)).status_code == 200
    assert open_client.get("/readyz").get_json()["stores"] == {"database": "postgresql"}

    forwarder.stop()

    started = time.monotonic()
    hook = open_client.post(HOOK, json=lms_request())
    assert hook.status_code == 200 and len(hook.get_json()["cards"]) == 1  # cards do not depend on the store
    assert time.monotonic() - started < 2.0  # recording waited a quarter second at most
    refused = open_client.post(FEEDBACK, json=feedback_body())
    assert refused.status_code == 503 and refused.get_json()["issue"][0]["code"] == "transient"
    closed = secured.post(HOOK, json=lms_request(), headers=bearer(HOOK))
    assert closed.status_code == 503 and closed.get_json()["resourceType"] == "OperationOutcome"
    ready = open_client.get("/readyz")
    assert ready.status_code == 503
    assert [i["diagnostics"] for i in ready.get_json()["issue"]] == ["The database (postgresql) is not writable"]


def jwk(kid: str) -> dict:
    key = ec.generate_private_key(ec.SECP384R1())
    return {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid}


@responses.activate
def test_a_key_set_fetched_by_one_replica_is_used_by_the_other(redis_url):
    url = f"https://client.example/{uuid.uuid4().hex}/jwks.json"
    responses.get(url, json={"keys": [jwk("a")]})
    replica_a = JwksCache(shared=JwksShare(RedisStore(redis_url)))
    replica_b = JwksCache(shared=JwksShare(RedisStore(redis_url)))
    assert replica_a.key(url, "a")["kid"] == "a"
    assert replica_b.key(url, "a")["kid"] == "a"
    assert len(responses.calls) == 1


@responses.activate
def test_the_fetch_budget_of_an_issuer_is_shared_by_the_replicas(redis_url):
    owner, prefix = f"https://ehr-{uuid.uuid4().hex}.example", f"https://client.example/{uuid.uuid4().hex}"
    for n in range(6):
        responses.get(f"{prefix}/{n}.json", json={"keys": [jwk("a")]})
    replicas = [JwksCache(shared=JwksShare(RedisStore(redis_url)), max_fetches_per_minute=3) for _ in range(2)]
    for n in range(6):
        try:
            replicas[n % 2].key(f"{prefix}/{n}.json", "a", owner=owner)
        except Exception:  # noqa: BLE001 - a skipped fetch leaves the URL without keys: JwksUnavailable
            pass
    assert len(responses.calls) == 3
