"""``GET /openapi.yaml``: the OpenAPI 3 description of this service."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response

bp = Blueprint("openapi", __name__)
SPEC = Path(__file__).resolve().parent.parent / "openapi.yaml"


@bp.get("/openapi.yaml")
def openapi() -> Response:
    return Response(SPEC.read_text(), mimetype="application/yaml")
