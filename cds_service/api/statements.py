"""Statement pages: what each card cites, readable by a clinician (HTML) or a client (``?format=json``).

Cards link here (``links`` of type absolute, CDS Hooks 2.0 "Link"). The HTML pages are Jinja
templates (``cds_service/templates``, autoescaped) and show only clinician language (R6): the
statement, when it applies, its sources as a reader would cite them, the evidence wording and the
knowledge-base version; reviewer notes (cross-checks, flags, source files) stay in the JSON's
``review``. Unknown ids are a 404 with an OperationOutcome, like every other error of the service.
"""

from __future__ import annotations

from typing import Any, cast

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from ..errors import operation_outcome
from ..knowledge import KnowledgeBase, Statement
from ..knowledge.render import evidence_text

bp = Blueprint("statements", __name__, template_folder="../templates")

KINDS = {
    "recommendation": "Recommendation",
    "information": "Information",
    "rationale": "Background quoted on cards",
    "guardrail": "Safety or scope check",
    "rule": "Rule applied to every card",
}
"""What each role of a statement is, in words (never the raw role name)."""

JUDGEMENT = "Clinical judgement built on the sources"


def _knowledge() -> KnowledgeBase:
    return cast(KnowledgeBase, current_app.extensions["sarcoma_knowledge"])


@bp.get("/statements")
def index() -> Response | str:
    kb = _knowledge()
    if request.args.get("format") == "json":
        listing = [{"id": s.id, "title": s.title, "role": s.role, "group": s.group} for s in kb.statements.values()]
        return jsonify(listing)
    statements = kb.statements.values()
    sections = [
        {"heading": "Guideline statements", "rows": [_row(s, kb) for s in statements if s.kind != "guardrail"]},
        {"heading": "Safety and scope checks", "rows": [_row(s, kb) for s in statements if s.kind == "guardrail"]},
    ]
    return render_template("statements.html", sections=sections, version=kb.version)


@bp.get("/statements/<statement_id>")
def show(statement_id: str) -> Response | str:
    kb = _knowledge()
    statement = kb.statement(statement_id)
    if statement is None:
        response = jsonify(operation_outcome("No such statement. The list is at GET /statements.", code="not-found"))
        response.status_code = 404
        return response
    if request.args.get("format") == "json":
        return jsonify({**statement.to_json(kb.sources), "version": kb.version})
    return render_template("statement.html", **_page(statement, kb))


def _row(s: Statement, kb: KnowledgeBase) -> dict[str, str]:
    source = kb.primary_source(s)
    return {"id": s.id, "title": s.title, "kind": KINDS[s.role], "source": source.label if source else JUDGEMENT}


def _page(s: Statement, kb: KnowledgeBase) -> dict[str, Any]:
    """What the statement page shows; nothing here names a file, a flag or a reviewer note."""
    return {
        "statement": s,
        "kind": KINDS[s.role],
        "sources": [kb.sources[sid] for sid in s.citation.sources],
        "evidence": evidence_text(s),
        "built_on": [kb.statements[d] for d in s.citation.derived_from],
        "replaces": [kb.statements[o] for o in s.overrides],
        "version": kb.version,
    }
