"""Prometheus metrics (``CDS_METRICS=true``): hook latency by outcome, cards by statement, feedback by
outcome, FHIR reads by resource type and outcome (with pages and resources read), JWT rejections by reason.

Exposed at ``GET /metrics`` (``api/metrics.py``). Labels are the service id, an HTTP status class, a
statement id of the knowledge base, a feedback outcome, a resource type of the services' prefetch
templates, a fetch outcome of ``FETCH_OUTCOMES`` or a rejection reason of ``verify.REJECTION_REASONS``:
values the service chooses, never one a caller sent (anything else is counted as ``other``), so no
label can carry patient data and their number stays bounded.

Under gunicorn every worker is its own process, so the counts live in ``PROMETHEUS_MULTIPROC_DIR``
(prometheus-client's multiprocess mode): each worker writes its own files and a scrape, whichever
worker answers it, adds up those of every worker, those that have exited included. ``serve`` sets the
folder before gunicorn starts (``multiprocess_directory``); prometheus-client reads the variable when
it is first imported, which is why nothing here imports it at module level: the first import happens
in a worker, after the fork, once the variable is set. ``child_exit`` is gunicorn's hook for a worker
that has gone (``-c python:cds_service.gunicorn_hooks``).

FHIR reads are counted in the fetch threads, outside any request context, so the ``FhirClient`` of a
call is handed this app's ``Metrics`` (``Runtime.fhir_client``) rather than finding it through Flask.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, current_app, g, request, request_started

from .config import ConfigError
from .protocol.services import SERVICES

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from .feedback_store import FeedbackItem
    from .protocol.cards import Card

EXTENSION = "sarcoma_metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
HOOK_ENDPOINT = "hooks.call_service"
EXT_STATEMENTS = "org.sarcoma-cds.statements"  # as knowledge/render.py writes it on every card
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0)
"""Seconds; 2.0 is the default FHIR deadline (``CDS_FHIR_DEADLINE_S``), so calls that waited it out stand apart."""
FETCH_OUTCOMES = (
    "ok",  # a usable answer
    "timeout",  # the deadline passed: connect, headers or body
    "unreachable",  # refused, reset, truncated, not HTTP, not decodable
    "too-large",  # past CDS_FHIR_MAX_BYTES, or more pages than CDS_FHIR_MAX_PAGES
    "not-public",  # a development-switch server at a loopback, link-local or private address
    "busy",  # the server's share of fetch threads stayed taken until the deadline (no request made)
    "bad-token",  # the EHR's access token holds characters a header cannot carry (no request made)
    "token-refused",  # HTTP 401 or 403
    "http-error",  # any other status than 200
    "malformed",  # not JSON, not a resource, a malformed Bundle
)
OTHER = "other"


class Metrics:
    """The service's metric families, in a registry of their own (one per app, so tests may build many)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.hook_seconds = Histogram(
            "sarcoma_cds_hook_duration_seconds",
            "Hook calls: seconds from request to response, by service and HTTP status class",
            ["service", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cards_shown = Counter(
            "sarcoma_cds_cards_shown",
            "Cards returned by hook calls, by guideline statement cited (a card citing several counts for each)",
            ["statement"],
            registry=self.registry,
        )
        self.feedback_items = Counter(
            "sarcoma_cds_feedback_items",
            "Feedback items acknowledged (stored, or already stored), by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.card_cache = Counter(
            "sarcoma_cds_card_cache",
            "Hook calls answered from the repeat-open cache (hit) or by reading the record (miss)",
            ["outcome"],
            registry=self.registry,
        )
        self.fhir_seconds = Histogram(
            "sarcoma_cds_fhir_request_duration_seconds",
            "Requests to FHIR servers (a read, a search or one of its pages): seconds, by resource type and outcome",
            ["resource_type", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.fhir_pages = Counter(
            "sarcoma_cds_fhir_pages",
            "Searchset pages read from FHIR servers, by resource type",
            ["resource_type"],
            registry=self.registry,
        )
        self.fhir_resources = Counter(
            "sarcoma_cds_fhir_resources",
            "Resources read from FHIR servers, by resource type",
            ["resource_type"],
            registry=self.registry,
        )
        self.jwt_rejections = Counter(
            "sarcoma_cds_jwt_rejections",
            "Client JWTs refused with a 401, by reason",
            ["reason"],
            registry=self.registry,
        )

    # FHIR reads: called from fetch threads, through the FhirClient of the call

    def fhir_request(self, resource_type: str, outcome: str, seconds: float) -> None:
        outcome = outcome if outcome in FETCH_OUTCOMES else OTHER
        self.fhir_seconds.labels(resource_type=_resource_type(resource_type), outcome=outcome).observe(seconds)

    def fhir_read(self, resource_type: str, *, pages: int, resources: int) -> None:
        label = _resource_type(resource_type)
        if pages:
            self.fhir_pages.labels(resource_type=label).inc(pages)
        if resources:
            self.fhir_resources.labels(resource_type=label).inc(resources)

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The scrape body and its content type; in multiprocess mode the sum over every worker's files."""
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept or "")
        return encoder(self._collected()), content_type

    def _collected(self) -> CollectorRegistry:
        if not os.environ.get(MULTIPROC_ENV):
            return self.registry
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry


def _resource_type(name: str) -> str:
    return name if name in _prefetched_types() else OTHER


@cache
def _prefetched_types() -> frozenset[str]:
    """The resource types the services' prefetch templates ask for, and the Medications that medication
    records reference (``fhir.gather``): the only ``resource_type`` labels."""
    templates = (service.resource_type(key) for service in SERVICES.values() for key in service.prefetch)
    return frozenset([*templates, "Medication"])


def init_app(app: Flask) -> None:
    """Count every hook call once its response is ready, a 401 from the JWT guard or a 500 included.

    The clock starts on Flask's ``request_started`` signal, sent before any ``before_request``
    function, so a guard that answers early does not leave the call untimed.
    """
    app.extensions[EXTENSION] = Metrics()
    request_started.connect(_started, app)
    app.after_request(_finished)


def _current() -> Metrics | None:
    metrics = current_app.extensions.get(EXTENSION)
    return metrics if isinstance(metrics, Metrics) else None


def _started(sender: Flask, **extra: Any) -> None:
    g.metrics_started = time.perf_counter()


def _finished(response: Response) -> Response:
    started = g.get("metrics_started")
    metrics = _current()
    if metrics is None or started is None or request.endpoint != HOOK_ENDPOINT or request.method != "POST":
        return response
    service = (request.view_args or {}).get("service_id")
    labels = {"service": service if service in SERVICES else "unknown", "outcome": status_class(response.status_code)}
    metrics.hook_seconds.labels(**labels).observe(time.perf_counter() - started)
    return response


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def record_cards(cards: Sequence[Card]) -> None:
    """Count the statements the cards of one hook call cite (a no-op when metrics are off)."""
    metrics = _current()
    if metrics is None:
        return
    for card in cards:
        for statement in (card.extension or {}).get(EXT_STATEMENTS) or ():
            metrics.cards_shown.labels(statement=str(statement)).inc()


def record_cache(hit: bool) -> None:
    """Count a repeat-open cache lookup (a no-op when metrics are off)."""
    metrics = _current()
    if metrics is not None:
        metrics.card_cache.labels(outcome="hit" if hit else "miss").inc()


def current() -> Metrics | None:
    """This app's metrics, or None when they are off (for the FHIR client of a hook call)."""
    return _current()


def record_jwt_rejection(reason: str) -> None:
    """Count a refused client JWT by its reason (a no-op when metrics are off)."""
    from .auth.verify import REJECTION_REASONS

    metrics = _current()
    if metrics is not None:
        metrics.jwt_rejections.labels(reason=reason if reason in REJECTION_REASONS else OTHER).inc()


def record_feedback(items: Iterable[FeedbackItem]) -> None:
    """Count acknowledged feedback items by outcome, ``accepted`` or ``overridden`` (a no-op when off)."""
    metrics = _current()
    if metrics is None:
        return
    for item in items:
        metrics.feedback_items.labels(outcome=item.outcome).inc()


# --- gunicorn: the folder the workers share, and the hook for a worker that has gone ---------------


@contextmanager
def multiprocess_directory(enabled: bool) -> Iterator[Path | None]:
    """The folder gunicorn's workers keep their counts in, for as long as the server runs.

    Unless ``PROMETHEUS_MULTIPROC_DIR`` names one, a fresh folder is made for this run and removed when
    the server stops. A named folder is kept, but the counts of an earlier run in it (``*.db``) are
    removed first, as prometheus-client requires. Only the process that made the folder removes it:
    gunicorn's workers are forked inside this block and leave it too when they exit.
    """
    if not enabled:
        yield None
        return
    named = os.environ.get(MULTIPROC_ENV, "").strip()
    owner = os.getpid()
    path = Path(named) if named else Path(tempfile.mkdtemp(prefix="sarcoma-cds-metrics-"))
    if named:
        _clear(path)
    os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield path
    finally:
        if not named and os.getpid() == owner:
            shutil.rmtree(path, ignore_errors=True)


def _clear(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.db"):
            old.unlink()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError([f"{MULTIPROC_ENV}: {path} is not a writable folder ({reason})"]) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError([f"{MULTIPROC_ENV}: {path} is not a writable folder"])


def mark_worker_dead(pid: int) -> None:
    """prometheus-client's bookkeeping for a worker that has exited (its counts stay in the sums)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
