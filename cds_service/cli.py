"""``sarcoma-cds``: serve the service, evaluate fixtures, build hook requests, load fixtures.

``evaluate`` and ``request`` need no server: they read a fixture bundle (a slug from
``fhir_fixtures/`` or a path) and answer the prefetch templates locally (``fixtures.py``), so the
terminal shows the same cards the hook endpoint returns. Problems with the input (missing file,
invalid bundle, bad date) exit with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any, Sequence

PROG = "sarcoma-cds"
DEFAULT_BASE_URL = "http://127.0.0.1:8080"


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit status 2."""


class Refused(Exception):
    """The FHIR server refused the credentials: every further bundle would fail the same way."""


def _serve(args: argparse.Namespace) -> int:
    if args.sandbox:
        os.environ["CDS_SANDBOX"] = "true"
    if args.dev:
        from . import create_app

        create_app().run(host=args.host, port=args.port, debug=False, threaded=True)
        return 0
    from gunicorn.app.wsgiapp import run

    sys.argv = [
        "gunicorn",
        "--bind", f"{args.host}:{args.port}",
        "--workers", str(args.workers),
        "--threads", str(args.threads),
        "--timeout", "30",
        "--access-logfile", "-",
        "--access-logformat", '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms',
        "cds_service.wsgi:app",
    ]
    run()
    return 0


# --- evaluate ---------------------------------------------------------------------------------


def _today(value: str | None, fixture_today: date | None) -> date:
    if value is None:
        return fixture_today or date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--today must be YYYY-MM-DD, not {value!r}") from None


def _evaluate(args: argparse.Namespace) -> int:
    from .config import Config
    from .engine import cards_for
    from .fixtures import build_prefetch, list_fixtures, load_bundle, request_context, resolve
    from .knowledge import KnowledgeError, load_knowledge
    from .protocol.cards import CdsResponse

    config = Config.from_env()
    bundle = load_bundle(args.fixture, config.fixtures_dir)
    path = resolve(args.fixture, config.fixtures_dir).resolve()
    fixture = next((f for f in list_fixtures(config.fixtures_dir) if f.file.resolve() == path), None)
    today = _today(args.today, fixture.today if fixture else None)
    try:
        knowledge = load_knowledge(config.cards_dir)
    except KnowledgeError as error:
        raise UsageError(f"the knowledge base is invalid: {error}") from None
    context = request_context(bundle)
    cards = cards_for(
        _prefetched_resources(build_prefetch(bundle, context)),
        knowledge=knowledge,
        base_url=args.base_url,
        today=today,
        synchronous_months=config.synchronous_months,
    )
    response = CdsResponse(cards=tuple(cards)).to_json()
    if args.json:
        print(json.dumps(response, indent=2, ensure_ascii=False))
    else:
        print(f"{args.fixture}: {len(cards)} card(s) for Patient/{context['patientId']} on {today.isoformat()}")
        for card in response["cards"]:
            print()
            print(card_text(card))
    return 0


def _prefetched_resources(prefetch: dict[str, Any]) -> list[dict[str, Any]]:
    """What the service reads from this prefetch: the resource, or each searchset entry."""
    from .fhir.client import bundle_resources

    resources: list[dict[str, Any]] = []
    for value in prefetch.values():
        if value is not None:
            resources += bundle_resources(value) if value.get("resourceType") == "Bundle" else [value]
    return resources


_ESCAPED = re.compile(r"\\([\\`*_\[\]<>#|.:@])")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_EMPHASIS = re.compile(r"(?<![\w\\])_(.+?)_(?!\w)")


def plain_text(markdown: str) -> str:
    """Card detail markdown as terminal text: markers dropped, escapes undone, links spelled out."""
    protected = _ESCAPED.sub(lambda m: f"\x00{ord(m.group(1))}\x00", markdown)
    text = _LINK.sub(r"\1 <\2>", protected.replace("**", ""))
    text = _EMPHASIS.sub(r"\1", text)
    text = re.sub(r"^#{1,6}\s+", "", text, flags=re.MULTILINE)
    return re.sub("\x00(\\d+)\x00", lambda m: chr(int(m.group(1))), text)


def card_text(card: dict[str, Any]) -> str:
    """One card as an EHR would show it: indicator, summary, detail, source, statements, links."""
    extension = card.get("extension") or {}
    lines = [f"[{card['indicator'].upper()}] {card['summary']}"]
    statements = extension.get("org.sarcoma-cds.statements") or []
    if statements:
        lines.append(f"  statements: {', '.join(statements)}")
    for evidence in extension.get("org.sarcoma-cds.evidence") or []:
        if evidence.get("level"):
            lines.append(f"  evidence {evidence['statement']}: {evidence['level']} as reported by {evidence['reported_by']}")
    if extension.get("org.sarcoma-cds.rationale"):
        lines.append(f"  rationale: {', '.join(extension['org.sarcoma-cds.rationale'])}")
    source = card["source"]
    lines.append(f"  source: {source['label']}" + (f" <{source['url']}>" if source.get("url") else ""))
    if card.get("detail"):
        lines.append("")
        lines.extend(f"    {line}".rstrip() for line in plain_text(card["detail"]).splitlines())
    if card.get("suggestions"):
        lines.append("  suggestions:")
        lines.extend(f"    - {s['label']}" for s in card["suggestions"])
    if card.get("links"):
        lines.append("  links:")
        lines.extend(f"    - {link['label']} <{link['url']}>" for link in card["links"])
    if card.get("overrideReasons"):
        lines.append("  override reasons: " + ", ".join(r["code"] for r in card["overrideReasons"]))
    return "\n".join(lines)


# --- request ----------------------------------------------------------------------------------


def _request(args: argparse.Namespace) -> int:
    from .config import Config
    from .fixtures import hook_request, list_fixtures, stable_hook_instance

    fixtures_dir = Config.from_env().fixtures_dir
    options = {"fhir_server": args.fhir, "token": args.token, "prefetch": not args.no_prefetch}
    if args.all:
        if args.fixture:
            raise UsageError("give either a fixture or --all, not both")
        if not args.out:
            raise UsageError("--all needs --out DIR")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        listed = list_fixtures(fixtures_dir)
        for fixture in listed:
            body = hook_request(fixture.file, hook_instance=stable_hook_instance(fixture.slug), **options)
            (out / f"{fixture.slug}.json").write_text(request_json(body), encoding="utf-8")
        print(f"wrote {len(listed)} request(s) to {out}", file=sys.stderr)
        return 0
    if not args.fixture:
        raise UsageError("name a fixture (slug or bundle file) or pass --all --out DIR")
    body = hook_request(args.fixture, fixtures_dir=fixtures_dir, hook_instance=args.hook_instance, **options)
    if args.out:
        Path(args.out).write_text(request_json(body), encoding="utf-8")
    else:
        sys.stdout.write(request_json(body))
    return 0


def request_json(body: dict[str, Any]) -> str:
    """The byte-stable form of a request file (what ``fhir_fixtures/requests/`` holds)."""
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


# --- load-fixtures ----------------------------------------------------------------------------


def _bundle_files(targets: Sequence[str], default_dir: Path) -> list[Path]:
    files: list[Path] = []
    for target in map(Path, targets or [str(default_dir)]):
        if target.is_dir():
            files += sorted(target.glob("*.json"))
        elif target.is_file():
            files.append(target)
        else:
            raise UsageError(f"{target}: no such file or folder")
    if not files:
        raise UsageError("no *.json bundles to load")
    return files


def as_transaction(bundle: dict[str, Any]) -> dict[str, Any]:
    """A collection Bundle becomes a transaction of PUTs to ``Type/id``, so ids stay as written."""
    if bundle.get("type") == "transaction":
        return bundle
    entries = []
    for entry in bundle.get("entry") or []:
        resource = entry["resource"]
        url = f"{resource['resourceType']}/{resource['id']}"
        entries.append({"fullUrl": url, "resource": resource, "request": {"method": "PUT", "url": url}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _outcome_text(response: Any) -> str:
    try:
        issues = response.json().get("issue") or []
        text = "; ".join(str(i.get("diagnostics") or i.get("code") or "") for i in issues)
    except ValueError:
        text = response.text
    return " ".join(text.split())[:300]


def _post_bundle(session: Any, base_url: str, bundle: dict[str, Any], timeout: tuple[float, float]) -> str | None:
    """POST one transaction; ``None`` when the server took every entry, else why not."""
    import requests

    try:
        response = session.post(base_url, data=json.dumps(bundle).encode(), timeout=timeout)
    except requests.Timeout:
        return f"no answer within {timeout[1]:g} s"
    if response.status_code in (401, 403):
        raise Refused(f"HTTP {response.status_code}: {_outcome_text(response)}")
    if response.status_code >= 300:
        return f"HTTP {response.status_code}: {_outcome_text(response)}"
    try:
        entries = response.json().get("entry") or []
    except ValueError:
        return "the answer is not JSON"
    rejected = [str((e.get("response") or {}).get("status", "?")) for e in entries]
    rejected = [status for status in rejected if not status.startswith("2")]
    return f"{len(rejected)} entries rejected ({', '.join(rejected[:5])})" if rejected else None


def _load_fixtures(args: argparse.Namespace) -> int:
    import requests

    from .config import Config
    from .fixtures import load_bundle

    files = _bundle_files(args.paths, Config.from_env().fixtures_dir)
    bundles = [as_transaction(load_bundle(path)) for path in files]  # all valid before any is sent
    base_url = args.fhir.rstrip("/")
    session = requests.Session()
    session.headers.update({"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"})
    if args.token:
        session.headers["Authorization"] = f"Bearer {args.token}"
    failures: list[str] = []
    for n, (path, bundle) in enumerate(zip(files, bundles), start=1):
        started = time.perf_counter()
        print(f"[{n}/{len(files)}] {path.stem} ... ", end="", flush=True)
        try:
            problem = _post_bundle(session, base_url, bundle, (5.0, args.timeout))
        except requests.RequestException as error:
            print("failed")
            print(f"{PROG}: error: cannot reach the FHIR server at {base_url} ({type(error).__name__})", file=sys.stderr)
            return 1
        except Refused as refused:
            print("failed")
            hint = "check --token" if args.token else "it needs a token: pass --token"
            print(f"{PROG}: error: the FHIR server refused the request ({refused}); {hint}", file=sys.stderr)
            return 1
        elapsed = time.perf_counter() - started
        print(f"ok ({elapsed:.2f} s)" if problem is None else f"failed ({elapsed:.2f} s): {problem}", flush=True)
        if problem is not None:
            failures.append(path.stem)
    if failures:
        print(f"{PROG}: error: {len(failures)} of {len(files)} bundle(s) failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    print(f"loaded {len(files)} bundle(s) into {base_url}")
    return 0


# --- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="CDS Hooks 2.0 service for soft tissue sarcoma.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the CDS service (gunicorn; --dev for Flask's server)")
    serve.add_argument("--host", default=os.environ.get("CDS_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("CDS_PORT", "8080")))
    serve.add_argument("--workers", type=int, default=int(os.environ.get("CDS_WORKERS", "2")))
    serve.add_argument("--threads", type=int, default=int(os.environ.get("CDS_THREADS", "4")))
    serve.add_argument("--dev", action="store_true", help="Flask's development server instead of gunicorn")
    serve.add_argument("--sandbox", action="store_true", help="serve the sandbox page at /sandbox")
    serve.set_defaults(func=_serve)

    evaluate = commands.add_parser("evaluate", help="print the cards for a fixture patient (no server needed)")
    evaluate.add_argument("fixture", metavar="FIXTURE_OR_BUNDLE", help="fixture slug or path to a Bundle file")
    evaluate.add_argument("--json", action="store_true", help="print the CDS Hooks response JSON")
    evaluate.add_argument("--today", help="evaluate as of YYYY-MM-DD (default: the fixture's date, else today)")
    evaluate.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"service URL for card links ({DEFAULT_BASE_URL})")
    evaluate.set_defaults(func=_evaluate)

    request = commands.add_parser("request", help="print the patient-view request an EHR would send")
    request.add_argument("fixture", nargs="?", metavar="FIXTURE", help="fixture slug or path to a Bundle file")
    request.add_argument("--no-prefetch", action="store_true", help="send no prefetch (needs --fhir)")
    request.add_argument("--fhir", metavar="URL", help="fhirServer for the request")
    request.add_argument("--token", help="bearer token sent as fhirAuthorization (needs --fhir)")
    request.add_argument("--hook-instance", metavar="UUID", help="fixed hookInstance (default: a new uuid4)")
    request.add_argument("--all", action="store_true", help="every indexed fixture, with stable hookInstance ids")
    request.add_argument("--out", metavar="PATH", help="write to this file (or, with --all, <slug>.json in this folder)")
    request.set_defaults(func=_request)

    load = commands.add_parser("load-fixtures", help="POST fixture bundles to a FHIR server as transactions")
    load.add_argument("paths", nargs="*", metavar="DIR_OR_FILE", help="bundles or folders (default: fhir_fixtures/)")
    load.add_argument("--fhir", metavar="URL", required=True, help="FHIR server base URL")
    load.add_argument("--token", help="bearer token for the FHIR server")
    load.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each bundle (60)")
    load.set_defaults(func=_load_fixtures)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .fixtures import FixtureError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UsageError, FixtureError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped early (e.g. `head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
