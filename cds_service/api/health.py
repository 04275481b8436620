"""``GET /healthz`` (liveness) and ``GET /readyz`` (readiness), for container orchestrators.

Liveness says the process answers; restart it if not. Readiness says it can serve a hook call and
keep feedback: the knowledge base is loaded, the database takes a write and Redis, when configured,
answers. The answer names each store; a 503 names what is down in an OperationOutcome, so a probe's
log says why traffic was held back.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

from ..errors import operation_outcome
from ..runtime import Runtime, runtime
from ..storage import StoreDown

bp = Blueprint("health", __name__)
log = logging.getLogger("cds_service.health")


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    rt = runtime()
    problems = [problem for problem in (_knowledge_problem(rt), _database_problem(rt), _redis_problem(rt)) if problem]
    if not problems:
        stores = {"database": rt.stores.database.dialect.name} | ({"redis": "redis"} if rt.stores.redis else {})
        return jsonify({"status": "ready", "knowledgeVersion": rt.knowledge.version, "stores": stores})
    outcome = operation_outcome(problems[0][1], code=problems[0][0])
    outcome["issue"] += [operation_outcome(message, code=code)["issue"][0] for code, message in problems[1:]]
    response = jsonify(outcome)
    response.status_code = 503
    return response


def _knowledge_problem(rt: Runtime) -> tuple[str, str] | None:
    if rt.knowledge is None or not rt.knowledge.matchable():
        return "exception", "The knowledge base is not loaded"
    return None


def _database_problem(rt: Runtime) -> tuple[str, str] | None:
    """An insert and a rollback: cheap, and it finds a missing or read-only file, or a lock held over a second."""
    try:
        rt.feedback.check_writable()
    except StoreDown as down:
        log.warning("not ready: database not writable", extra={"fields": {"error": down.kind}})
        return "no-store", f"The database ({rt.stores.database.dialect.name}) is not writable"
    return None


def _redis_problem(rt: Runtime) -> tuple[str, str] | None:
    """A write that expires at once (``CDS_REDIS_URL`` only)."""
    if rt.stores.redis is None:
        return None
    try:
        rt.stores.short_lived.check()
    except StoreDown as down:
        log.warning("not ready: redis unavailable", extra={"fields": {"error": down.kind}})
        return "no-store", "Redis is not reachable"
    return None
