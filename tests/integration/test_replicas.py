"""Two replicas, as on two hosts: separate gunicorn masters on separate ports sharing PostgreSQL and Redis.

Authentication is on (an inline key: no network), so every call carries a signed JWT and passes the
shared replay store. The same token sent to both at once is accepted once; feedback posted to one
is in the other's report; SIGKILL of one under load loses no acknowledged feedback.

``REPLICA_LOAD_CLIENTS`` and ``REPLICA_LOAD_SECONDS`` lengthen the load phase for a measurement
(e.g. 32 and 30); the defaults keep the test short.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import psycopg
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from servers import free_port, with_search_path

from fhir_fixtures.ehr import list_fixtures

ROOT = Path(__file__).resolve().parents[2]
ISS = "https://ehr.example.org"
PUBLIC = "https://cds.example.org"
SERVICE = "/cds-services/sarcoma-patient-view"
FEEDBACK = SERVICE + "/feedback"
CLIENTS = int(os.environ.get("REPLICA_LOAD_CLIENTS", "8"))
LOAD_S = float(os.environ.get("REPLICA_LOAD_SECONDS", "3"))
LMS = next(f for f in list_fixtures(ROOT / "fhir_fixtures") if f.slug == "lms-metastatic-first-line")


@dataclass
class Replica:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.process.poll() is not None:
                pytest.fail(f"a replica exited ({self.process.returncode}):\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        pytest.fail(f"a replica was not ready within {timeout_s:.0f} s:\n{self.log.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the master and its workers (the session each replica was started in)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)


class Signer:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP384R1())
        self.jwk = {**ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True), "kid": "k1", "use": "sig"}

    def token(self, path: str, jti: str | None = None) -> str:
        now = int(time.time())
        claims = {"iss": ISS, "aud": PUBLIC + path, "iat": now, "exp": now + 300, "jti": jti or str(uuid.uuid4())}
        return jwt.encode(claims, self.key, algorithm="ES384", headers={"kid": "k1", "typ": "JWT"})

    def headers(self, path: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(path)}"}


@dataclass
class Cluster:
    a: Replica
    b: Replica
    database_url: str
    signer: Signer
    env: dict[str, str]
    tmp: Path

    def stored_cards(self) -> set[str]:
        with psycopg.connect(self.database_url) as conn:
            return {row[0] for row in conn.execute("SELECT card FROM feedback")}


def _environment(tmp: Path, database_url: str, redis_url: str, signer: Signer) -> dict[str, str]:
    issuers = tmp / "issuers.json"
    issuers.write_text(json.dumps([{"iss": ISS, "jwks": {"keys": [signer.jwk]}}]))
    return {
        **os.environ,
        "CDS_DATABASE_URL": database_url,
        "CDS_REDIS_URL": redis_url,
        "CDS_AUTH_REQUIRED": "true",
        "CDS_TRUSTED_ISSUERS_FILE": str(issuers),
        "CDS_PUBLIC_BASE_URL": PUBLIC,
        "CDS_SANDBOX": "true",
        "CDS_TODAY": LMS.today.isoformat() if LMS.today else "2026-03-01",
        "CDS_FEEDBACK_DB": str(tmp / "unused.sqlite3"),
        "CDS_FEEDBACK_PER_MINUTE": "1000000",
        "CDS_LOG_LEVEL": "WARNING",
    }


def _start(env: dict[str, str], tmp: Path, name: str) -> Replica:
    port = free_port()
    log = tmp / f"{name}.log"
    command = [sys.executable, "-m", "cds_service.cli", "serve", "--port", str(port), "--workers", "2"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Replica(port, process, log)


@pytest.fixture(scope="module")
def cluster(postgres_server: str, redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    schema = f"cds_replicas_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    database_url = with_search_path(postgres_server, schema)
    tmp = tmp_path_factory.mktemp("replicas")
    signer = Signer()
    env = _environment(tmp, database_url, redis_server, signer)
    migrated = subprocess.run(
        [sys.executable, "-m", "cds_service.cli", "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert migrated.returncode == 0, migrated.stderr
    replicas = [_start(env, tmp, name) for name in ("a", "b")]
    cluster = Cluster(replicas[0], replicas[1], database_url, signer, env, tmp)
    try:
        for replica in replicas:
            replica.wait_ready()
        yield cluster
    finally:
        for replica in {id(r): r for r in (*replicas, cluster.a, cluster.b)}.values():
            replica.kill()  # nothing to finish: every acknowledged write is committed
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_a_replica_refuses_to_start_on_a_schema_it_does_not_know(cluster: Cluster, postgres_server: str):
    """On a database of its own: the running replicas' workers may still be booting, and must not see it."""
    schema = f"cds_later_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    env = {**cluster.env, "CDS_DATABASE_URL": with_search_path(postgres_server, schema)}
    try:
        run = dict(env=env, capture_output=True, text=True, timeout=60)
        assert subprocess.run([sys.executable, "-m", "cds_service.cli", "migrate"], **run).returncode == 0
        with psycopg.connect(env["CDS_DATABASE_URL"], autocommit=True) as conn:
            conn.execute("INSERT INTO schema_version (version, summary, applied_at) VALUES (99, 'later', 'now')")
        done = subprocess.run([sys.executable, "-m", "cds_service.cli", "serve", "--port", str(free_port())], **run)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("sarcoma-cds: error: CDS_DATABASE_URL: the database schema is at version 99, ahead")


def test_the_same_token_sent_to_both_replicas_at_once_is_accepted_once(cluster: Cluster):
    outcomes = []
    for _ in range(10):
        token = cluster.signer.token("/cds-services")
        barrier = threading.Barrier(2)

        def call(replica: Replica, token: str = token, barrier: threading.Barrier = barrier) -> int:
            barrier.wait()
            headers = {"Authorization": f"Bearer {token}"}
            return requests.get(replica.url + "/cds-services", headers=headers, timeout=10).status_code

        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes.append(sorted(pool.map(call, (cluster.a, cluster.b))))
    assert outcomes == [[200, 401]] * 10


def test_feedback_posted_to_one_replica_is_in_the_others_report(cluster: Cluster):
    request = json.loads((ROOT / "fhir_fixtures" / "requests" / f"{LMS.slug}.json").read_text())
    request["hookInstance"] = str(uuid.uuid4())
    hook = requests.post(cluster.a.url + SERVICE, json=request, headers=cluster.signer.headers(SERVICE), timeout=30)
    assert hook.status_code == 200, hook.text
    [card] = hook.json()["cards"]
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-03-01T10:00:00Z"}
    posted = requests.post(
        cluster.b.url + FEEDBACK, json={"feedback": [item]}, headers=cluster.signer.headers(FEEDBACK), timeout=10
    )
    assert posted.json() == {"stored": 1, "duplicates": 0}
    listed = requests.get(
        cluster.a.url + "/sandbox/feedback", headers=cluster.signer.headers("/sandbox/feedback"), timeout=10
    )
    assert card["uuid"] in [row["card"] for row in listed.json()["feedback"]]
    report = requests.get(
        cluster.a.url + "/sandbox/feedback-report",
        headers=cluster.signer.headers("/sandbox/feedback-report"),
        timeout=10,
    ).json()
    statements = {row["statement"]: row for row in report["statements"]}
    for statement in card["extension"]["org.sarcoma-cds.statements"]:
        assert statements[statement]["overridden"] >= 1


@dataclass
class Load:
    acknowledged: set[str] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, kind: str, status: str, card: str | None = None) -> None:
        with self.lock:
            self.statuses[f"{kind} {status}"] += 1
            if card is not None:
                self.acknowledged.add(card)


def _drive(cluster: Cluster, load: Load, stop: threading.Event, n: int, hook_body: bytes) -> None:
    """One client: hook calls and feedback posts in turn, to both replicas in turn."""
    with requests.Session() as session:
        calls = 0
        while not stop.is_set():
            calls += 1
            replica = (cluster.a, cluster.b)[(n + calls) % 2]
            feedback = calls % 2 == 0
            path = FEEDBACK if feedback else SERVICE
            headers = {**cluster.signer.headers(path), "Content-Type": "application/json"}
            card = f"load-{n}-{calls}-{uuid.uuid4().hex[:8]}"
            item = {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-03-01T10:00:00Z"}
            body = json.dumps({"feedback": [item]}).encode() if feedback else hook_body
            try:
                response = session.post(replica.url + path, data=body, headers=headers, timeout=10)
            except requests.RequestException:
                load.note("feedback" if feedback else "hook", "connection error")
                continue
            acknowledged = feedback and response.status_code == 200 and response.json().get("stored") == 1
            load.note("feedback" if feedback else "hook", str(response.status_code), card if acknowledged else None)


def _run_load(cluster: Cluster, seconds: float, during: Callable[[], None] | None = None) -> Load:
    """``CLIENTS`` clients for ``seconds``; ``during`` is called half-way."""
    hook_body = (ROOT / "fhir_fixtures" / "requests" / f"{LMS.slug}.json").read_bytes()
    load, stop = Load(), threading.Event()
    threads = [threading.Thread(target=_drive, args=(cluster, load, stop, n, hook_body)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        if during is not None:
            time.sleep(seconds / 2)
            during()
            time.sleep(seconds / 2)
        else:
            time.sleep(seconds)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    return load


def test_load_across_both_replicas_has_no_error_and_loses_no_feedback(cluster: Cluster):
    before = cluster.stored_cards()
    load = _run_load(cluster, LOAD_S)
    stored = cluster.stored_cards() - before
    print(f"\n{CLIENTS} clients for {LOAD_S:g} s over two replicas: {dict(load.statuses)}; stored {len(stored)}")
    assert set(load.statuses) <= {"hook 200", "feedback 200"}, load.statuses
    assert load.statuses["feedback 200"] > 0 and load.statuses["hook 200"] > 0
    assert load.acknowledged == {card for card in stored if card.startswith("load-")}


def test_sigkill_of_one_replica_under_load_loses_no_acknowledged_feedback(cluster: Cluster):
    before = cluster.stored_cards()
    load = _run_load(cluster, LOAD_S, during=cluster.a.kill)
    stored = cluster.stored_cards() - before
    print(f"\nSIGKILL of one replica under load: {dict(load.statuses)}; stored {len(stored)}")
    assert load.acknowledged, "no feedback was acknowledged: the load did not run"
    assert load.acknowledged <= stored  # every 200 is a committed row
    assert load.statuses["feedback 200"] == len(load.acknowledged)
    assert requests.get(cluster.b.url + "/readyz", timeout=5).status_code == 200  # the survivor serves on
    cluster.a = _start(cluster.env, cluster.tmp, "a-restarted")  # and a replica started again joins
    cluster.a.wait_ready()
    listed = requests.get(
        cluster.a.url + "/sandbox/feedback", headers=cluster.signer.headers("/sandbox/feedback"), timeout=30
    ).json()["feedback"]
    assert load.acknowledged <= {row["card"] for row in listed}
