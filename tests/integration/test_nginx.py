"""The shipped reverse-proxy configuration (``deploy/nginx.conf``) in front of the real service.

Debian's nginx (``scripts/install-test-packages.sh``; ``make test`` installs it) runs on 127.0.0.1 with the
shipped file, changed in two lines only: where it listens and where the service is. Behind it,
``sarcoma-cds serve`` under gunicorn with 4 request threads. 64 clients then send their requests a
byte at a time (slowloris: half never finish their headers, half their body); gunicorn alone would
give each of them a thread, but nginx holds them itself, and normal hook calls still get their cards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from fhir_fixtures.ehr import hook_request

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
BIN = ROOT / ".venv" / "bin"
FIXTURE = ROOT / "fhir_fixtures" / "sts-iiia-thigh-tnm-only.json"
HOOK_PATH = "/cds-services/sarcoma-patient-view"
SLOW_CLIENTS = 64


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nginx_config(folder: Path, listen: int, upstream: int) -> Path:
    """The shipped http-context file inside a minimal main configuration, all state in ``folder``."""
    shipped = SHIPPED.read_text()
    assert shipped.count("server cds:8080;") == 1 and shipped.count("listen 8080;") == 1
    site = shipped.replace("server cds:8080;", f"server 127.0.0.1:{upstream};").replace(
        "listen 8080;", f"listen 127.0.0.1:{listen};"
    )
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = "\n".join(f"  {kind}_temp_path {folder / kind};" for kind in kinds)
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers would otherwise run as nobody, outside folder
    path = folder / "nginx.conf"
    path.write_text(
        f"{user}worker_processes 1;\npid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} warn;\n"
        f"daemon off;\nevents {{ worker_connections 1024; }}\n"
        f"http {{\n  access_log off;\n{temp}\n{site}\n}}\n"
    )
    return path


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if process.poll() is not None:
            output = log.read_text(errors="replace")[-2000:]
            pytest.fail(f"{process.args[0]} exited with {process.returncode}:\n{output}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {timeout_s:.0f} s")


def start(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        environment = {**os.environ, **(env or {})}
        return subprocess.Popen(
            argv, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # the session started for it: the server and its workers
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def behind_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service under gunicorn (1 worker, 4 threads) behind the shipped nginx; yields nginx's URL."""
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed: run `bash scripts/install-test-packages.sh` (make test does)")
    folder = tmp_path_factory.mktemp("nginx")
    service_port, nginx_port = free_port(), free_port()
    env = {
        "CDS_FEEDBACK_DB": str(folder / "cds.sqlite3"),
        "CDS_AUTH_REQUIRED": "false",
        "CDS_METRICS": "true",
        "CDS_LOG_LEVEL": "WARNING",
    }
    argv = [str(BIN / "sarcoma-cds"), "serve", "--host", "127.0.0.1", "--port", str(service_port)]
    service = start([*argv, "--workers", "1", "--threads", "4"], folder / "service.log", env)
    nginx = None
    try:
        wait_for(f"http://127.0.0.1:{service_port}/healthz", service, folder / "service.log")
        config = nginx_config(folder, nginx_port, service_port)
        nginx = start([NGINX, "-c", str(config), "-e", str(folder / "error.log")], folder / "nginx.log")
        wait_for(f"http://127.0.0.1:{nginx_port}/healthz", nginx, folder / "nginx.log")
        yield f"http://127.0.0.1:{nginx_port}"
    finally:
        if nginx is not None:
            stop(nginx)
        stop(service)


def slow_client(port: int, stop_sending: threading.Event, finish_headers: bool) -> None:
    """A request sent one byte every half second: its headers never end, or (``finish_headers``) its body."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        head = f"POST {HOOK_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        if finish_headers:
            head += "Content-Length: 100000\r\n\r\n{"
        sock.sendall(head.encode())
        while not stop_sending.wait(0.5):
            try:
                sock.sendall(b" " if finish_headers else b"X-Slow: 1\r\n"[:1])
            except OSError:
                return


def test_64_slow_connections_do_not_stop_a_hook_call_through_nginx(behind_nginx: str) -> None:
    port = int(behind_nginx.rsplit(":", 1)[1])
    body = json.dumps(hook_request(FIXTURE)).encode()
    stop_sending = threading.Event()
    clients = [
        threading.Thread(target=slow_client, args=(port, stop_sending, n % 2 == 1), daemon=True)
        for n in range(SLOW_CLIENTS)
    ]
    try:
        for client in clients:
            client.start()
        time.sleep(1.5)  # every slow client is connected and trickling: far more than gunicorn's 4 threads
        for _ in range(3):
            started = time.monotonic()
            response = requests.post(
                behind_nginx + HOOK_PATH, data=body, headers={"Content-Type": "application/json"}, timeout=10
            )
            elapsed = time.monotonic() - started
            assert response.status_code == 200, response.text[:300]
            assert response.json()["cards"], "the fixture patient gets cards"
            assert elapsed < 2.0, elapsed
        assert sum(client.is_alive() for client in clients) == SLOW_CLIENTS  # still trickling meanwhile
    finally:
        stop_sending.set()
        for client in clients:
            client.join(timeout=5)


def test_metrics_are_closed_on_the_proxied_route(behind_nginx: str) -> None:
    assert requests.get(behind_nginx + "/metrics", timeout=5).status_code == 404
    assert requests.get(behind_nginx + "/healthz", timeout=5).status_code == 200
