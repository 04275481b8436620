"""Soft tissue sarcoma CDS Hooks 2.0 service."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from flask import Flask
from flask_cors import CORS

from . import logs
from .api.http import OrjsonProvider
from .auth import init_app as init_auth
from .card_cache import CardCache
from .config import FHIR_THREADS, Config, ConfigError, exposure_problems, insecure_notice
from .errors import register_error_handlers
from .fhir.client import new_session
from .knowledge import load_knowledge
from .outbound import UpstreamSlots, WorkerBytes
from .runtime import Runtime, release_answer_bytes
from .storage.stores import open_stores
from .summary import load_tables

__all__ = ["create_app", "Config"]


def create_app(config: Config | None = None) -> Flask:
    """Build the app. Loading the knowledge base and the code tables validates them: a bad ``cards/``
    file or code table stops start-up, and so does a database whose schema is not this release's."""
    config = config or Config.from_env()
    if problems := exposure_problems(config):  # `serve` checked already; this guards other WSGI servers
        raise ConfigError(problems)
    logs.configure(config.log_format, config.log_level)  # first: start-up warnings below are written
    announce_insecure(config)
    app = Flask(__name__)
    logs.init_app(app)  # before the JWT guard, which may answer early
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json = OrjsonProvider(app)  # keeps the spec's field order in responses
    knowledge = load_knowledge(config.cards_dir)
    load_tables()  # the code tables too: a bad key stops start-up with one line
    app.extensions["sarcoma"] = Runtime(
        config=config,
        knowledge=knowledge,
        stores=open_stores(config),  # schema checked, old rows purged
        session=new_session(),
        executor=ThreadPoolExecutor(max_workers=FHIR_THREADS, thread_name_prefix="fhir"),
        slots=UpstreamSlots(config.fhir_threads_per_server),
        answer_bytes=WorkerBytes(config.fhir_bytes_per_worker),
        card_cache=CardCache(config.card_cache_ttl_s, config.card_cache_entries) if config.card_cache_ttl_s else None,
    )
    app.teardown_request(release_answer_bytes)
    app.extensions["sarcoma_knowledge"] = knowledge
    CORS(
        app,
        origins=list(config.allowed_origins()),  # `*` only on loopback or with authentication, unless set
        allow_headers=["Authorization", "Content-Type"],
        methods=["GET", "POST", "OPTIONS"],
        max_age=600,
    )
    register_error_handlers(app)
    init_auth(app, config)
    _register_blueprints(app, config)
    return app


def announce_insecure(config: Config) -> None:
    """One CRITICAL line when ``CDS_INSECURE`` lets a reachable service run without its protections."""
    notice = insecure_notice(config)
    if notice:
        logs.once("cds_service", logging.CRITICAL, notice)


def _register_blueprints(app: Flask, config: Config) -> None:
    from .api import discovery, feedback, health, hooks, metrics, openapi, statements

    # /metrics is always routed (404 unless CDS_METRICS is on); registering it starts counting when on
    for blueprint in (discovery.bp, hooks.bp, feedback.bp, statements.bp, openapi.bp, health.bp, metrics.bp):
        app.register_blueprint(blueprint)
    if config.sandbox:
        from .api import sandbox

        app.register_blueprint(sandbox.bp)
