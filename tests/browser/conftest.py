"""Browser fixtures: the real app on a free local port, and headless Debian Chromium driven by Playwright.

Playwright downloads no browser here: it launches ``/usr/bin/chromium`` (``make test`` installs it
with ``scripts/install-test-packages.sh``). Without it the browser tests are skipped, saying why.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from cds_service import Config, create_app

HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = HERE.parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@dataclass(frozen=True)
class LiveServer:
    url: str
    app: Flask


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    app = create_app(Config(feedback_db=tmp_path / "feedback.sqlite3", sandbox=True))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="sandbox-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", app)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots go (``test-artifacts/``, ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def page(live_server: LiveServer) -> Iterator[object]:
    """A fresh Chromium page; JavaScript errors on the page fail the test."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is not installed (run: bash scripts/install-test-packages.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)  # make test installs it: in CI its absence is a failure, not a skip
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page
        finally:
            browser.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
