"""The ``before_request`` check that every discovery, hook and feedback call carries a valid client JWT.

CDS Hooks 2.0 "Trusting CDS Clients": when a service requires authentication, every call, discovery
and feedback included, carries ``Authorization: Bearer <JWT>`` (cds-hooks.md item 23), and so do the
sandbox's lists of stored feedback (clinicians' comments). Health, the sandbox page and its fixture
patients, statements and the OpenAPI document stay open, and so do CORS preflights (browsers send
OPTIONS without credentials; item 29).

When the replay store (or Redis's shared key sets) cannot be used, protected calls fail closed: 503,
never a call let through unchecked. The verified ``iss`` is kept in ``flask.g.client_iss`` (the
feedback rate limit counts per client).
"""

from __future__ import annotations

import logging

from flask import Flask, g, request

from ..config import Config
from ..errors import StoreUnavailable, Unauthorized
from ..metrics import record_jwt_rejection
from ..storage import StoreDown
from .verify import Rejected, TokenVerifier

log = logging.getLogger("cds_service.auth")

PROTECTED_ENDPOINTS = frozenset(
    {
        "discovery.discovery",
        "hooks.call_service",
        "feedback.feedback",
        # The sandbox's lists of stored feedback hold clinicians' free-text comments.
        "sandbox.feedback",
        "sandbox.feedback_report",
    }
)
CLIENT_MESSAGE = "Client authentication failed"


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header, or '' when there is none."""
    scheme, _, token = (header or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def expected_audience(config: Config) -> str:
    """The URL the client invoked (item 25 ``aud``): the configured public base URL plus the path.

    Never derived from the request's Host header, which the caller controls (``init_app`` refuses
    to start without ``CDS_PUBLIC_BASE_URL`` when authentication is required).
    """
    return str(config.public_base_url).rstrip("/") + request.path


def install_guard(app: Flask, config: Config, verifier: TokenVerifier) -> None:
    @app.before_request
    def require_client_jwt() -> None:
        if request.method == "OPTIONS" or request.endpoint not in PROTECTED_ENDPOINTS:
            return
        try:
            client = verifier.verify(bearer_token(request.headers.get("Authorization")), expected_audience(config))
        except Rejected as rejected:
            log.warning("jwt rejected: %s", rejected.reason)
            record_jwt_rejection(rejected.reason)
            raise Unauthorized(CLIENT_MESSAGE) from None
        except StoreDown as down:
            log.warning("jwt not checked: %s unavailable (%s)", down.store, down.kind)
            raise StoreUnavailable("The service cannot check client tokens now; try again later") from None
        g.client_iss = client.iss
        log.debug("jwt accepted iss=%s", client.iss)
