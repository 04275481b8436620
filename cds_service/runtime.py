"""What a running app holds: configuration, compiled knowledge, stores and pooled clients."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import cast

import requests
from flask import current_app, request

from . import metrics
from .config import Config
from .feedback_store import FeedbackStore
from .fhir.client import FhirClient
from .fhir.policy import public_only
from .knowledge import KnowledgeBase
from .outbound import UpstreamSlots
from .protocol.request import HookRequest


@dataclass
class Runtime:
    config: Config
    knowledge: KnowledgeBase
    feedback: FeedbackStore
    session: requests.Session
    executor: ThreadPoolExecutor
    slots: UpstreamSlots
    """Each FHIR server's share of ``executor`` (``CDS_FHIR_THREADS_PER_SERVER``)."""

    def fhir_client(self, hook: HookRequest) -> FhirClient:
        token = hook.fhir_authorization.access_token if hook.fhir_authorization else None
        return FhirClient(
            self.session,
            hook.fhir_server or "",
            token=token,
            timeout_s=self.config.fhir_timeout_s,
            max_pages=self.config.fhir_max_pages,
            max_bytes=self.config.fhir_max_bytes,
            public_only=public_only(self.config, hook.fhir_server or ""),  # checked again at connect time
            metrics=metrics.current(),  # counted in the fetch threads, which have no app context
        )

    def base_url(self) -> str:
        """The service's external base URL: configured, or the one this request came in on."""
        return self.config.public_base_url or request.host_url.rstrip("/")


def runtime() -> Runtime:
    return cast(Runtime, current_app.extensions["sarcoma"])
