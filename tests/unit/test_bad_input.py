"""The hostile-input corpus: each case its exact status and, when refused, its OperationOutcome; never 5xx.

Each case starts from a valid request for a staged fixture patient (``BASE_FIXTURE``) and breaks one
thing: transport and JSON syntax, every request field, prefetch shapes, dates, numbers and nesting
inside resources, ``fhirServer`` spellings that must not pass the allow-list, routes and content
types, feedback; then a FHIR server misbehaving on the wire (``FAULT_CASES``, real sockets) and
hostile client tokens with authentication on (``AUTH_CASES``). A refusal must be an OperationOutcome
with one error of the status's issue code whose diagnostics say ``Case.says``; a 200 must carry a
card list, and for ``DATA_QUALITY`` a data-quality card (group ``data-quality`` in ``cards/``).
Hypothesis adds any date, number or nesting depth inside a resource, each with its exact status.
``test_the_corpus_holds_at_least_300_cases_each_with_its_status_and_words`` prints the count.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from hostile_http import (
    Behaviour,
    answer,
    bad_chunking,
    bad_gzip,
    garbage_status,
    gzip_bomb,
    reset,
    running,
    stall,
    trickle_body,
    trickle_headers,
    truncated,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm

from cds_service import Config, create_app
from fhir_fixtures.ehr import hook_request

ROOT = Path(__file__).resolve().parents[2]
BASE_FIXTURE = ROOT / "fhir_fixtures" / "sts-iiia-thigh-tnm-only.json"
HOOK_URL = "/cds-services/sarcoma-patient-view"
FEEDBACK_URL = HOOK_URL + "/feedback"
MB = 1_000_000
CARDS, DATA_QUALITY = "cards", "data-quality"
Body = dict[str, Any]
Raw = tuple[bytes, str]  # body bytes, content type
OUTCOME_CODES = {400: "invalid", 401: "security", 403: "forbidden", 404: "not-found", 405: "not-supported"}
OUTCOME_CODES |= {412: "not-found", 413: "too-long", 415: "not-supported"}
"""The OperationOutcome issue code each refusal carries (FHIR's IssueType)."""


@dataclass(frozen=True)
class Case:
    id: str
    url: str
    make: Callable[[Body], Body | Raw]
    status: int
    """The exact status expected."""
    says: str = ""
    """A refusal: words its OperationOutcome must say (which field, which limit, what is wrong)."""
    expect: str = CARDS
    """A 200 from the hook: ``CARDS`` (a card list) or ``DATA_QUALITY`` (one of them a data-quality card)."""


def valid_hook_body() -> Body:
    """A spec-exact request for a localised STS fixture, with the prefetch an EHR would send."""
    if not BASE_FIXTURE.exists():
        pytest.skip(f"{BASE_FIXTURE.name} is missing")
    body = hook_request(BASE_FIXTURE)
    body["context"]["userId"] = "Practitioner/dr-1"  # the cases below rewrite this value
    return body


def valid_feedback_body() -> Body:
    return {
        "feedback": [
            {
                "card": str(uuid.uuid4()),
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-24T10:00:00Z",
                "overrideReason": {"reason": {"code": "x", "system": "http://example.org"}},
            }
        ]
    }


# --- builders ----------------------------------------------------------------------------------


def raw(data: bytes, content_type: str = "application/json") -> Callable[[Body], Raw]:
    return lambda body: (data, content_type)


def raw_of(transform: Callable[[str], str], content_type: str = "application/json") -> Callable[[Body], Raw]:
    """Serialise the valid body, then rewrite its text (for what ``json.dumps`` cannot produce)."""
    return lambda body: (transform(json.dumps(body)).encode("utf-8", "surrogatepass"), content_type)


def setting(path: str, value: Any) -> Callable[[Body], Body]:
    """Set (or with ``...`` delete) a dotted path; list indexes are numbers."""

    def make(body: Body) -> Body:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target: Any = body
        for part in parents:
            target = target[part]
        if value is ...:
            del target[last]
        else:
            target[last] = value
        return body

    return make


def each_observation(change: Callable[[Body], None]) -> Callable[[Body], Body]:
    def make(body: Body) -> Body:
        for entry in body["prefetch"]["observations"]["entry"]:
            change(entry["resource"])
        return body

    return make


def nested(depth: int) -> Any:
    value: Any = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def adding_entries(key: str, *entries: Any) -> Callable[[Body], Body]:
    def make(body: Body) -> Body:
        body["prefetch"][key]["entry"].extend(entries)
        return body

    return make


OTHER_PATIENT = {"reference": "Patient/someone-else"}
NEXT_ELSEWHERE = [{"relation": "next", "url": "https://evil.example/fhir/Condition?page=2"}]
FHIR = "https://ehr.example.com/fhir"  # the one server the test app may read (CDS_ALLOWED_FHIR_SERVERS)
BEARER = {"access_token": "t", "token_type": "Bearer"}


def naming_server(url: str, auth: Body | None = None, *missing: str) -> Callable[[Body], Body]:
    """Name ``url`` as fhirServer (with ``auth``), dropping the ``missing`` prefetch keys so it is read."""

    def make(body: Body) -> Body:
        body["fhirServer"] = url
        if auth is not None:
            body["fhirAuthorization"] = auth
        for key in missing:
            del body["prefetch"][key]
        return body

    return make


def conditions(count: int) -> Callable[[Body], Body]:
    return setting("prefetch.conditions.entry", [{"resource": {"resourceType": "Condition"}}] * count)


HOOK_CASES = [
    # transport and JSON syntax
    Case(
        "truncated-json",
        HOOK_URL,
        raw_of(lambda text: text[: len(text) // 2]),
        400,
        "The request body is not valid JSON",
    ),
    Case("empty-body", HOOK_URL, raw(b""), 400, "The request body is empty; expected a JSON object"),
    Case("whitespace-body", HOOK_URL, raw(b"   \n\t "), 400, "The request body is not valid JSON"),
    Case("json-array", HOOK_URL, raw(b"[]"), 400, "The request body must be a JSON object"),
    Case("json-number", HOOK_URL, raw(b"42"), 400, "The request body must be a JSON object"),
    Case("json-null", HOOK_URL, raw(b"null"), 400, "The request body must be a JSON object"),
    Case("json-string", HOOK_URL, raw(b'"patient-view"'), 400, "The request body must be a JSON object"),
    Case("json-true", HOOK_URL, raw(b"true"), 400, "The request body must be a JSON object"),
    Case(
        "invalid-utf8-bytes",
        HOOK_URL,
        lambda body: (
            json.dumps(body).encode().replace(b'"patient-view"', b'"patient-\xff\xfeview"'),
            "application/json",
        ),
        400,
        "The request body is not valid JSON",
    ),
    Case(
        "utf16-body",
        HOOK_URL,
        lambda body: (json.dumps(body).encode("utf-16"), "application/json"),
        400,
        "The request body is not valid JSON",
    ),
    Case(
        "raw-nul-byte",
        HOOK_URL,
        lambda body: (json.dumps(body).encode().replace(b'"hook"', b'"ho\x00ok"'), "application/json"),
        400,
        "The request body is not valid JSON",
    ),
    Case(
        "lone-surrogate",
        HOOK_URL,
        raw_of(lambda text: text.replace('"Practitioner/dr-1"', '"Practitioner/\\ud800"')),
        400,
        "The request body is not valid JSON",
    ),
    Case("trailing-garbage", HOOK_URL, raw_of(lambda text: text + "}{"), 400, "The request body is not valid JSON"),
    Case(
        "nan-literal",
        HOOK_URL,
        raw_of(lambda text: text.replace('"prefetch": {', '"x": NaN, "prefetch": {', 1)),
        400,
        "The request body is not valid JSON",
    ),
    Case(
        "infinite-number",
        HOOK_URL,
        raw_of(lambda text: text.replace('"prefetch": {', '"x": 1e400, "prefetch": {', 1)),
        400,
        "The request body is not valid JSON",
    ),
    Case(
        "deep-nesting-10000-in-prefetch",
        HOOK_URL,
        raw_of(lambda text: text.replace('"prefetch": {', f'"prefetch": {{"deep": {deep_json(10_000)}, ', 1)),
        400,
        "The request body is not valid JSON",
    ),
    Case(
        "deep-nesting-10000-top-level",
        HOOK_URL,
        raw(deep_json(10_000).encode()),
        400,
        "The request body is not valid JSON",
    ),
    Case(
        "deep-nesting-objects-in-context",
        HOOK_URL,
        raw_of(
            lambda text: text.replace(
                '"context": {', '"context": {"deep": ' + '{"a":' * 10_000 + "{}" + "}" * 10_000 + ", ", 1
            )
        ),
        400,
        "The request body is not valid JSON",
    ),
    Case(
        "body-20mb",
        HOOK_URL,
        lambda body: (b'{"hook": "' + b"x" * (20 * MB) + b'"}', "application/json"),
        413,
        "Request body too large.",
    ),
    Case(
        "form-encoded",
        HOOK_URL,
        raw(b"hook=patient-view&hookInstance=x", "application/x-www-form-urlencoded"),
        415,
        "The request body must be sent as Content-Type: application/json",
    ),
    Case(
        "multipart",
        HOOK_URL,
        raw(
            b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b--\r\n', "multipart/form-data; boundary=b"
        ),
        415,
        "The request body must be sent as Content-Type: application/json",
    ),
    Case(
        "wrong-content-type-valid-json",
        HOOK_URL,
        lambda body: (json.dumps(body).encode(), "text/plain"),
        415,
        "The request body must be sent as Content-Type: application/json",
    ),
    Case(
        "duplicate-keys",
        HOOK_URL,
        raw_of(lambda text: text.replace('"hook": "patient-view"', '"hook": "order-sign", "hook": "patient-view"', 1)),
        200,
    ),
    Case(
        "duplicate-patient-id",
        HOOK_URL,
        raw_of(lambda text: text.replace('"context": {', '"context": {"patientId": "someone-else", ', 1)),
        200,
    ),
    # top-level fields
    Case("hook-missing", HOOK_URL, setting("hook", ...), 400, "'hook' is required"),
    Case("hook-number", HOOK_URL, setting("hook", 7), 400, "'hook' must be a non-empty string"),
    Case(
        "hook-other",
        HOOK_URL,
        setting("hook", "order-sign"),
        400,
        "'hook' must be 'patient-view' for service 'sarcoma-patient-view'",
    ),
    Case("hook-empty", HOOK_URL, setting("hook", ""), 400, "'hook' must be a non-empty string"),
    Case("hook-1mb", HOOK_URL, setting("hook", "x" * MB), 400, "'hook' is too long"),
    Case(
        "hook-escaped-nul",
        HOOK_URL,
        setting("hook", "patient-view\u0000"),
        400,
        "'hook' must be 'patient-view' for service 'sarcoma-patient-view'",
    ),
    Case("hookInstance-missing", HOOK_URL, setting("hookInstance", ...), 400, "'hookInstance' is required"),
    Case(
        "hookInstance-not-uuid", HOOK_URL, setting("hookInstance", "not-a-uuid"), 400, "'hookInstance' must be a UUID"
    ),
    Case(
        "hookInstance-number",
        HOOK_URL,
        setting("hookInstance", 12345),
        400,
        "'hookInstance' must be a non-empty string",
    ),
    Case(
        "hookInstance-object",
        HOOK_URL,
        setting("hookInstance", {"id": 1}),
        400,
        "'hookInstance' must be a non-empty string",
    ),
    Case("hookInstance-1mb", HOOK_URL, setting("hookInstance", "a" * MB), 400, "'hookInstance' is too long"),
    # context
    Case("context-missing", HOOK_URL, setting("context", ...), 400, "'context' is required and must be an object"),
    Case("context-list", HOOK_URL, setting("context", []), 400, "'context' is required and must be an object"),
    Case(
        "context-string",
        HOOK_URL,
        setting("context", "patientId=1"),
        400,
        "'context' is required and must be an object",
    ),
    Case("patientId-missing", HOOK_URL, setting("context.patientId", ...), 400, "'context.patientId' is required"),
    Case(
        "patientId-number",
        HOOK_URL,
        setting("context.patientId", 1),
        400,
        "'context.patientId' must be a non-empty string",
    ),
    Case("patientId-null", HOOK_URL, setting("context.patientId", None), 400, "'context.patientId' is required"),
    Case(
        "patientId-reference",
        HOOK_URL,
        setting("context.patientId", "Patient/p1"),
        400,
        "'context.patientId' must be a FHIR id",
    ),
    Case(
        "patientId-traversal",
        HOOK_URL,
        setting("context.patientId", "../../etc/passwd"),
        400,
        "'context.patientId' must be a FHIR id",
    ),
    Case(
        "patientId-query-injection",
        HOOK_URL,
        setting("context.patientId", "p1&_include=*"),
        400,
        "'context.patientId' must be a FHIR id",
    ),
    Case(
        "patientId-nul",
        HOOK_URL,
        setting("context.patientId", "p1\u0000"),
        400,
        "'context.patientId' must be a FHIR id",
    ),
    Case("patientId-1mb", HOOK_URL, setting("context.patientId", "p" * MB), 400, "'context.patientId' is too long"),
    Case("userId-missing", HOOK_URL, setting("context.userId", ...), 400, "'context.userId' is required"),
    Case(
        "userId-organization",
        HOOK_URL,
        setting("context.userId", "Organization/o1"),
        400,
        "'context.userId' must be Practitioner/, PractitionerRole/, Patient/ or",
    ),
    Case(
        "userId-list",
        HOOK_URL,
        setting("context.userId", ["Practitioner/dr-1"]),
        400,
        "'context.userId' must be a non-empty string",
    ),
    Case(
        "encounterId-number",
        HOOK_URL,
        setting("context.encounterId", 5),
        400,
        "'context.encounterId' must be a non-empty string",
    ),
    Case(
        "encounterId-traversal",
        HOOK_URL,
        setting("context.encounterId", "../x"),
        400,
        "'context.encounterId' must be a FHIR id",
    ),
    # fhirServer and fhirAuthorization
    Case("fhirServer-number", HOOK_URL, setting("fhirServer", 443), 400, "'fhirServer' must be a non-empty string"),
    Case(
        "fhirServer-not-url",
        HOOK_URL,
        setting("fhirServer", "ehr"),
        400,
        "'fhirServer' must be an absolute http(s) URL without credentials",
    ),
    Case(
        "fhirServer-file-scheme",
        HOOK_URL,
        setting("fhirServer", "file:///etc/passwd"),
        400,
        "'fhirServer' must be an absolute http(s) URL without credentials",
    ),
    Case(
        "fhirServer-javascript",
        HOOK_URL,
        setting("fhirServer", "javascript:alert(1)"),
        400,
        "'fhirServer' must be an absolute http(s) URL without credentials",
    ),
    Case(
        "fhirServer-credentials",
        HOOK_URL,
        setting("fhirServer", "https://user:pw@ehr.example.com/fhir"),
        400,
        "'fhirServer' must be an absolute http(s) URL without credentials",
    ),
    Case(
        "fhirServer-1mb",
        HOOK_URL,
        setting("fhirServer", "https://ehr.example.com/" + "a" * MB),
        400,
        "'fhirServer' is too long",
    ),
    # fhirServer outside the allow-list, however spelt: 403 before any call
    *(
        Case(
            f"fhirServer-{name}",
            HOOK_URL,
            naming_server(url, None, "patient"),
            403,
            "must be a base URL" if "?" in url else "is not on this service's allow-list of FHIR servers",
        )
        for name, url in [
            ("not-listed", "https://evil.example/fhir"),
            ("suffix-host", "https://ehr.example.com.evil.net/fhir"),
            ("other-port", "https://ehr.example.com:8443/fhir"),
            ("plain-http", "http://ehr.example.com/fhir"),
            ("dot-dot", FHIR + "/../admin"),
            ("dot-dot-semicolon", FHIR + "/..;/admin"),
            ("double-encoded-dots", FHIR + "/%252e%252e/admin"),
            ("encoded-dots-slash", FHIR + "/%2e%2e%2fadmin"),
            ("fullwidth-dots", FHIR + "/\uff0e\uff0e/admin"),
            ("encoded-fullwidth-dots", FHIR + "/%EF%BC%8E%EF%BC%8E/admin"),
            ("two-dot-leader", FHIR + "/\u2025/admin"),
            ("encoded-backslash", FHIR + "/%5c..%5cadmin"),
            ("query", FHIR + "?x=1"),
            ("empty-query", FHIR + "?"),
            ("loopback", "http://127.0.0.1:8080/fhir"),
            ("metadata-address", "http://169.254.169.254/latest/meta-data"),
            ("private-address", "http://10.0.0.5/fhir"),
            ("single-label", "http://fhir:8080/fhir"),
        ]
    ),
    Case(
        "fhirAuthorization-token-not-latin-1",
        HOOK_URL,
        naming_server(FHIR, {**BEARER, "access_token": "t\u0436k\u00e9n"}, "patient"),
        412,
        "Could not obtain: patient: the access token cannot be sent: it holds c",
    ),
    Case(
        "fhirAuthorization-token-with-newline",
        HOOK_URL,
        naming_server(FHIR, {**BEARER, "access_token": "t\r\nX-Injected: 1"}, "patient"),
        412,
        "Could not obtain: patient: the access token cannot be sent: it holds c",
    ),
    Case(
        "fhirAuthorization-string",
        HOOK_URL,
        lambda b: {**b, "fhirServer": "https://ehr.example.com/fhir", "fhirAuthorization": "Bearer x"},
        400,
        "'fhirAuthorization' must be an object",
    ),
    Case(
        "fhirAuthorization-without-server",
        HOOK_URL,
        setting("fhirAuthorization", {"access_token": "t", "token_type": "Bearer"}),
        400,
        "'fhirServer' is required when 'fhirAuthorization' is present",
    ),
    Case(
        "fhirAuthorization-mac",
        HOOK_URL,
        lambda b: {
            **b,
            "fhirServer": "https://ehr.example.com/fhir",
            "fhirAuthorization": {"access_token": "t", "token_type": "MAC"},
        },
        400,
        "'fhirAuthorization.token_type' must be 'Bearer'",
    ),
    Case(
        "fhirAuthorization-token-number",
        HOOK_URL,
        lambda b: {
            **b,
            "fhirServer": "https://ehr.example.com/fhir",
            "fhirAuthorization": {"access_token": 5, "token_type": "Bearer"},
        },
        400,
        "'fhirAuthorization.access_token' must be a non-empty string",
    ),
    Case(
        "fhirAuthorization-expires-string",
        HOOK_URL,
        lambda b: {
            **b,
            "fhirServer": "https://ehr.example.com/fhir",
            "fhirAuthorization": {"access_token": "t", "token_type": "Bearer", "expires_in": "300"},
        },
        400,
        "'fhirAuthorization.expires_in' must be an integer",
    ),
    Case(
        "fhirAuthorization-expires-bool",
        HOOK_URL,
        lambda b: {
            **b,
            "fhirServer": "https://ehr.example.com/fhir",
            "fhirAuthorization": {"access_token": "t", "token_type": "Bearer", "expires_in": True},
        },
        400,
        "'fhirAuthorization.expires_in' must be an integer",
    ),
    # prefetch shape
    Case("prefetch-list", HOOK_URL, setting("prefetch", []), 400, "'prefetch' must be an object"),
    Case("prefetch-string", HOOK_URL, setting("prefetch", "all"), 400, "'prefetch' must be an object"),
    Case(
        "prefetch-value-number",
        HOOK_URL,
        setting("prefetch.patient", 1),
        400,
        "'prefetch.patient' must be a FHIR resource, a Bundle, or null",
    ),
    Case(
        "prefetch-value-list",
        HOOK_URL,
        setting("prefetch.conditions", []),
        400,
        "'prefetch.conditions' must be a FHIR resource, a Bundle, or null",
    ),
    Case(
        "prefetch-value-true",
        HOOK_URL,
        setting("prefetch.patient", True),
        400,
        "'prefetch.patient' must be a FHIR resource, a Bundle, or null",
    ),
    Case(
        "prefetch-no-resourceType",
        HOOK_URL,
        setting("prefetch.patient", {"id": "x"}),
        400,
        "'prefetch.patient' is not a FHIR resource",
    ),
    Case(
        "prefetch-resourceType-number",
        HOOK_URL,
        setting("prefetch.patient", {"resourceType": 5}),
        400,
        "'prefetch.patient' is not a FHIR resource",
    ),
    Case(
        "prefetch-unknown-resource-type",
        HOOK_URL,
        setting("prefetch.patient", {"resourceType": "Spaceship", "id": "x"}),
        200,
    ),
    Case(
        "prefetch-unknown-type-in-searchset",
        HOOK_URL,
        adding_entries("conditions", {"resource": {"resourceType": "Spaceship", "id": "s"}}),
        200,
    ),
    Case(
        "prefetch-unknown-key", HOOK_URL, setting("prefetch.somethingElse", {"resourceType": "Patient", "id": "x"}), 200
    ),
    Case("prefetch-entries-not-objects", HOOK_URL, adding_entries("conditions", "x", 1, None, [], True), 200),
    Case(
        "prefetch-medication-id-not-text",
        HOOK_URL,
        adding_entries("conditions", {"resource": {"resourceType": "Medication", "id": ["x"]}}),
        200,
    ),
    Case(
        "prefetch-entry-resource-not-object",
        HOOK_URL,
        adding_entries("conditions", {"resource": "Condition/1"}, {"resource": [1]}),
        200,
    ),
    Case(
        "prefetch-entry-search-not-object",
        HOOK_URL,
        adding_entries("conditions", {"search": "match", "resource": {"resourceType": "Condition", "id": "c9"}}),
        200,
    ),
    Case(
        "prefetch-entry-is-number",
        HOOK_URL,
        setting("prefetch.conditions.entry", 5),
        400,
        "'prefetch.conditions': Bundle.entry must be an array",
    ),
    Case(
        "prefetch-entry-is-object",
        HOOK_URL,
        setting("prefetch.conditions.entry", {"resource": {}}),
        400,
        "'prefetch.conditions': Bundle.entry must be an array",
    ),
    Case(
        "prefetch-link-is-number",
        HOOK_URL,
        setting("prefetch.conditions.link", 5),
        400,
        "'prefetch.conditions': Bundle.link must be an array",
    ),
    Case(
        "prefetch-link-url-number", HOOK_URL, setting("prefetch.conditions.link", [{"relation": "next", "url": 5}]), 200
    ),
    Case(
        "prefetch-nested-bundle",
        HOOK_URL,
        adding_entries(
            "conditions",
            {"resource": {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Condition"}}]}},
        ),
        400,
        "'prefetch.conditions': a Bundle entry holds another Bundle",
    ),
    Case(
        "prefetch-next-link-other-host-no-server",
        HOOK_URL,
        setting("prefetch.conditions.link", NEXT_ELSEWHERE),
        412,
        "Prefetch is incomplete and the request names no fhirServer to read the",
    ),
    Case(
        "prefetch-next-link-other-host",
        HOOK_URL,
        lambda b: setting("prefetch.conditions.link", NEXT_ELSEWHERE)(
            {**b, "fhirServer": "https://ehr.example.com/fhir"}
        ),
        412,
        "Could not obtain: conditions: a 'next' link points outside the FHIR se",
    ),
    Case(
        "prefetch-10000-keys",
        HOOK_URL,
        lambda b: {**b, "prefetch": {**b["prefetch"], **{f"k{n}": None for n in range(10_000)}}},
        200,
    ),
    Case("prefetch-1mb-key", HOOK_URL, lambda b: {**b, "prefetch": {**b["prefetch"], "k" * MB: None}}, 200),
    Case(
        "prefetch-1mb-string-in-resource",
        HOOK_URL,
        setting("prefetch.conditions.entry.0.resource.note", [{"text": "n" * MB}]),
        200,
    ),
    Case("prefetch-50000-empty-entries", HOOK_URL, setting("prefetch.conditions.entry", [{}] * 50_000), 200),
    # bounded work per call: CDS_MAX_RESOURCES (20,000 by default) across every prefetch key
    Case(
        "prefetch-20001-conditions",
        HOOK_URL,
        conditions(20_001),
        413,
        "The record holds more than 20000 resources, the most one call may read",
    ),
    Case(
        "prefetch-20001-resources-across-keys",
        HOOK_URL,
        lambda b: setting("prefetch.procedures.entry", [{"resource": {"resourceType": "Procedure"}}] * 10_001)(
            conditions(10_000)(b)
        ),
        413,
        "The record holds more than 20000 resources, the most one call may read",
    ),
    Case(
        "prefetch-nesting-2000-in-resource",
        HOOK_URL,
        raw_of(
            lambda text: text.replace(
                '"resourceType": "Observation"',
                '"resourceType": "Observation", "extension": [' + '{"a": ' * 2000 + "1" + "}" * 2000 + "]",
                1,
            )
        ),
        400,
        "The request body is not valid JSON",
    ),
    # patients that do not match
    Case(
        "patient-id-mismatch",
        HOOK_URL,
        setting("prefetch.patient.id", "someone-else"),
        400,
        "prefetch holds a Patient of another patient than context.patientId",
    ),
    Case(
        "condition-of-another-patient",
        HOOK_URL,
        setting("prefetch.conditions.entry.0.resource.subject", OTHER_PATIENT),
        400,
        "prefetch holds a Condition of another patient than context.patientId",
    ),
    Case(
        "observation-of-another-patient",
        HOOK_URL,
        setting("prefetch.observations.entry.0.resource.subject", OTHER_PATIENT),
        400,
        "prefetch holds a Observation of another patient than context.patientId",
    ),
    # resources that fail FHIR validation
    Case(
        "observation-status-42",
        HOOK_URL,
        each_observation(lambda r: r.__setitem__("status", 42)),
        200,
        expect=DATA_QUALITY,
    ),
    Case(
        "observation-code-string",
        HOOK_URL,
        each_observation(lambda r: r.__setitem__("code", "x")),
        200,
        expect=DATA_QUALITY,
    ),
    Case(
        "observation-value-wrong-type",
        HOOK_URL,
        each_observation(lambda r: r.__setitem__("valueCodeableConcept", "T2")),
        200,
        expect=DATA_QUALITY,
    ),
    Case(
        "observation-unknown-field",
        HOOK_URL,
        each_observation(lambda r: r.__setitem__("bogusField", {"x": 1})),
        200,
        expect=DATA_QUALITY,
    ),
    Case(
        "observation-bad-date",
        HOOK_URL,
        setting("prefetch.observations.entry.0.resource.effectiveDateTime", "2020-13-45"),
        200,
    ),
    Case(
        "observation-value-nan-string",
        HOOK_URL,
        setting("prefetch.observations.entry.0.resource.valueQuantity", {"value": "NaN"}),
        200,
    ),
    Case(
        "observation-deep-extension",
        HOOK_URL,
        setting("prefetch.observations.entry.0.resource.extension", [nested(500)]),
        200,
    ),
    Case(
        "condition-code-string",
        HOOK_URL,
        setting("prefetch.conditions.entry.0.resource.code", "x"),
        200,
        expect=DATA_QUALITY,
    ),
    Case(
        "condition-subject-reference-number",
        HOOK_URL,
        setting("prefetch.conditions.entry.0.resource.subject", {"reference": 5}),
        200,
        expect=DATA_QUALITY,
    ),
    Case(
        "condition-id-list",
        HOOK_URL,
        setting("prefetch.conditions.entry.0.resource.id", ["a"]),
        200,
        expect=DATA_QUALITY,
    ),
    Case("patient-birthdate-garbage", HOOK_URL, setting("prefetch.patient.birthDate", "yesterday"), 200),
    # paths and methods
    Case(
        "unknown-service", "/cds-services/nope", lambda b: b, 404, "No CDS service with this id; see GET /cds-services"
    ),
    Case(
        "service-id-traversal",
        "/cds-services/..%2f..%2fetc%2fpasswd",
        lambda b: b,
        404,
        "No such endpoint. Discovery is at GET /cds-services.",
    ),
]

FEEDBACK_CASES = [
    Case("fb-truncated-json", FEEDBACK_URL, raw_of(lambda text: text[:-5]), 400, "The request body is not valid JSON"),
    Case(
        "fb-json-array", FEEDBACK_URL, raw(b"[]"), 400, "The body must be an object with a non-empty 'feedback' array"
    ),
    Case(
        "fb-json-null", FEEDBACK_URL, raw(b"null"), 400, "The body must be an object with a non-empty 'feedback' array"
    ),
    Case(
        "fb-invalid-utf8",
        FEEDBACK_URL,
        raw(b'{"feedback": [{"card": "\xff"}]}'),
        400,
        "The request body is not valid JSON",
    ),
    Case(
        "fb-deep-nesting",
        FEEDBACK_URL,
        raw(('{"feedback": ' + deep_json(10_000) + "}").encode()),
        400,
        "The request body is not valid JSON",
    ),
    Case(
        "fb-body-20mb",
        FEEDBACK_URL,
        lambda body: (b'{"feedback": "' + b"x" * (20 * MB) + b'"}', "application/json"),
        413,
        "A feedback call may carry at most 65536 bytes",
    ),
    Case(
        "fb-missing",
        FEEDBACK_URL,
        setting("feedback", ...),
        400,
        "The body must be an object with a non-empty 'feedback' array",
    ),
    Case(
        "fb-not-list",
        FEEDBACK_URL,
        setting("feedback", {"card": "c"}),
        400,
        "The body must be an object with a non-empty 'feedback' array",
    ),
    Case(
        "fb-empty-list",
        FEEDBACK_URL,
        setting("feedback", []),
        400,
        "The body must be an object with a non-empty 'feedback' array",
    ),
    Case(
        "fb-item-not-object",
        FEEDBACK_URL,
        setting("feedback", ["card-1", 2, None]),
        400,
        "'feedback[0]' must be an object",
    ),
    Case(
        "fb-card-missing",
        FEEDBACK_URL,
        setting("feedback.0.card", ...),
        400,
        "'feedback[0].card' must be a non-empty string",
    ),
    Case(
        "fb-card-number",
        FEEDBACK_URL,
        setting("feedback.0.card", 1),
        400,
        "'feedback[0].card' must be a non-empty string",
    ),
    Case(
        "fb-card-1mb",
        FEEDBACK_URL,
        setting("feedback.0.card", "c" * MB),
        413,
        "A feedback call may carry at most 65536 bytes",
    ),
    Case(
        "fb-outcome-unknown",
        FEEDBACK_URL,
        setting("feedback.0.outcome", "maybe"),
        400,
        "'feedback[0].outcome' must be 'accepted' or 'overridden'",
    ),
    Case(
        "fb-outcome-number",
        FEEDBACK_URL,
        setting("feedback.0.outcome", 1),
        400,
        "'feedback[0].outcome' must be 'accepted' or 'overridden'",
    ),
    Case(
        "fb-timestamp-garbage",
        FEEDBACK_URL,
        setting("feedback.0.outcomeTimestamp", "yesterday"),
        400,
        "'feedback[0].outcomeTimestamp' must be an RFC 3339 date-time",
    ),
    Case(
        "fb-timestamp-no-zone",
        FEEDBACK_URL,
        setting("feedback.0.outcomeTimestamp", "2026-11-24T10:00:00"),
        400,
        "'feedback[0].outcomeTimestamp' must carry a time zone",
    ),
    Case(
        "fb-timestamp-number",
        FEEDBACK_URL,
        setting("feedback.0.outcomeTimestamp", 1732442400),
        400,
        "'feedback[0].outcomeTimestamp' must be a non-empty string",
    ),
    Case(
        "fb-accepted-without-suggestions",
        FEEDBACK_URL,
        setting("feedback.0.outcome", "accepted"),
        400,
        "'feedback[0].acceptedSuggestions' is required with outcome 'accepted'",
    ),
    Case(
        "fb-accepted-suggestions-not-list",
        FEEDBACK_URL,
        lambda b: setting("feedback.0.acceptedSuggestions", "s1")(setting("feedback.0.outcome", "accepted")(b)),
        400,
        "'feedback[0].acceptedSuggestions' is required with outcome 'accepted'",
    ),
    Case(
        "fb-override-reason-string",
        FEEDBACK_URL,
        setting("feedback.0.overrideReason", "because"),
        400,
        "'feedback[0].overrideReason' must be an object",
    ),
    Case(
        "fb-override-reason-empty",
        FEEDBACK_URL,
        setting("feedback.0.overrideReason", {}),
        400,
        "'feedback[0].overrideReason' needs a 'reason' or a 'userComment'",
    ),
    Case(
        "fb-101-items",
        FEEDBACK_URL,
        lambda b: {"feedback": b["feedback"] * 101},
        400,
        "At most 100 feedback items per call",
    ),
    Case(
        "fb-duplicate-keys",
        FEEDBACK_URL,
        raw_of(lambda text: text.replace('"outcome": "overridden"', '"outcome": "bogus", "outcome": "overridden"', 1)),
        200,
    ),
    Case("fb-nul-in-card", FEEDBACK_URL, setting("feedback.0.card", "card\u0000id"), 200),
    # bounded storage: CDS_MAX_FEEDBACK_BYTES (64 KiB) per call, comments of at most 2,000 characters
    Case(
        "fb-body-100kb",
        FEEDBACK_URL,
        lambda b: {**b, "padding": "x" * 100_000},
        413,
        "A feedback call may carry at most 65536 bytes",
    ),
    Case(
        "fb-comment-2001-chars",
        FEEDBACK_URL,
        setting("feedback.0.overrideReason.userComment", "c" * 2001),
        400,
        "'feedback[0].overrideReason.userComment' must be at most 2000 characte",
    ),
    Case(
        "fb-100-items-with-long-comments",
        FEEDBACK_URL,
        lambda b: {"feedback": [{**b["feedback"][0], "overrideReason": {"userComment": "c" * 2000}}] * 100},
        413,
        "A feedback call may carry at most 65536 bytes",
    ),
    Case(
        "fb-unknown-service",
        "/cds-services/nope/feedback",
        lambda b: b,
        404,
        "No CDS service with this id; see GET /cds-services",
    ),
]


# --- dates inside resources: out of range, impossible, of the wrong type ------------------------------

DATE_FIELDS = {
    "birthDate": "prefetch.patient.birthDate",
    "onset": "prefetch.conditions.entry.0.resource.onsetDateTime",
    "recorded": "prefetch.conditions.entry.0.resource.recordedDate",
    "effective": "prefetch.observations.entry.0.resource.effectiveDateTime",
}
HOSTILE_DATES: dict[str, Any] = {
    "year-9999-minus-14h": "9999-12-31T23:59:59-14:00",
    "year-0001-plus-14h": "0001-01-01T00:00:00+14:00",
    "year-10000": "10000-01-01",
    "year-99999-time": "99999-01-01T00:00:00Z",
    "year-0000": "0000-01-01",
    "negative-year": "-0044-03-15",
    "month-13": "2020-13-01",
    "february-30": "2021-02-30",
    "leap-second": "2016-12-31T23:59:60Z",
    "offset-25h": "2020-01-01T00:00:00+25:00",
    "hour-24": "2020-01-01T24:00:00Z",
    "time-without-zone": "2020-01-01T10:00:00",
    "huge-integer": 10**30,
    "integer": 20200101,
    "negative-integer": -1,
    "huge-float": 1.5e300,
    "boolean": True,
    "object": {"year": 2020},
    "list": ["2020-01-01"],
    "empty": "",
    "words": "yesterday",
    "10k-digits": "2" * 10_000,
    "nul": "2020-01-01\u0000",
    "fullwidth-digits": "\uff12\uff10\uff12\uff10-01-01",
    "arabic-indic-digits": "\u0662\u0660\u0662\u0660-01-01",
}
MODEL_ACCEPTS = {"year-9999-minus-14h", "year-0001-plus-14h", "leap-second", "integer", "negative-integer"}
"""Values the FHIR models take for a date: valid FHIR (extreme, or a leap second), or a number they coerce."""
DATE_CASES = [
    Case(
        f"date-{field}-{name}",
        HOOK_URL,
        setting(path, value),
        200,
        # Conditions and Observations are validated as they are read: a date that is no date is a data-quality finding
        expect=DATA_QUALITY if field != "birthDate" and name not in MODEL_ACCEPTS else CARDS,
    )
    for field, path in DATE_FIELDS.items()
    for name, value in HOSTILE_DATES.items()
]


# --- numbers inside resources ---------------------------------------------------------------------------


def replacing_value(index: int, name: str, value: Any) -> Callable[[Body], Body]:
    """Observation ``index`` of the prefetch with its value[x] replaced by ``name``: ``value``."""

    def make(body: Body) -> Body:
        resource = body["prefetch"]["observations"]["entry"][index]["resource"]
        for key in [key for key in resource if key.startswith("value")]:
            del resource[key]
        resource[name] = value
        return body

    return make


HOSTILE_NUMBERS: dict[str, Any] = {
    "2-to-63": 2**63,
    "minus-2-to-63": -(2**63) - 1,
    "10-to-19": 10**19,
    "1e308": 1e308,
    "minus-1e308": -1e308,
    "subnormal": 5e-324,
    "minus-zero": -0.0,
    "minus-one": -1,
    "fraction": 0.5,
    "string": "3",
    "boolean": False,
    "null": None,
    "list": [1],
    "object": {"value": 1},
}
NUMBER_FIELDS = {
    "valueInteger": lambda value: replacing_value(5, "valueInteger", value),
    "valueQuantity": lambda value: replacing_value(5, "valueQuantity", {"value": value, "unit": "mm"}),
    "size-quantity": lambda value: replacing_value(0, "valueQuantity", {"value": value, "unit": "cm"}),
}
NUMBER_CASES = [
    Case(
        f"number-{field}-{name}",
        HOOK_URL,
        change(value),
        200,
        # the tumour size is read, and so validated; a Quantity that is no object is a data-quality finding
        expect=DATA_QUALITY if field == "size-quantity" and name in {"boolean", "list", "object"} else CARDS,
    )
    for field, change in NUMBER_FIELDS.items()
    for name, value in HOSTILE_NUMBERS.items()
]
NUMBER_CASES += [
    Case(
        f"number-{name}-as-json-text",
        HOOK_URL,
        raw_of(lambda text, literal=literal: text.replace('"valueInteger": ', f'"valueInteger": {literal}, "x": ', 1)),
        400,
        "The request body is not valid JSON",
    )
    for name, literal in [("10-to-400", "1" + "0" * 400), ("1e400", "1e400"), ("nan", "NaN"), ("infinity", "Infinity")]
]


# --- nesting inside resources ---------------------------------------------------------------------------

NEST_PLACES = {
    "condition-extension": "prefetch.conditions.entry.0.resource.extension",
    "condition-note": "prefetch.conditions.entry.0.resource.note",
    "observation-component": "prefetch.observations.entry.4.resource.component",
    "observation-contained": "prefetch.observations.entry.0.resource.contained",
    "patient-meta-tag": "prefetch.patient.meta.tag",
}
NESTED = "nested-here"


def nesting_at(path: str, depth: int) -> Callable[[Body], Raw]:
    """A list holding objects nested ``depth`` deep at ``path`` (written as text: deeper than ``json`` goes)."""

    def make(body: Body) -> Raw:
        text = json.dumps(setting(path, [NESTED])(body))
        return text.replace(f'"{NESTED}"', '{"a": ' * depth + "{}" + "}" * depth, 1).encode(), "application/json"

    return make


NEST_CASES = [
    Case(
        f"nesting-{depth}-{place}",
        HOOK_URL,
        nesting_at(path, depth),
        200,
        # the summary validates Conditions whole: an unknown element is a data-quality finding
        expect=DATA_QUALITY if place == "condition-extension" and depth < 1000 else CARDS,
    )
    for place, path in NEST_PLACES.items()
    for depth in (50, 500, 1000)
] + [
    Case(f"nesting-1100-{place}", HOOK_URL, nesting_at(path, 1100), 400, "The request body is not valid JSON")
    for place, path in NEST_PLACES.items()
]


# --- more spellings of a server that is not on the allow-list ------------------------------------------

NOT_LISTED_WORDS = "is not on this service's allow-list of FHIR servers"
SPELLING_CASES = [
    Case(f"fhirServer-{name}", HOOK_URL, naming_server(url, None, "patient"), status, words)
    for name, url, status, words in [
        ("uppercase-dot-dot", "HTTPS://EHR.EXAMPLE.COM/fhir/../admin", 403, NOT_LISTED_WORDS),
        ("userinfo-host", "https://ehr.example.com@evil.example/fhir", 400, "without credentials"),
        ("ipv6-loopback", "http://[::1]/fhir", 403, NOT_LISTED_WORDS),
        ("decimal-loopback", "http://2130706433/fhir", 403, NOT_LISTED_WORDS),
        ("hex-loopback", "http://0x7f.1/fhir", 403, NOT_LISTED_WORDS),
        ("short-loopback", "http://127.1/fhir", 403, NOT_LISTED_WORDS),
        ("zero-address", "http://0/fhir", 403, NOT_LISTED_WORDS),
        ("mapped-ipv6-loopback", "http://[::ffff:127.0.0.1]/fhir", 403, NOT_LISTED_WORDS),
        ("localhost", "http://localhost/fhir", 403, NOT_LISTED_WORDS),
        ("localhost-subdomain", "http://ehr.localhost/fhir", 403, NOT_LISTED_WORDS),
        ("longer-path-segment", "https://ehr.example.com/fhirx", 403, NOT_LISTED_WORDS),
        ("parent-path", "https://ehr.example.com/", 403, NOT_LISTED_WORDS),
        ("fragment", FHIR + "#x", 403, "must be a base URL"),
        ("encoded-slash-dot-dot", FHIR + "%2f..%2fadmin", 403, NOT_LISTED_WORDS),
        ("dot-segment", FHIR + "/./admin", 403, NOT_LISTED_WORDS),
        ("triple-encoded-dots", FHIR + "/%25252e%25252e/admin", 403, NOT_LISTED_WORDS),
        ("cyrillic-host", "https://ehr.ex\u0430mple.com/fhir", 403, NOT_LISTED_WORDS),
        ("port-zero", "https://ehr.example.com:0/fhir", 403, NOT_LISTED_WORDS),
        ("port-too-large", "https://ehr.example.com:99999/fhir", 400, "is not a valid URL"),
        ("backslashes", "https:\\\\evil.example\\fhir", 400, "absolute http(s) URL"),
        ("tab-in-host", "https://ehr.exa\tmple.com/fhir", 403, NOT_LISTED_WORDS),
        ("metadata-ipv6", "http://[fd00:ec2::254]/latest", 403, NOT_LISTED_WORDS),
        ("link-local", "http://169.254.1.1/fhir", 403, NOT_LISTED_WORDS),
        ("gopher-scheme", "gopher://ehr.example.com/fhir", 400, "absolute http(s) URL"),
    ]
]


# --- methods, paths and content types ----------------------------------------------------------------------

ROUTE_CASES = [
    Case(
        "content-type-with-charset",
        HOOK_URL,
        lambda b: (json.dumps(b).encode(), "application/json; charset=utf-8"),
        200,
    ),
    Case(
        "content-type-fhir-json",  # JSON by its +json suffix: read as JSON
        HOOK_URL,
        lambda b: (json.dumps(b).encode(), "application/fhir+json"),
        200,
    ),
    Case("content-type-missing", HOOK_URL, lambda b: (json.dumps(b).encode(), ""), 415, "application/json"),
    Case("content-type-xml", HOOK_URL, raw(b"<hook>patient-view</hook>", "application/xml"), 415, "application/json"),
    Case(
        "content-type-json-patch",  # JSON by its +json suffix: read as JSON
        HOOK_URL,
        lambda b: (json.dumps(b).encode(), "application/json-patch+json"),
        200,
    ),
    Case("trailing-slash", HOOK_URL + "/", lambda b: b, 404, "No such endpoint"),
    Case("path-with-nul", "/cds-services/sarcoma-patient-view%00", lambda b: b, 404, "No CDS service with this id"),
    Case("path-10k", "/cds-services/" + "a" * 10_000, lambda b: b, 404, "No CDS service with this id"),
    Case(
        "service-id-unicode",
        "/cds-services/sarcoma-patient-vi\u0435w",
        lambda b: b,
        404,
        "No CDS service with this id",
    ),
    Case("feedback-path-traversal", HOOK_URL + "/feedback/..%2f..%2fsandbox", lambda b: b, 404, "No such endpoint"),
]


# --- feedback: more -----------------------------------------------------------------------------------------

FEEDBACK_MORE_CASES = [
    Case(
        "fb-timestamp-year-9999-minus-14h",
        FEEDBACK_URL,
        setting("feedback.0.outcomeTimestamp", "9999-12-31T23:59:59-14:00"),
        400,
        "outcomeTimestamp",
    ),
    Case(
        "fb-timestamp-year-10000",
        FEEDBACK_URL,
        setting("feedback.0.outcomeTimestamp", "10000-01-01T00:00:00Z"),
        400,
        "outcomeTimestamp",
    ),
    Case(
        "fb-timestamp-huge-integer",
        FEEDBACK_URL,
        setting("feedback.0.outcomeTimestamp", 10**30),
        400,
        "outcomeTimestamp",
    ),
    Case(
        "fb-timestamp-leap-second",
        FEEDBACK_URL,
        setting("feedback.0.outcomeTimestamp", "2016-12-31T23:59:60Z"),
        400,
        "outcomeTimestamp",
    ),
    Case(
        "fb-timestamp-month-13",
        FEEDBACK_URL,
        setting("feedback.0.outcomeTimestamp", "2026-13-01T00:00:00Z"),
        400,
        "outcomeTimestamp",
    ),
    Case(
        "fb-timestamp-offset-25h",
        FEEDBACK_URL,
        setting("feedback.0.outcomeTimestamp", "2026-01-01T00:00:00+25:00"),
        400,
        "outcomeTimestamp",
    ),
    Case(
        "fb-suggestion-without-id",
        FEEDBACK_URL,
        lambda b: setting("feedback.0.acceptedSuggestions", [{}])(setting("feedback.0.outcome", "accepted")(b)),
        400,
        "acceptedSuggestions",
    ),
    Case(
        "fb-suggestion-id-number",
        FEEDBACK_URL,
        lambda b: setting("feedback.0.acceptedSuggestions", [{"id": 5}])(setting("feedback.0.outcome", "accepted")(b)),
        400,
        "acceptedSuggestions",
    ),
    Case(
        "fb-reason-not-object",
        FEEDBACK_URL,
        setting("feedback.0.overrideReason.reason", "x"),
        400,
        "overrideReason.reason",
    ),
    Case(
        "fb-reason-code-number",
        FEEDBACK_URL,
        setting("feedback.0.overrideReason.reason.code", 5),
        400,
        "overrideReason.reason",
    ),
    Case("fb-comment-number", FEEDBACK_URL, setting("feedback.0.overrideReason.userComment", 5), 400, "userComment"),
    Case(
        "fb-comment-2000-non-latin",
        FEEDBACK_URL,
        setting("feedback.0.overrideReason.userComment", "\u0436" * 2000),
        200,
    ),
    Case("fb-comment-with-nul", FEEDBACK_URL, setting("feedback.0.overrideReason.userComment", "a\u0000b"), 200),
    Case("fb-100-items", FEEDBACK_URL, lambda b: {"feedback": b["feedback"] * 100}, 200),
    Case("fb-item-nested-1000", FEEDBACK_URL, nesting_at("feedback.0.extra", 1000), 200),  # an element it ignores
    Case(
        "fb-form-encoded",
        FEEDBACK_URL,
        raw(b"feedback=1", "application/x-www-form-urlencoded"),
        415,
        "application/json",
    ),
]


# --- a FHIR server that misbehaves on the wire: a 412 naming what went wrong, within the deadline -----


@dataclass(frozen=True)
class FaultCase:
    id: str
    behaviour: Behaviour
    status: int
    says: str


def bundle_bytes(*entries: Any, link: Any = None) -> bytes:
    bundle: Body = {"resourceType": "Bundle", "type": "searchset", "entry": list(entries)}
    if link is not None:
        bundle["link"] = link
    return json.dumps(bundle).encode()


def many_headers(count: int) -> Behaviour:
    return answer(b"{}", *(f"X-H{n}: {n}" for n in range(count)))


FAULT_CASES = [
    FaultCase("fhir-stall", stall(5), 412, "did not answer in time"),
    FaultCase("fhir-trickled-headers", trickle_headers([], interval=0.05, most_s=5), 412, "did not answer in time"),
    FaultCase("fhir-trickled-body", trickle_body([], interval=0.05, most_s=5), 412, "did not answer in time"),
    FaultCase("fhir-reset", reset, 412, "could not be reached"),
    FaultCase("fhir-truncated", truncated, 412, "could not be reached"),
    FaultCase("fhir-bad-gzip", bad_gzip, 412, "could not be reached"),
    FaultCase("fhir-bad-chunking", bad_chunking, 412, "could not be reached"),
    FaultCase("fhir-garbage-status-line", garbage_status, 412, "could not be reached"),
    FaultCase("fhir-101-headers", many_headers(101), 412, "could not be reached"),
    FaultCase("fhir-100kb-header", answer(b"{}", "X-Long: " + "a" * 100_000), 412, "could not be reached"),
    FaultCase("fhir-gzip-bomb", gzip_bomb(50), 412, "answers are too large"),
    FaultCase("fhir-status-500", answer(b"{}", status="500 Internal Server Error"), 412, "answered HTTP 500"),
    FaultCase("fhir-status-401", answer(b"{}", status="401 Unauthorized"), 412, "refused the access token"),
    FaultCase("fhir-redirect", answer(b"", "Location: http://169.254.169.254/", status="302 Found"), 412, "HTTP 302"),
    FaultCase("fhir-json-array", answer(b"[]"), 412, "JSON that is not a resource"),
    FaultCase("fhir-html", answer(b"<html>login</html>"), 412, "malformed JSON"),
    FaultCase("fhir-deep-json", answer(deep_json(5000).encode()), 412, "malformed JSON"),
    FaultCase(
        "fhir-integer-beyond-64-bits",
        answer(b'{"resourceType": "Patient", "x": 1' + b"0" * 400 + b"}"),
        412,
        "malformed JSON",
    ),
    FaultCase("fhir-next-link-elsewhere", answer(bundle_bytes(link=NEXT_ELSEWHERE)), 412, "outside the FHIR server"),
    FaultCase("fhir-entry-not-array", answer(b'{"resourceType": "Bundle", "entry": 5}'), 412, "malformed Bundle"),
    FaultCase(
        "fhir-nested-bundle", answer(bundle_bytes({"resource": {"resourceType": "Bundle"}})), 412, "malformed Bundle"
    ),
    FaultCase(
        "fhir-other-patient",
        answer(bundle_bytes({"resource": {"resourceType": "Condition", "subject": OTHER_PATIENT}})),
        400,
        "another patient than context.patientId",
    ),
]


# --- hostile client tokens (authentication on): 401 without details, never a 500 ---------------------------


@dataclass(frozen=True)
class AuthCase:
    id: str
    method: str
    url: str
    authorization: str | None
    """The Authorization header as the WSGI server hands it on (latin-1 text), or none."""


def token_of(header: Any, payload: Any, signature: bytes = b"sig") -> str:
    def part(value: Any) -> str:
        data = value if isinstance(value, bytes) else json.dumps(value).encode()
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"{part(header)}.{part(payload)}.{part(signature)}"


ES384 = {"alg": "ES384", "typ": "JWT", "kid": "k1"}
CLAIMS = {"iss": "https://ehr.example.org", "aud": "x", "exp": 4_102_444_800, "iat": 0, "jti": "j"}
AUTH_CASES = [
    AuthCase("jwt-missing", "POST", HOOK_URL, None),
    AuthCase("jwt-empty-bearer", "POST", HOOK_URL, "Bearer "),
    AuthCase("jwt-basic-scheme", "POST", HOOK_URL, "Basic dXNlcjpwdw=="),
    AuthCase("jwt-three-dots", "POST", HOOK_URL, "Bearer a.b.c"),
    AuthCase("jwt-not-base64", "POST", HOOK_URL, "Bearer !!!.???.***"),
    AuthCase("jwt-20k-characters", "POST", HOOK_URL, "Bearer " + "a" * 20_000),
    AuthCase("jwt-utf8-bytes-as-latin-1", "POST", HOOK_URL, "Bearer " + "\u0436".encode().decode("latin-1")),
    AuthCase("jwt-non-latin-1", "POST", HOOK_URL, "Bearer t\u0436k\u00e9n"),
    AuthCase("jwt-nul", "POST", HOOK_URL, "Bearer a\u0000b"),
    AuthCase("jwt-alg-none", "POST", HOOK_URL, "Bearer " + token_of({**ES384, "alg": "none"}, CLAIMS, b"")),
    AuthCase("jwt-alg-hs256", "POST", HOOK_URL, "Bearer " + token_of({**ES384, "alg": "HS256"}, CLAIMS)),
    AuthCase("jwt-header-array", "POST", HOOK_URL, "Bearer " + token_of([], CLAIMS)),
    AuthCase("jwt-header-deep", "POST", HOOK_URL, "Bearer " + token_of(deep_json(5000).encode(), CLAIMS)),
    AuthCase("jwt-payload-not-json", "POST", HOOK_URL, "Bearer " + token_of(ES384, b"\xff\xfe")),
    AuthCase("jwt-kid-object", "POST", HOOK_URL, "Bearer " + token_of({**ES384, "kid": {"a": 1}}, CLAIMS)),
    AuthCase("jwt-jku-number", "POST", HOOK_URL, "Bearer " + token_of({**ES384, "jku": 5}, CLAIMS)),
    AuthCase("jwt-untrusted-iss", "POST", HOOK_URL, "Bearer " + token_of(ES384, {**CLAIMS, "iss": "https://evil"})),
    AuthCase("jwt-iss-number", "POST", HOOK_URL, "Bearer " + token_of(ES384, {**CLAIMS, "iss": 5})),
    AuthCase("jwt-bad-signature", "POST", HOOK_URL, "Bearer " + token_of(ES384, CLAIMS)),
    AuthCase("jwt-discovery-without-token", "GET", "/cds-services", None),
    AuthCase("jwt-feedback-without-token", "POST", FEEDBACK_URL, None),
    AuthCase("jwt-sandbox-feedback-without-token", "GET", "/sandbox/feedback", None),
    AuthCase("jwt-sandbox-report-without-token", "GET", "/sandbox/feedback-report", None),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    config = Config(feedback_db=tmp_path_factory.mktemp("bad") / "f.db", allowed_fhir_servers=(FHIR,))
    return create_app(config).test_client()


@pytest.fixture(scope="module")
def data_quality_statements() -> set[str]:
    statements = (yaml.safe_load(path.read_text()) for path in (ROOT / "cards").glob("*.yaml"))
    return {s["id"] for s in statements if isinstance(s, dict) and s.get("group") == "data-quality"}


def statements_of(card: dict[str, Any]) -> set[str]:
    return set((card.get("extension") or {}).get("org.sarcoma-cds.statements", []))


def send(client, case: Case, body: Body):
    made = case.make(copy.deepcopy(body))
    data, content_type = made if isinstance(made, tuple) else (json.dumps(made).encode(), "application/json")
    return client.post(case.url, data=data, content_type=content_type)


def check(response, case: Case, dq_statements: set[str]) -> None:
    status = response.status_code
    assert status == case.status, f"{case.id}: expected {case.status}, got {status}: {response.get_data()[:300]!r}"
    body = response.get_json(silent=True)
    assert isinstance(body, dict), f"{case.id}: body is not a JSON object"
    if status >= 400:
        assert_outcome(body, status, case.says)
        return
    if case.url.endswith("/feedback"):
        assert set(body) == {"stored", "duplicates"}
        return
    assert isinstance(body["cards"], list)
    if case.expect == DATA_QUALITY:
        assert any(statements_of(card) & dq_statements for card in body["cards"]), f"{case.id}: no data-quality card"


def assert_outcome(body: Body, status: int, says: str) -> None:
    """A FHIR OperationOutcome with one error of the status's issue code, saying ``says`` in few words."""
    assert body["resourceType"] == "OperationOutcome"
    [issue] = body["issue"]
    assert issue["severity"] == "error" and issue["code"] == OUTCOME_CODES[status], issue
    assert says and says in issue["diagnostics"], issue["diagnostics"]
    assert len(issue["diagnostics"]) < 400  # says what is wrong, never echoes a hostile value at length


def test_the_corpus_holds_at_least_300_cases_each_with_its_status_and_words():
    cases = ALL_CASES
    print(f"bad-input corpus: {len(cases)} cases")
    assert len(cases) >= 300
    assert len({case.id for case in cases}) == len(cases)
    assert all(case.says for case in cases if isinstance(case, (Case, FaultCase)) and case.status >= 400)


def test_the_base_requests_are_valid_and_show_no_data_quality_card(client, data_quality_statements):
    response = client.post(HOOK_URL, json=valid_hook_body())
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert cards and not any(statements_of(card) & data_quality_statements for card in cards)
    assert client.post(FEEDBACK_URL, json=valid_feedback_body()).status_code == 200


KNOWN_FAILURES: dict[str, str] = {}  # case id -> why it still fails; empty: every case passes


def params(cases: list[Case]) -> list[Any]:
    return [
        pytest.param(
            case,
            id=case.id,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[case.id])] if case.id in KNOWN_FAILURES else [],
        )
        for case in cases
    ]


ALL_HOOK_CASES = [*HOOK_CASES, *DATE_CASES, *NUMBER_CASES, *NEST_CASES, *SPELLING_CASES, *ROUTE_CASES]
ALL_FEEDBACK_CASES = [*FEEDBACK_CASES, *FEEDBACK_MORE_CASES]
ALL_CASES: list[Case | FaultCase | AuthCase] = [*ALL_HOOK_CASES, *ALL_FEEDBACK_CASES, *FAULT_CASES, *AUTH_CASES]


@pytest.mark.parametrize("case", params(ALL_HOOK_CASES))
def test_hook_endpoint_never_fails_on_bad_input(client, case, data_quality_statements):
    check(send(client, case, valid_hook_body()), case, data_quality_statements)


@pytest.mark.parametrize("case", params(ALL_FEEDBACK_CASES))
def test_feedback_endpoint_never_fails_on_bad_input(client, case, data_quality_statements):
    check(send(client, case, valid_feedback_body()), case, data_quality_statements)


@pytest.mark.parametrize("url", [HOOK_URL, FEEDBACK_URL])
def test_a_chunked_body_over_the_limit_gets_413(client, url):
    """No Content-Length to refuse up front: the body is cut off while read, and the answer is still 413."""
    limit = 10_000_000 if url == HOOK_URL else 65_536
    data = b'{"feedback": "' + b"x" * (limit + 10) + b'"}'
    response = client.post(
        url,
        input_stream=io.BytesIO(data),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413, response.get_data(as_text=True)[:200]
    assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.fixture(scope="module")
def fault_servers():
    with contextlib.ExitStack() as stack:
        yield {case.id: stack.enter_context(running(case.behaviour)) for case in FAULT_CASES}


@pytest.fixture(scope="module")
def fault_client(tmp_path_factory, fault_servers):
    allowed = tuple(server.url + "/fhir" for server in fault_servers.values())
    config = Config(
        feedback_db=tmp_path_factory.mktemp("faults") / "f.db",
        allowed_fhir_servers=allowed,
        fhir_deadline_s=1.0,
        fhir_timeout_s=0.8,
    )
    return create_app(config).test_client()


@pytest.mark.parametrize("case", FAULT_CASES, ids=lambda case: case.id)
def test_a_misbehaving_fhir_server_gives_its_outcome_within_the_deadline(fault_client, fault_servers, case):
    body = naming_server(fault_servers[case.id].url + "/fhir", BEARER, "patient")(valid_hook_body())
    started = time.monotonic()
    response = fault_client.post(HOOK_URL, json=body)
    assert time.monotonic() - started < 1.0 + 0.8  # the deadline, the cut-off and the 412
    assert response.status_code == case.status, response.get_data()[:300]
    assert_outcome(response.get_json(), case.status, case.says)


@pytest.fixture(scope="module")
def auth_client(tmp_path_factory):
    folder = tmp_path_factory.mktemp("auth")
    issuers = folder / "issuers.json"
    public = ec.generate_private_key(ec.SECP384R1()).public_key()  # its private half signs nothing here
    key = {**ECAlgorithm.to_jwk(public, as_dict=True), "kid": "k1"}
    issuers.write_text(json.dumps([{"iss": "https://ehr.example.org", "jwks": {"keys": [key]}}]))
    config = Config(
        feedback_db=folder / "f.db",
        auth_required=True,
        trusted_issuers_file=issuers,
        public_base_url="https://cds.example.org",
        sandbox=True,
    )
    return create_app(config).test_client()


@pytest.mark.parametrize("case", AUTH_CASES, ids=lambda case: case.id)
def test_a_hostile_client_token_gets_401_without_details(auth_client, case):
    environ = {} if case.authorization is None else {"HTTP_AUTHORIZATION": case.authorization}
    body = valid_feedback_body() if case.url == FEEDBACK_URL else valid_hook_body()
    response = auth_client.open(
        case.url, method=case.method, json=body if case.method == "POST" else None, environ_overrides=environ
    )
    assert response.status_code == 401, response.get_data()[:300]
    assert_outcome(response.get_json(), 401, "Client authentication failed")


# --- property-based: any date, number or nesting inside a resource gets its exact status ---------------

PROPERTY = settings(max_examples=40, deadline=None)

year_offsets = st.builds(
    "{}T{:02}:{:02}:{:02}{}{:02}:{:02}".format,
    st.dates().map(date.isoformat),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.sampled_from("+-"),
    st.integers(0, 25),
    st.integers(0, 61),
)
date_like = st.one_of(
    st.dates().map(date.isoformat),
    year_offsets,
    st.from_regex(r"-?[0-9\uff10-\uff19]{1,12}(-[0-9]{1,3}(-[0-9]{1,3})?)?", fullmatch=True),
    st.integers(-(10**300), 10**300),  # finite as a double, so valid JSON to orjson (1e400 is not: a 400 case above)
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.none(),
    st.booleans(),
)
number_like = st.one_of(
    st.integers(-(10**300), 10**300),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=6).map(str),
    st.booleans(),
    st.none(),
)


def assert_status(client, body: Body | Raw, status: int) -> None:
    data, content_type = body if isinstance(body, tuple) else (json.dumps(body).encode(), "application/json")
    response = client.post(HOOK_URL, data=data, content_type=content_type)
    assert response.status_code == status, response.get_data()[:300]
    if status == 200:
        assert isinstance(response.get_json()["cards"], list)
    else:
        assert_outcome(response.get_json(), status, "The request body is not valid JSON")


@PROPERTY
@given(field=st.sampled_from(sorted(DATE_FIELDS)), value=date_like)
def test_any_date_inside_a_resource_gets_cards(client, field, value):
    assert_status(client, setting(DATE_FIELDS[field], value)(valid_hook_body()), 200)


@PROPERTY
@given(field=st.sampled_from(sorted(NUMBER_FIELDS)), value=number_like)
def test_any_number_inside_a_resource_gets_cards(client, field, value):
    assert_status(client, NUMBER_FIELDS[field](value)(valid_hook_body()), 200)


@PROPERTY
@given(place=st.sampled_from(sorted(NEST_PLACES)), depth=st.integers(1, 1000) | st.integers(1030, 5000))
def test_any_nesting_inside_a_resource_gets_cards_or_a_400_past_the_json_depth_limit(client, place, depth):
    """orjson reads JSON nested up to 1024 levels; the prefetch puts a resource's elements 6 to 8 levels down."""
    assert_status(client, nesting_at(NEST_PLACES[place], depth)(valid_hook_body()), 200 if depth <= 1000 else 400)
