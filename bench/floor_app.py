"""The floor: a bare Flask app that does only what any hook endpoint must.

It reads and parses the hook request body (orjson, as ``cds_service.api.http.json_body`` does) and
answers a constant card list of the service's size with ``jsonify``. Served by gunicorn with the
service's settings, its latency is the cost of HTTP, WSGI, JSON in and JSON out: what the service
cannot go below. ``BENCH_FLOOR_RESPONSE`` names a JSON file holding the response to send (the
benchmark writes a real service response there); without it a three-card response is built in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
from flask import Flask, Response, jsonify, request


def _card(n: int) -> dict[str, Any]:
    return {
        "uuid": f"00000000-0000-4000-8000-00000000000{n}",
        "summary": f"Guideline statement S{n:02d} applies to this patient",
        "indicator": "info",
        "detail": "Why it applies: histology, stage and prior systemic therapy as recorded. " * 4,
        "source": {"label": "ESMO-EURACAN-GENTURIS 2021", "url": "https://example.org/guideline"},
        "links": [{"label": "Statement", "url": "https://example.org/statements/S01", "type": "absolute"}],
    }


def _response() -> dict[str, Any]:
    path = os.environ.get("BENCH_FLOOR_RESPONSE")
    if path:
        return orjson.loads(Path(path).read_bytes())
    return {"cards": [_card(n) for n in (1, 2, 3)]}


def create_app() -> Flask:
    app = Flask(__name__)
    app.json.sort_keys = False
    body = _response()

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.post("/cds-services/<service_id>")
    def hook(service_id: str) -> Response:
        parsed = orjson.loads(request.get_data(cache=False))
        if not isinstance(parsed, dict) or "context" not in parsed:
            return Response(status=400)
        return jsonify(body)

    return app


app = create_app()
