"""``POST /cds-services/{id}``: the hook call, as a pipeline.

parse_hook_request -> gather (prefetch, then FHIR server) -> summarise -> match -> render.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify

from ..card_cache import record_key
from ..engine import cards_for
from ..errors import BodyTooLarge, UnknownService
from ..feedback_store import record_issued_cards
from ..fhir.client import Deadline
from ..fhir.gather import Gathered, gather
from ..fhir.policy import check_fhir_server
from ..logs import hook_instance_of, note
from ..metrics import record_cache, record_cards
from ..protocol.cards import Card, CdsResponse
from ..protocol.request import parse_hook_request
from ..protocol.services import SERVICES, ServiceDefinition
from ..runtime import Runtime, runtime
from .http import json_body

bp = Blueprint("hooks", __name__)
log = logging.getLogger("cds_service.hooks")


def service_or_404(service_id: str) -> ServiceDefinition:
    service = SERVICES.get(service_id)
    if service is None:
        raise UnknownService("No CDS service with this id; see GET /cds-services")
    return service


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    service = service_or_404(service_id)
    rt = runtime()
    body = json_body()
    note(hookInstance=hook_instance_of(body))
    hook = parse_hook_request(body, service)
    if hook.fhir_server:
        check_fhir_server(rt.config, hook.fhir_server)
    gathered = gather(
        hook,
        service,
        client_for=rt.fhir_client,
        executor=rt.executor,
        slots=rt.slots,
        deadline=Deadline.after(rt.config.fhir_deadline_s),
    )
    note(resources=len(gathered.resources), fetched=gathered.fetched, unavailable=len(gathered.unavailable))
    if len(gathered.resources) > rt.config.max_resources:  # bounded work: never minutes of CPU for one call
        raise BodyTooLarge(
            f"The record holds more than {rt.config.max_resources} resources, the most one call may read "
            "(CDS_MAX_RESOURCES)",
            expression=["prefetch"],
        )
    cards, answer = _cards(gathered, rt)
    note(cards=len(cards))  # the line itself is written by logs.py, for every outcome
    record_cards(cards)  # metrics by statement id (CDS_METRICS); latency is counted for every outcome
    record_issued_cards(rt.feedback, service.id, hook.hook_instance, cards)  # never fails the call
    return jsonify(answer)


def _cards(gathered: Gathered, rt: Runtime) -> tuple[list[Card], dict[str, Any]]:
    """The cards of the record and the answer's JSON: from the repeat-open cache when it is on and
    holds them, else computed."""
    today, base_url = rt.config.reading_date(), rt.base_url()
    key = None
    if rt.card_cache is not None:
        context = (today, rt.knowledge.version, rt.config.synchronous_months, sorted(gathered.unavailable.items()))
        key = record_key(gathered.resources, *context, base_url)
        cached = rt.card_cache.answer(key)
        note(cache="hit" if cached is not None else "miss")
        record_cache(cached is not None)
        if cached is not None:
            return cached[0], {"cards": cached[1]}
    cards = cards_for(
        gathered.resources,
        knowledge=rt.knowledge,
        base_url=base_url,
        today=today,
        synchronous_months=rt.config.synchronous_months,
        unavailable=gathered.unavailable,
    )
    answer = CdsResponse(cards=tuple(cards)).to_json()
    if rt.card_cache is not None and key is not None:
        rt.card_cache.put(key, cards, answer["cards"])
    return cards, answer
