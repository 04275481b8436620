"""``GET /metrics``: Prometheus metrics, answered only with ``CDS_METRICS=true`` and only to a direct caller.

The route is always registered (so the OpenAPI description holds for every configuration), but
answers 404, the same OperationOutcome as any unknown path, when metrics are off, and also when the
request came through a reverse proxy (it carries ``Forwarded``, ``X-Forwarded-For`` or ``X-Real-IP``):
the scraper reaches each instance on its own address inside the network, never through the public
route. Counting starts when the blueprint is registered on an app whose ``CDS_METRICS`` is on.
"""

from __future__ import annotations

from typing import cast

from flask import Blueprint, Flask, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import NotFound

from .. import metrics
from ..runtime import Runtime

bp = Blueprint("metrics", __name__)

PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


@bp.record_once
def _instrument(state: BlueprintSetupState) -> None:
    if cast(Runtime, state.app.extensions["sarcoma"]).config.metrics:
        metrics.init_app(cast(Flask, state.app))


@bp.get("/metrics")
def scrape() -> Response:
    collected = current_app.extensions.get(metrics.EXTENSION)
    if not isinstance(collected, metrics.Metrics) or any(name in request.headers for name in PROXY_HEADERS):
        raise NotFound()
    body, content_type = collected.exposition(request.headers.get("Accept"))
    return Response(body, status=200, content_type=content_type)
