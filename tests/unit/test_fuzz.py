"""Property-based fuzzing of the edges that read untrusted data.

- ``parse_hook_request``: any JSON value gives a ``HookRequest`` or ``InvalidRequest``, nothing else;
- ``parse_feedback``: likewise, a list of items or ``InvalidRequest``;
- ``summarise``: any mixture of fixture resources, broken copies of them and random JSON objects
  gives a ``PatientSummary`` ("never raises on bad data").
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.errors import InvalidRequest
from cds_service.protocol.feedback import parse_feedback
from cds_service.protocol.request import HookRequest, parse_hook_request
from cds_service.protocol.services import SARCOMA_PATIENT_VIEW
from cds_service.summary import summarise
from cds_service.summary.model import PatientSummary

FIXTURES = Path(__file__).resolve().parents[2] / "fhir_fixtures"
FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def _fixture_resources() -> list[dict[str, Any]]:
    resources = []
    for path in sorted(FIXTURES.glob("*.json")):
        bundle = json.loads(path.read_text())
        resources += [
            e["resource"]
            for e in bundle.get("entry", [])
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        ]
    return resources


RESOURCES = _fixture_resources()

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
field_names = st.sampled_from(
    [
        "hook",
        "hookInstance",
        "context",
        "patientId",
        "userId",
        "encounterId",
        "fhirServer",
        "fhirAuthorization",
        "access_token",
        "token_type",
        "expires_in",
        "prefetch",
        "patient",
        "conditions",
        "resourceType",
        "entry",
        "resource",
    ]
)
near_values = json_values | st.sampled_from(
    [
        "patient-view",
        str(uuid.UUID(int=1)),
        "p1",
        "Practitioner/dr-1",
        "https://ehr.example.com/fhir",
        "Bearer",
        "Patient",
        "Bundle",
    ]
)


@st.composite
def near_valid_hook_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A valid request with some fields replaced, removed or nested values scrambled."""
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"patientId": "p1", "userId": "Practitioner/dr-1"},
        "fhirServer": "https://ehr.example.com/fhir",
        "fhirAuthorization": {"access_token": "t", "token_type": "Bearer", "expires_in": 300},
        "prefetch": {"patient": {"resourceType": "Patient", "id": "p1"}},
    }
    for _ in range(draw(st.integers(1, 4))):
        containers = [body] + [
            body[k] for k in ("context", "fhirAuthorization", "prefetch") if isinstance(body.get(k), dict)
        ]
        target = draw(st.sampled_from(containers))
        key = draw(field_names)
        if draw(st.booleans()) and key in target:
            del target[key]
        else:
            target[key] = draw(near_values)
    return body


@FUZZ
@given(json_values | near_valid_hook_bodies())
def test_parse_hook_request_gives_a_request_or_invalid_request(body):
    try:
        parsed = parse_hook_request(body, SARCOMA_PATIENT_VIEW)
    except InvalidRequest as error:
        assert error.status == 400 and error.message
        return
    assert isinstance(parsed, HookRequest)
    assert parsed.patient_id


feedback_items = st.fixed_dictionaries(
    {},
    optional={
        "card": near_values,
        "outcome": st.sampled_from(["accepted", "overridden"]) | json_values,
        "outcomeTimestamp": st.sampled_from(["2026-11-24T10:00:00Z", "2026-11-24T10:00:00"]) | json_values,
        "acceptedSuggestions": st.lists(st.fixed_dictionaries({"id": near_values}), max_size=2) | json_values,
        "overrideReason": st.fixed_dictionaries({}, optional={"reason": json_values, "userComment": json_values})
        | json_values,
    },
)


@FUZZ
@given(json_values | st.fixed_dictionaries({"feedback": st.lists(feedback_items, max_size=3) | json_values}))
def test_parse_feedback_gives_items_or_invalid_request(body):
    try:
        items = parse_feedback(body)
    except InvalidRequest as error:
        assert error.status == 400
        return
    assert isinstance(items, (list, tuple)) and items


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, prefix + (index,))
    return found


@st.composite
def broken_resources(draw: st.DrawFn) -> dict[str, Any]:
    """A fixture resource with a few values replaced by random JSON or removed."""
    resource = copy.deepcopy(draw(st.sampled_from(RESOURCES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(resource)
        if not paths:
            break
        *parents, last = draw(st.sampled_from(paths))
        target: Any = resource
        for part in parents:
            target = target[part]
        if isinstance(target, dict) and draw(st.booleans()):
            del target[last]
        else:
            target[last] = draw(json_values)
    return resource


random_objects = st.dictionaries(
    st.sampled_from(["resourceType", "id", "subject", "code", "status", "valueQuantity"]), json_values, max_size=5
)
charts = st.lists(
    st.sampled_from(RESOURCES) | broken_resources() | random_objects | json_values,
    max_size=25,
)


@FUZZ
@given(charts, st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 1, 1)))
def test_summarise_never_raises_on_bad_data(resources, today):
    before = copy.deepcopy(resources)
    summary = summarise(resources, today=today, synchronous_months=3.0)
    assert isinstance(summary, PatientSummary)
    assert resources == before, "summarise must not change its input"
