"""The built-in sandbox: a page that acts as a CDS client for the fixture patients (``CDS_SANDBOX``).

The page itself is the EHR side: it reads discovery, builds the hook request, calls the service
with a timeout and sends feedback, all through the public endpoints. The server only lends it the
fixture patients and their prefetch (built exactly as the templates ask, by ``fhir_fixtures.ehr``) and
shows the feedback it stored, and the same per-statement report as ``sarcoma-cds feedback-report``.
Never enable it in production: it serves synthetic patients only, but it lists the feedback store.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, jsonify, send_from_directory

from fhir_fixtures.ehr import (
    SLUG,
    FixtureError,
    build_prefetch,
    find_fixture,
    list_fixtures,
    load_bundle,
    request_context,
)

from ..errors import CdsError
from ..feedback_report import build_report
from ..runtime import runtime

PAGE_DIR = Path(__file__).resolve().parent.parent / "sandbox"
ASSETS = frozenset({"sandbox.css", "sandbox.js"})
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

bp = Blueprint("sandbox", __name__)


class UnknownFixture(CdsError):
    status = 404
    code = "not-found"


class BrokenFixture(CdsError):
    """A fixture file that exists but cannot be used (invalid JSON or FHIR): the server's fault."""

    status = 500
    code = "exception"


def _page_file(name: str) -> Response:
    response = send_from_directory(PAGE_DIR, name, max_age=0)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/sandbox")
@bp.get("/sandbox/")
def page() -> Response:
    return _page_file("index.html")


@bp.get("/sandbox/assets/<name>")
def asset(name: str) -> Response:
    if name not in ASSETS:
        raise UnknownFixture("No such sandbox asset")
    return _page_file(name)


@bp.get("/sandbox/fixtures")
def fixtures() -> Response:
    try:
        listed = list_fixtures(runtime().config.fixtures_dir)
    except FixtureError as error:
        raise BrokenFixture(f"The fixture index cannot be read: {error}") from None
    return jsonify({"fixtures": [fixture.summary_json() for fixture in listed]})


@bp.get("/sandbox/fixtures/<slug>/prefetch")
def prefetch(slug: str) -> Response:
    """The context and prefetch an EHR holding this fixture patient would send (2.0 "Prefetch template")."""
    fixtures_dir = runtime().config.fixtures_dir
    try:
        if not SLUG.match(slug) or find_fixture(slug, fixtures_dir) is None:
            raise UnknownFixture("No fixture with this name; see GET /sandbox/fixtures")
        bundle = load_bundle(slug, fixtures_dir)
        context = request_context(bundle)
        return jsonify({"context": context, "prefetch": build_prefetch(bundle, context)})
    except FixtureError as error:
        raise BrokenFixture(f"The fixture cannot be used: {error}") from None


@bp.get("/sandbox/feedback")
def feedback() -> Response:
    return jsonify({"feedback": runtime().feedback.list()})


@bp.get("/sandbox/feedback-report")
def feedback_report() -> Response:
    """Per statement: cards shown, accepted, overridden and the override reasons (``sarcoma-cds feedback-report``)."""
    return jsonify(build_report(runtime().feedback).to_json())
