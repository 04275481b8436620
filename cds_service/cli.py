"""``sarcoma-cds``: serve the service, check its settings, migrate its database, evaluate charts,
measure their cards, build hook requests, load fixtures.

``serve`` runs the checks of ``check-config`` first (every setting, the trusted-issuers file, the
knowledge base), so a bad setting is one line and exit status 2, not a traceback per gunicorn worker.
``evaluate``, ``card-report`` and ``request`` need no server: they read a fixture bundle (a slug from
``fhir_fixtures/`` or a path) and answer the prefetch templates locally (``fhir_fixtures.ehr``), so the
terminal shows the same cards the hook endpoint returns; ``evaluate`` also reads a searchset Bundle
or a hook request. ``card-report`` measures every fixture chart against the ten-second targets of
clinical rule R6. Problems with the input (missing file, invalid bundle, bad date, bad setting) exit
with status 2 and one line on stderr each.

A subcommand is one ``_add_<name>`` function in ``SUBCOMMANDS`` that adds its parser and sets
``func``, which returns the exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config
    from .knowledge import KnowledgeBase

PROG = "sarcoma-cds"
DEFAULT_BASE_URL = "http://127.0.0.1:8080"


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit status 2."""


class Refused(Exception):
    """The FHIR server refused the credentials: every further bundle would fail the same way."""


# --- serve, check-config, settings --------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    """Check the settings (one line per problem, exit 2), then gunicorn, or Flask's server with --dev."""
    from .config import ConfigError, check

    if args.sandbox:
        os.environ["CDS_SANDBOX"] = "true"
    config = _config()
    given = {name: getattr(args, name) for name in ("host", "port", "workers", "threads")}
    config = config.with_overrides(**{name: value for name, value in given.items() if value is not None})
    problems = check(config)
    if problems:
        raise ConfigError(problems)
    for name, value in given.items():  # workers build their settings from the environment: the same ones
        if value is not None:
            os.environ[f"CDS_{name.upper()}"] = str(value)
    from . import announce_insecure, logs

    logs.configure(config.log_format, config.log_level)
    announce_insecure(config)  # once, before gunicorn forks the workers (they inherit that it was said)
    if args.dev:
        from . import create_app

        create_app(config).run(host=config.host, port=config.port, debug=False, threaded=True)
        return 0
    from gunicorn.app.wsgiapp import run

    from .metrics import multiprocess_directory

    sys.argv = gunicorn_argv(config)
    with multiprocess_directory(config.metrics):  # the workers' shared metrics folder, before any fork
        run()
    return 0


def gunicorn_argv(config: Config) -> list[str]:
    """The gunicorn command line: the service's own log lines replace gunicorn's access log; with
    metrics on, ``gunicorn_hooks`` tidies prometheus-client's files of each worker that exits."""
    hooks = ["--config", "python:cds_service.gunicorn_hooks"] if config.metrics else []
    return [
        "gunicorn",
        *hooks,
        "--bind",
        f"{config.host}:{config.port}",
        "--workers",
        str(config.workers),
        "--threads",
        str(config.threads),
        "--timeout",
        "30",
        "--logger-class",
        "cds_service.gunicorn_logging.Logger",
        "--log-level",
        config.log_level.lower(),
        "cds_service.wsgi:app",
    ]


def _config() -> Config:
    from .config import Config

    return Config.from_env()  # ConfigError: main prints one line per bad setting


def _check_config(args: argparse.Namespace) -> int:
    """Every setting and the files they name, as start-up reads them; exit 2 on any problem."""
    from .config import ConfigError, check, insecure_notice, warnings

    config = _config()
    problems = check(config)
    for warning in filter(None, [insecure_notice(config), *warnings(config)]):
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if problems:
        raise ConfigError(problems)
    auth = "required" if config.auth_required else "off"
    from .storage.stores import database_of

    where = database_of(config).describe()  # no connection opened; the password is not shown
    print(f"configuration ok: authentication {auth}, cards from {config.cards_dir}, feedback in {where}")
    return 0


def _settings(args: argparse.Namespace) -> int:
    from .config import settings_table

    sys.stdout.write(settings_table())
    return 0


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("sarcoma-cds")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


# --- evaluate ---------------------------------------------------------------------------------


def _today(value: str | None, *fallbacks: date | None) -> date:
    if value is None:
        return next((day for day in fallbacks if day is not None), date.today())
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--today must be YYYY-MM-DD, not {value!r}") from None


@dataclass(frozen=True)
class Chart:
    """What ``evaluate`` reads: the resources the service would see, and what the EHR could not give."""

    patient: str
    resources: list[dict[str, Any]]
    unavailable: dict[str, str]


def _evaluate(args: argparse.Namespace) -> int:
    from fhir_fixtures.ehr import list_fixtures, resolve

    config = _config()
    path = resolve(args.fixture, config.fixtures_dir)
    chart = read_chart(path)
    fixtures = list_fixtures(config.fixtures_dir)
    same_file = [f for f in fixtures if f.file.resolve() == path.resolve()]
    fixture = next(iter(same_file or [f for f in fixtures if f.patient and f.patient == chart.patient]), None)
    today = _today(args.today, fixture.today if fixture else None, config.today)
    knowledge = _knowledge(config)
    response = _cards_response(chart.resources, chart.unavailable, knowledge, config, today, args.base_url)
    if args.json:
        print(json.dumps(response, indent=2, ensure_ascii=False))
    else:
        print(f"{args.fixture}: {len(response['cards'])} card(s) for Patient/{chart.patient} on {today.isoformat()}")
        for card in response["cards"]:
            print()
            print(card_text(card, knowledge))
    return 0


def read_chart(path: Path) -> Chart:
    """A transaction, collection or searchset Bundle, or a hook request (what ``request`` prints).

    A Bundle is answered through the prefetch templates, as the EHR would; a hook request is read
    through the service's own gather step, so its prefetch means what it means to the hook endpoint
    (``null``: no data; an OperationOutcome: unavailable). Nothing is fetched: a request whose prefetch
    lacks a key, or a paged searchset, is refused rather than evaluated on part of the chart.
    """
    from fhir_fixtures.ehr import FixtureError, read_json

    document = read_json(path)
    if isinstance(document, dict) and "hook" in document and "resourceType" not in document:
        return _chart_of_request(document, path)
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        return _chart_of_bundle(document, path)
    raise FixtureError(f"{path}: neither a FHIR Bundle nor a CDS Hooks request")


def _chart_of_bundle(bundle: dict[str, Any], path: Path) -> Chart:
    from fhir_fixtures.ehr import FixtureError, build_prefetch, check_bundle, request_context

    from .bundle import MalformedBundle, bundle_resources, next_link

    kind = bundle.get("type")
    if kind == "searchset":
        try:
            if next_link(bundle):
                raise FixtureError(f"{path}: the searchset has further pages (a 'next' link); save every page in one")
            entries = [{"resource": resource} for resource in bundle_resources(bundle)]
        except MalformedBundle as error:
            raise FixtureError(f"{path}: {error}") from None
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    elif kind not in ("transaction", "collection"):
        raise FixtureError(f"{path}: Bundle.type must be transaction, collection or searchset, not {kind!r}")
    check_bundle(bundle, str(path))
    context = request_context(bundle)
    return Chart(context["patientId"], _prefetched_resources(build_prefetch(bundle, context)), {})


def _chart_of_request(body: dict[str, Any], path: Path) -> Chart:
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import replace

    from fhir_fixtures.ehr import FixtureError

    from .errors import CdsError, PrefetchUnavailable
    from .fhir.client import Deadline
    from .fhir.gather import gather
    from .protocol.request import parse_hook_request
    from .protocol.services import SERVICES

    service = next((s for s in SERVICES.values() if s.hook == body.get("hook")), None)
    if service is None:
        raise FixtureError(f"{path}: the service answers no hook {body.get('hook')!r}")
    try:
        hook = replace(parse_hook_request(body, service), fhir_server=None, fhir_authorization=None)
        with ThreadPoolExecutor(max_workers=1) as unused:  # no fhirServer: gather never fetches
            gathered = gather(hook, service, client_for=_no_client, executor=unused, deadline=Deadline.after(1.0))
    except PrefetchUnavailable as error:
        missing = ", ".join(error.expression)
        raise FixtureError(f"{path}: evaluate reads only the prefetch, which lacks {missing}") from None
    except CdsError as error:
        raise FixtureError(f"{path}: not a valid hook request: {error.message}") from None
    return Chart(hook.patient_id, gathered.resources, gathered.unavailable)


def _no_client(hook: Any) -> Any:
    raise UsageError("evaluate does not call FHIR servers")


def _knowledge(config: Config) -> KnowledgeBase:
    from .knowledge import KnowledgeError, load_knowledge

    try:
        return load_knowledge(config.cards_dir)
    except KnowledgeError as error:
        raise UsageError(f"the knowledge base is invalid: {error}") from None


def _response(
    bundle: dict[str, Any], knowledge: KnowledgeBase, config: Config, today: date, base_url: str
) -> dict[str, Any]:
    """The CDS Hooks response the hook endpoint would give for this bundle, as JSON."""
    from fhir_fixtures.ehr import build_prefetch, request_context

    resources = _prefetched_resources(build_prefetch(bundle, request_context(bundle)))
    return _cards_response(resources, {}, knowledge, config, today, base_url)


def _cards_response(
    resources: list[dict[str, Any]],
    unavailable: dict[str, str],
    knowledge: KnowledgeBase,
    config: Config,
    today: date,
    base_url: str,
) -> dict[str, Any]:
    from .engine import cards_for
    from .protocol.cards import CdsResponse

    cards = cards_for(
        resources,
        knowledge=knowledge,
        base_url=base_url,
        today=today,
        synchronous_months=config.synchronous_months,
        unavailable=unavailable,
    )
    return CdsResponse(cards=tuple(cards)).to_json()


def _prefetched_resources(prefetch: dict[str, Any]) -> list[dict[str, Any]]:
    """What the service reads from this prefetch: the resource, or each searchset entry."""
    from .bundle import bundle_resources

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


def card_text(card: dict[str, Any], knowledge: KnowledgeBase | None = None) -> str:
    """One card as an EHR would show it: indicator, summary, detail, source, statements, links.

    Levels of evidence are worded as their source must be quoted (R6), from ``knowledge`` when given.
    """
    extension = card.get("extension") or {}
    lines = [f"[{card['indicator'].upper()}] {card['summary']}"]
    statements = extension.get("org.sarcoma-cds.statements") or []
    if statements:
        lines.append(f"  statements: {', '.join(statements)}")
    for evidence in extension.get("org.sarcoma-cds.evidence") or []:
        if evidence.get("level"):
            lines.append(f"  evidence {evidence['statement']}: {_evidence_words(evidence, knowledge)}")
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


def _evidence_words(evidence: dict[str, Any], knowledge: KnowledgeBase | None) -> str:
    from .knowledge.render import evidence_text

    statement = knowledge.statement(evidence["statement"]) if knowledge else None
    return evidence_text(statement) if statement else str(evidence.get("text") or evidence["level"])


# --- card-report ------------------------------------------------------------------------------

MAX_CARDS = 3  # plus the data-quality card (R6)
DETAIL_WORDS_MAX = 200  # per card; "about 150" (R6), at most 200 (issue 12)
DETAIL_WORDS_MEDIAN = 150
RAW_VALUES = re.compile(r"(?<![\w/-])sts(?![\w-])|\bextent none\b|(?<![\w/.-])[a-z]+_[a-z_]+\b")
"""Raw enum values and fact keys that must not reach a clinician (R6), beside ``INTERNAL_LANGUAGE``."""


@dataclass(frozen=True)
class CardMeasure:
    indicator: str
    summary: str
    summary_words: int
    detail_words: int
    data_quality: bool


@dataclass(frozen=True)
class ChartReport:
    slug: str
    cards: tuple[CardMeasure, ...]
    failures: tuple[str, ...]

    @property
    def counted(self) -> int:
        """Cards counted against the R6 limit: the data-quality card comes on top."""
        return sum(not c.data_quality for c in self.cards)


def _card_report(args: argparse.Namespace) -> int:
    from fhir_fixtures.ehr import list_fixtures, load_bundle

    from .config import Config

    config = Config.from_env()
    knowledge = _knowledge(config)
    fixtures = list_fixtures(config.fixtures_dir)
    if args.fixtures:
        unknown = sorted(set(args.fixtures) - {f.slug for f in fixtures})
        if unknown:
            raise UsageError(f"no such fixture: {', '.join(unknown)}")
        fixtures = [f for f in fixtures if f.slug in args.fixtures]
    charts = []
    for fixture in fixtures:
        response = _response(load_bundle(fixture.file), knowledge, config, fixture.today or date.today(), args.base_url)
        charts.append(measure_chart(fixture.slug, response["cards"], knowledge))
    text = "\n".join(report_lines(charts, knowledge.version)) + "\n"
    sys.stdout.write(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    failed = any(chart.failures for chart in charts) or _median_detail(charts) > DETAIL_WORDS_MEDIAN
    return 1 if args.check and failed else 0


def measure_chart(slug: str, cards: list[dict[str, Any]], knowledge: KnowledgeBase) -> ChartReport:
    """One chart's cards measured against the R6 targets; ``failures`` says which missed and why."""
    measures = tuple(_measure_card(card, knowledge) for card in cards)
    failures = []
    counted = sum(not m.data_quality for m in measures)
    if counted > MAX_CARDS:
        failures.append(f"{counted} cards besides data quality (at most {MAX_CARDS})")
    failures += _headline_failures(cards, knowledge)
    long = [m.detail_words for m in measures if m.detail_words > DETAIL_WORDS_MAX]
    if long:
        failures.append(f"detail of {', '.join(map(str, long))} words (at most {DETAIL_WORDS_MAX} per card)")
    failures += [f"internal language on a card: {word!r}" for word in _internal_words(cards)]
    return ChartReport(slug, measures, tuple(failures))


def _ids(card: dict[str, Any]) -> list[str]:
    return list((card.get("extension") or {}).get("org.sarcoma-cds.statements") or [])


def _measure_card(card: dict[str, Any], knowledge: KnowledgeBase) -> CardMeasure:
    shown = [knowledge.statement(sid) for sid in _ids(card)]
    return CardMeasure(
        indicator=card["indicator"],
        summary=card["summary"],
        summary_words=len(card["summary"].split()),
        detail_words=len(plain_text(card.get("detail") or "").split()),
        data_quality=any(s is not None and s.data_quality is not None for s in shown),
    )


def _headline_failures(cards: list[dict[str, Any]], knowledge: KnowledgeBase) -> list[str]:
    """Where an option applies, the headline (the first card with a guideline statement) names one."""
    shown = [knowledge.statement(sid) for card in cards for sid in _ids(card)]
    options = {s.option.lower() for s in shown if s is not None and s.role == "recommendation" and s.option}
    if not options:
        return []
    headline = next((c for c in cards if any(sid.startswith("S") for sid in _ids(c))), None)
    if headline is None or not any(option in headline["summary"].lower() for option in options):
        return ["the headline summary names no option"]
    return []


def _internal_words(cards: list[dict[str, Any]]) -> list[str]:
    from .knowledge.model import INTERNAL_LANGUAGE

    texts = [c["summary"] for c in cards] + [plain_text(c.get("detail") or "") for c in cards]
    texts += [c["source"].get("label") or "" for c in cards]
    texts += [item["label"] for c in cards for item in [*(c.get("links") or []), *(c.get("suggestions") or [])]]
    found = [m.group(0) for t in texts for pattern in (INTERNAL_LANGUAGE, RAW_VALUES) for m in pattern.finditer(t)]
    return sorted(set(found))


def _median_detail(charts: Sequence[ChartReport]) -> float:
    words = [c.detail_words for chart in charts for c in chart.cards]
    return statistics.median(words) if words else 0


def report_lines(charts: Sequence[ChartReport], version: str) -> list[str]:
    """Per chart: cards, words and the ten-second view; then medians, maxima and the R6 targets."""
    lines = [
        f"Card report over {len(charts)} chart(s), knowledge base {version}",
        "Per chart: its cards, then the ten-second view (each card: summary words / detail words, summary).",
        "",
    ]
    for chart in charts:
        lines += _chart_lines(chart) + [""]
    return lines + _total_lines(charts)


def _chart_lines(chart: ChartReport) -> list[str]:
    summary = sum(c.summary_words for c in chart.cards)
    detail = sum(c.detail_words for c in chart.cards)
    extra = " + data quality" if chart.counted < len(chart.cards) else ""
    verdict = "FAIL" if chart.failures else "PASS"
    lines = [
        f"{chart.slug}: {chart.counted} card(s){extra}; summaries {summary} words; detail {detail} words; {verdict}"
    ]
    for n, card in enumerate(chart.cards, start=1):
        words = f"{card.summary_words:>3} / {card.detail_words:>3} words"
        lines.append(f"  {n}. [{card.indicator}] {words}  {card.summary}")
    return lines + [f"  FAIL: {failure}" for failure in chart.failures]


def _total_lines(charts: Sequence[ChartReport]) -> list[str]:
    def spread(values: list[int]) -> str:
        return f"median {statistics.median(values):g}, max {max(values)}" if values else "none"

    cards = [c for chart in charts for c in chart.cards]
    median_detail = _median_detail(charts)
    passed = sum(not chart.failures for chart in charts)
    summary_words = [sum(c.summary_words for c in chart.cards) for chart in charts]
    detail_words = [sum(c.detail_words for c in chart.cards) for chart in charts]
    verdict = "PASS" if median_detail <= DETAIL_WORDS_MEDIAN else "FAIL"
    return [
        "Totals",
        f"  cards per chart, data quality aside: {spread([chart.counted for chart in charts])}",
        f"  cards per chart, all:                {spread([len(chart.cards) for chart in charts])}",
        f"  words in the summaries per chart:    {spread(summary_words)}",
        f"  words in each card summary:          {spread([c.summary_words for c in cards])}",
        f"  words of detail per card:            {spread([c.detail_words for c in cards])}",
        f"  words of detail per chart:           {spread(detail_words)}",
        "Targets (clinical rules R6): at most 3 cards plus data quality; the headline summary names the",
        f"options; about 150 words of detail per card (at most {DETAIL_WORDS_MAX}, median at most "
        f"{DETAIL_WORDS_MEDIAN}); no internal language on a card",
        f"  charts meeting every target: {passed} of {len(charts)}",
        f"  median detail per card: {median_detail:g} words: {verdict}",
    ]


# --- request ----------------------------------------------------------------------------------


def _request(args: argparse.Namespace) -> int:
    from fhir_fixtures.ehr import hook_request, list_fixtures, stable_hook_instance

    from .config import Config

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
    from .bundle import entries as bundle_entries

    entries = []
    for entry in bundle_entries(bundle):
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
    from .bundle import MalformedBundle, entries

    try:
        answered = entries(response.json())
    except (ValueError, AttributeError, MalformedBundle):
        return "the answer is not a transaction-response Bundle"
    rejected = [str((e.get("response") or {}).get("status", "?")) for e in answered]
    rejected = [status for status in rejected if not status.startswith("2")]
    return f"{len(rejected)} entries rejected ({', '.join(rejected[:5])})" if rejected else None


def _load_fixtures(args: argparse.Namespace) -> int:
    import requests

    from fhir_fixtures.ehr import load_bundle

    from .config import Config

    files = _bundle_files(args.paths, Config.from_env().fixtures_dir)
    bundles = [as_transaction(load_bundle(path)) for path in files]  # all valid before any is sent
    base_url = args.fhir.rstrip("/")
    session = requests.Session()
    session.headers.update({"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"})
    if args.token:
        session.headers["Authorization"] = f"Bearer {args.token}"
    failures: list[str] = []
    for n, (path, bundle) in enumerate(zip(files, bundles, strict=True), start=1):
        started = time.perf_counter()
        print(f"[{n}/{len(files)}] {path.stem} ... ", end="", flush=True)
        try:
            problem = _post_bundle(session, base_url, bundle, (5.0, args.timeout))
        except requests.RequestException as error:
            print("failed")
            print(
                f"{PROG}: error: cannot reach the FHIR server at {base_url} ({type(error).__name__})", file=sys.stderr
            )
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
        print(
            f"{PROG}: error: {len(failures)} of {len(files)} bundle(s) failed: {', '.join(failures)}", file=sys.stderr
        )
        return 1
    print(f"loaded {len(files)} bundle(s) into {base_url}")
    return 0


# --- feedback-report --------------------------------------------------------------------------


def _feedback_report(args: argparse.Namespace) -> int:
    from .feedback_report import ReportError, run
    from .storage.database import SqliteDatabase
    from .storage.stores import database_of

    db = SqliteDatabase(Path(args.db)) if args.db else database_of(_config())
    try:
        return run(db, Path(args.png) if args.png else None)
    except ReportError as error:
        raise UsageError(str(error)) from None


def _add_feedback_report(commands: Commands) -> None:
    report = commands.add_parser("feedback-report", help="per statement: cards shown, accepted, overridden and why")
    report.add_argument(
        "--db", metavar="PATH", help="a feedback SQLite file (default: CDS_DATABASE_URL, else CDS_FEEDBACK_DB)"
    )
    report.add_argument("--png", metavar="FILE", help="also write a bar plot (needs matplotlib, the bench extra)")
    report.set_defaults(func=_feedback_report)


# --- migrate ----------------------------------------------------------------------------------


def _migrate(args: argparse.Namespace) -> int:
    """Apply the missing schema migrations to the configured database (one line per migration)."""
    from .storage import StoreDown
    from .storage.migrations import LATEST, current_version, migrate
    from .storage.stores import database_of

    db = database_of(_config())
    try:
        if args.check:
            version = current_version(db)
            print(f"{db.describe()}: schema version {version}, this release's is {LATEST}")
            return 0 if version == LATEST else 1
        applied = migrate(db)
    except StoreDown as down:
        raise UsageError(f"cannot migrate the database at {db.describe()} ({down.reason})") from None
    finally:
        db.close()
    for migration in applied:
        print(f"applied {migration.version}: {migration.summary}")
    print(f"{db.describe()}: schema version {LATEST}" + ("" if applied else " (already up to date)"))
    return 0


def _add_migrate(commands: Commands) -> None:
    migrate = commands.add_parser(
        "migrate", help="bring the database's schema to this release's version (CDS_DATABASE_URL or CDS_FEEDBACK_DB)"
    )
    migrate.add_argument("--check", action="store_true", help="only say the version; exit 1 unless up to date")
    migrate.set_defaults(func=_migrate)


# --- parser -----------------------------------------------------------------------------------


def _add_serve(commands: Commands) -> None:
    serve = commands.add_parser("serve", help="check the settings, then run the service (gunicorn; --dev: Flask)")
    serve.add_argument("--host", help="address to bind (CDS_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (CDS_PORT; default 8080)")
    serve.add_argument("--workers", type=int, help="gunicorn worker processes (CDS_WORKERS; default 2)")
    serve.add_argument("--threads", type=int, help="request threads per worker (CDS_THREADS; default 4)")
    serve.add_argument("--dev", action="store_true", help="Flask's development server instead of gunicorn")
    serve.add_argument("--sandbox", action="store_true", help="serve the sandbox page at /sandbox")
    serve.set_defaults(func=_serve)


def _add_check_config(commands: Commands) -> None:
    check = commands.add_parser(
        "check-config", help="check every CDS_* setting, the trusted-issuers file and cards/ (exit 2 on a problem)"
    )
    check.set_defaults(func=_check_config)
    settings = commands.add_parser("settings", help="print every CDS_* setting with its default (Markdown table)")
    settings.set_defaults(func=_settings)


def _add_evaluate(commands: Commands) -> None:
    evaluate = commands.add_parser("evaluate", help="print the cards for a patient's chart (no server needed)")
    evaluate.add_argument(
        "fixture",
        metavar="CHART",
        help="fixture slug, or a file: a transaction, collection or searchset Bundle, or a hook request",
    )
    evaluate.add_argument("--json", action="store_true", help="print the CDS Hooks response JSON")
    evaluate.add_argument("--today", help="evaluate as of YYYY-MM-DD (default: the fixture's date, else CDS_TODAY)")
    evaluate.add_argument(
        "--base-url", default=DEFAULT_BASE_URL, help=f"service URL for card links ({DEFAULT_BASE_URL})"
    )
    evaluate.set_defaults(func=_evaluate)


def _add_request(commands: Commands) -> None:
    request = commands.add_parser("request", help="print the patient-view request an EHR would send")
    request.add_argument("fixture", nargs="?", metavar="FIXTURE", help="fixture slug or path to a Bundle file")
    request.add_argument("--no-prefetch", action="store_true", help="send no prefetch (needs --fhir)")
    request.add_argument("--fhir", metavar="URL", help="fhirServer for the request")
    request.add_argument("--token", help="bearer token sent as fhirAuthorization (needs --fhir)")
    request.add_argument("--hook-instance", metavar="UUID", help="fixed hookInstance (default: a new uuid4)")
    request.add_argument("--all", action="store_true", help="every indexed fixture, with stable hookInstance ids")
    request.add_argument(
        "--out", metavar="PATH", help="write to this file (or, with --all, <slug>.json in this folder)"
    )
    request.set_defaults(func=_request)


def _add_card_report(commands: Commands) -> None:
    report = commands.add_parser("card-report", help="measure the cards of every fixture against the R6 targets")
    report.add_argument("fixtures", nargs="*", metavar="FIXTURE", help="fixture slugs (default: every indexed one)")
    report.add_argument("--check", action="store_true", help="exit 1 when any chart misses a target")
    report.add_argument("--out", metavar="FILE", help="also write the report to this file")
    report.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"service URL for card links ({DEFAULT_BASE_URL})")
    report.set_defaults(func=_card_report)


def _add_load_fixtures(commands: Commands) -> None:
    load = commands.add_parser("load-fixtures", help="POST fixture bundles to a FHIR server as transactions")
    load.add_argument("paths", nargs="*", metavar="DIR_OR_FILE", help="bundles or folders (default: fhir_fixtures/)")
    load.add_argument("--fhir", metavar="URL", required=True, help="FHIR server base URL")
    load.add_argument("--token", help="bearer token for the FHIR server")
    load.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each bundle (60)")
    load.set_defaults(func=_load_fixtures)


Commands = Any  # argparse's subparsers action (a private class)

SUBCOMMANDS: tuple[Callable[[Commands], None], ...] = (
    _add_serve,
    _add_check_config,
    _add_evaluate,
    _add_request,
    _add_card_report,
    _add_load_fixtures,
    _add_feedback_report,
    _add_migrate,
)
"""One function per subcommand: it adds its parser and sets ``func``, which returns the exit status."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="CDS Hooks 2.0 service for soft tissue sarcoma.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from fhir_fixtures.ehr import FixtureError

    from .config import ConfigError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as error:
        for problem in error.problems:
            print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 2
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
