"""``GET /cds-services`` (CDS Hooks 2.0 "Discovery")."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..knowledge.render import EXT_VERSION
from ..protocol.services import SERVICES
from ..runtime import runtime

bp = Blueprint("discovery", __name__)


@bp.get("/cds-services")
def discovery() -> Response:
    """Each service, with the knowledge-base version its cards are built from (a service
    ``extension``, CDS Hooks 2.0 "Extensions")."""
    version = {EXT_VERSION: runtime().knowledge.version}
    return jsonify({"services": [{**s.discovery_json(), "extension": version} for s in SERVICES.values()]})
