"""``GET /cds-services`` (CDS Hooks 2.0 "Discovery")."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..protocol.services import SERVICES

bp = Blueprint("discovery", __name__)


@bp.get("/cds-services")
def discovery() -> Response:
    return jsonify({"services": [service.discovery_json() for service in SERVICES.values()]})
