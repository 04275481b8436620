"""What a running app holds: configuration, compiled knowledge, stores and pooled clients."""

from __future__ import annotations

import gc
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import cast

import requests
from flask import current_app, g, request

from . import metrics
from .card_cache import CardCache
from .config import Config
from .feedback_store import FeedbackStore
from .fhir.client import FhirClient
from .fhir.policy import public_only
from .knowledge import KnowledgeBase
from .outbound import ByteBudget, UpstreamSlots, WorkerBytes
from .protocol.request import HookRequest
from .storage.stores import Stores


@dataclass
class Runtime:
    config: Config
    knowledge: KnowledgeBase
    stores: Stores
    session: requests.Session
    executor: ThreadPoolExecutor
    slots: UpstreamSlots
    """Each FHIR server's share of ``executor`` (``CDS_FHIR_THREADS_PER_SERVER``)."""
    answer_bytes: WorkerBytes
    """The worker's memory for FHIR answers (``CDS_FHIR_BYTES_PER_WORKER``), given back as each call ends."""
    card_cache: CardCache | None = None

    @property
    def feedback(self) -> FeedbackStore:
        return self.stores.feedback

    def fhir_client(self, hook: HookRequest) -> FhirClient:
        token = hook.fhir_authorization.access_token if hook.fhir_authorization else None
        budget = ByteBudget(self.config.fhir_max_bytes, self.answer_bytes)
        g.setdefault("fhir_budgets", []).append(budget)  # closed when the call ends (release_answer_bytes)
        return FhirClient(
            self.session,
            hook.fhir_server or "",
            token=token,
            timeout_s=self.config.fhir_timeout_s,
            max_pages=self.config.fhir_max_pages,
            max_bytes=self.config.fhir_max_bytes,
            public_only=public_only(self.config, hook.fhir_server or ""),  # checked again at connect time
            metrics=metrics.current(),  # counted in the fetch threads, which have no app context
            budget=budget,
        )

    def base_url(self) -> str:
        """The service's external base URL: configured, or the one this request came in on."""
        return self.config.public_base_url or request.host_url.rstrip("/")


def release_answer_bytes(error: BaseException | None = None) -> None:
    """Teardown of every request: give the worker back the bytes of the FHIR answers the call read."""
    for budget in g.pop("fhir_budgets", []):
        budget.close()


def runtime() -> Runtime:
    return cast(Runtime, current_app.extensions["sarcoma"])


def tune_collector() -> None:
    """A hook call allocates tens of thousands of short-lived objects (FHIR models); the knowledge base
    and code tables live as long as the worker. Freezing the latter, once the app is made, keeps them
    out of every collection, and a larger young generation collects less often: 5,000-resource charts
    ~30% faster, measured with bench/run.py."""
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
