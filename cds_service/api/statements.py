"""Statement pages: what each card cites, readable by a clinician (HTML) or a client (``?format=json``).

Cards link here (``links`` of type absolute, CDS Hooks 2.0 "Link"). Unknown ids are a 404 with an
OperationOutcome, like every other error of the service.
"""

from __future__ import annotations

from html import escape

from flask import Blueprint, Response, current_app, jsonify, request

from ..errors import operation_outcome
from ..knowledge import KnowledgeBase, Statement
from ..knowledge.render import evidence_text

bp = Blueprint("statements", __name__)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
th{{text-align:left;vertical-align:top;padding-right:1rem}}code{{background:#f3f3f3}}</style></head>
<body>{body}</body></html>"""


def _knowledge() -> KnowledgeBase:
    return current_app.extensions["sarcoma_knowledge"]


def _html(title: str, body: str) -> Response:
    return Response(_PAGE.format(title=escape(title), body=body), mimetype="text/html")


@bp.get("/statements")
def index() -> Response:
    kb = _knowledge()
    if request.args.get("format") == "json":
        listing = [{"id": s.id, "title": s.title, "role": s.role, "group": s.group} for s in kb.statements.values()]
        return jsonify(listing)
    rows = "".join(
        f'<tr><td><a href="statements/{escape(s.id)}">{escape(s.id)}</a></td><td>{escape(s.title)}</td>'
        f"<td>{escape(s.role)}</td><td>{escape(s.group or '')}</td></tr>"
        for s in kb.statements.values()
    )
    body = (
        "<h1>Guideline statements and guardrails</h1>"
        "<table><tr><th>id</th><th>title</th><th>role</th><th>card group</th></tr>" + rows + "</table>"
    )
    return _html("Guideline statements", body)


@bp.get("/statements/<statement_id>")
def show(statement_id: str) -> Response:
    kb = _knowledge()
    statement = kb.statement(statement_id)
    if statement is None:
        response = jsonify(operation_outcome("No such statement. The list is at GET /statements.", code="not-found"))
        response.status_code = 404
        return response
    if request.args.get("format") == "json":
        return jsonify(statement.to_json(kb.sources))
    return _html(f"{statement.id}: {statement.title}", _statement_body(statement, kb))


def _statement_body(s: Statement, kb: KnowledgeBase) -> str:
    rows = [
        ("Statement", escape(s.statement)),
        ("Situation", escape(s.description)),
        ("Card text", escape(s.summary)),
        ("Evidence", escape(evidence_text(s))),
        ("Cross-check", escape(s.citation.cross_check)),
    ]
    if s.citation.sources:
        rows.insert(-1, ("Sources", "<ul>" + "".join(_source_item(kb, sid) for sid in s.citation.sources) + "</ul>"))
    if s.detail:
        rows.insert(3, ("Detail", escape(s.detail)))
    if s.citation.derived_from:
        links = ", ".join(f'<a href="{escape(d)}">{escape(d)}</a>' for d in s.citation.derived_from)
        rows.append(("Derived from", links))
    if s.overrides:
        rows.append(("Takes precedence over", escape(", ".join(s.overrides))))
    if s.flags:
        rows.append(("Flags", escape(", ".join(s.flags))))
    table = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    heading = f"<h1>{escape(s.id)}: {escape(s.title)}</h1>"
    return f'<p><a href="../statements">All statements</a></p>{heading}<table>{table}</table>'


def _source_item(kb: KnowledgeBase, source_id: str) -> str:
    doc = kb.sources[source_id]
    parts = [f"<strong>{escape(doc.id)}</strong> {escape(doc.label)}"]
    if doc.file:
        parts.append(f"file <code>{escape(doc.file)}</code>")
    if doc.url:
        parts.append(f'<a href="{escape(doc.url)}">{escape(doc.url)}</a>')
    parts.append(f"dated {escape(doc.date)}")
    if doc.note:
        parts.append(escape(doc.note))
    return "<li>" + "; ".join(parts) + "</li>"
