"""Client authentication: the CDS Client's signed JWT on discovery, hook and feedback calls.

``init_app(app, config)`` logs the settings' warnings (``config.warnings``, one line each, the same
``sarcoma-cds check-config`` prints), refuses unsafe algorithm settings, and with ``CDS_AUTH_REQUIRED`` loads
``CDS_TRUSTED_ISSUERS_FILE`` (see ``issuers``) and installs the check (``guard``). A bad file stops
start-up with a message saying what to fix.

The ``jti`` replay store is the app's short-lived store (``storage``): the database, shared by the
workers of one host (SQLite) or by every replica (PostgreSQL), or Redis with ``CDS_REDIS_URL``.
"""

from __future__ import annotations

import logging

from flask import Flask

from ..config import Config
from ..config import warnings as setting_warnings
from .guard import install_guard
from .issuers import TrustedIssuersError, check_algorithms, load_trusted_issuers
from .jwks import JwksCache
from .verify import TokenVerifier

__all__ = ["init_app", "TrustedIssuersError"]

log = logging.getLogger("cds_service.auth")


def init_app(app: Flask, config: Config) -> None:
    algorithms = check_algorithms(config.jwt_algorithms)
    for warning in setting_warnings(config):  # the lines `sarcoma-cds check-config` prints, one each
        log.warning("%s", warning)
    if not config.auth_required:
        return
    if config.sandbox:
        log.warning(
            "CDS_SANDBOX is on with CDS_AUTH_REQUIRED: the sandbox page's calls carry no JWT and are refused, "
            "its feedback lists included"
        )
    issuers = load_trusted_issuers(config.trusted_issuers_file)
    if not config.public_base_url:
        # aud is checked against this URL; taken from the Host header instead, a token minted for
        # another service could be replayed here with a matching Host.
        raise TrustedIssuersError(
            "CDS_AUTH_REQUIRED needs CDS_PUBLIC_BASE_URL, the URL clients call "
            "(e.g. https://cds.example.org): the JWT aud is checked against it"
        )
    runtime = app.extensions["sarcoma"]
    verifier = TokenVerifier(
        issuers=issuers,
        algorithms=algorithms,
        jwks=JwksCache(runtime.session, shared=runtime.stores.jwks),  # the FHIR reads' session
        replay=runtime.stores.short_lived,
    )
    app.extensions["sarcoma_auth"] = verifier
    install_guard(app, config, verifier)
