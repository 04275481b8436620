"""Malformed and hostile requests: a 4xx OperationOutcome, or 200 where the data are merely odd; never 5xx.

Each case starts from a valid request for a staged fixture patient (``BASE_FIXTURE``) and breaks one
thing. Expectations:
- ``REFUSED``: a 4xx with an OperationOutcome body;
- ``ODD``: 200 with a cards list, or a 4xx OperationOutcome (the service may judge either way);
- ``DATA_QUALITY``: 200 with a data-quality card (group ``data-quality`` in ``cards/``).
"""

from __future__ import annotations

import copy
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds_service import Config, create_app
from fhir_fixtures.ehr import hook_request

ROOT = Path(__file__).resolve().parents[2]
BASE_FIXTURE = ROOT / "fhir_fixtures" / "sts-iiia-thigh-tnm-only.json"
HOOK_URL = "/cds-services/sarcoma-patient-view"
FEEDBACK_URL = HOOK_URL + "/feedback"
MB = 1_000_000
REFUSED, ODD, DATA_QUALITY = "refused", "odd", "data-quality"
Body = dict[str, Any]
Raw = tuple[bytes, str]  # body bytes, content type


@dataclass(frozen=True)
class Case:
    id: str
    url: str
    make: Callable[[Body], Body | Raw]
    expect: str = REFUSED
    status: int | None = None  # the exact status, where one is required


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
    Case("truncated-json", HOOK_URL, raw_of(lambda text: text[: len(text) // 2])),
    Case("empty-body", HOOK_URL, raw(b"")),
    Case("whitespace-body", HOOK_URL, raw(b"   \n\t ")),
    Case("json-array", HOOK_URL, raw(b"[]")),
    Case("json-number", HOOK_URL, raw(b"42")),
    Case("json-null", HOOK_URL, raw(b"null")),
    Case("json-string", HOOK_URL, raw(b'"patient-view"')),
    Case("json-true", HOOK_URL, raw(b"true")),
    Case(
        "invalid-utf8-bytes",
        HOOK_URL,
        lambda body: (
            json.dumps(body).encode().replace(b'"patient-view"', b'"patient-\xff\xfeview"'),
            "application/json",
        ),
    ),
    Case("utf16-body", HOOK_URL, lambda body: (json.dumps(body).encode("utf-16"), "application/json")),
    Case(
        "raw-nul-byte",
        HOOK_URL,
        lambda body: (json.dumps(body).encode().replace(b'"hook"', b'"ho\x00ok"'), "application/json"),
    ),
    Case(
        "lone-surrogate", HOOK_URL, raw_of(lambda text: text.replace('"Practitioner/dr-1"', '"Practitioner/\\ud800"'))
    ),
    Case("trailing-garbage", HOOK_URL, raw_of(lambda text: text + "}{")),
    Case("nan-literal", HOOK_URL, raw_of(lambda text: text.replace('"prefetch": {', '"x": NaN, "prefetch": {', 1))),
    Case(
        "infinite-number", HOOK_URL, raw_of(lambda text: text.replace('"prefetch": {', '"x": 1e400, "prefetch": {', 1))
    ),
    Case(
        "deep-nesting-10000-in-prefetch",
        HOOK_URL,
        raw_of(lambda text: text.replace('"prefetch": {', f'"prefetch": {{"deep": {deep_json(10_000)}, ', 1)),
    ),
    Case("deep-nesting-10000-top-level", HOOK_URL, raw(deep_json(10_000).encode())),
    Case(
        "deep-nesting-objects-in-context",
        HOOK_URL,
        raw_of(
            lambda text: text.replace(
                '"context": {', '"context": {"deep": ' + '{"a":' * 10_000 + "{}" + "}" * 10_000 + ", ", 1
            )
        ),
    ),
    Case(
        "body-20mb", HOOK_URL, lambda body: (b'{"hook": "' + b"x" * (20 * MB) + b'"}', "application/json"), status=413
    ),
    Case("form-encoded", HOOK_URL, raw(b"hook=patient-view&hookInstance=x", "application/x-www-form-urlencoded")),
    Case(
        "multipart",
        HOOK_URL,
        raw(
            b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b--\r\n', "multipart/form-data; boundary=b"
        ),
    ),
    Case("wrong-content-type-valid-json", HOOK_URL, lambda body: (json.dumps(body).encode(), "text/plain"), ODD),
    Case(
        "duplicate-keys",
        HOOK_URL,
        raw_of(lambda text: text.replace('"hook": "patient-view"', '"hook": "order-sign", "hook": "patient-view"', 1)),
        ODD,
    ),
    Case(
        "duplicate-patient-id",
        HOOK_URL,
        raw_of(lambda text: text.replace('"context": {', '"context": {"patientId": "someone-else", ', 1)),
        ODD,
    ),
    # top-level fields
    Case("hook-missing", HOOK_URL, setting("hook", ...)),
    Case("hook-number", HOOK_URL, setting("hook", 7)),
    Case("hook-other", HOOK_URL, setting("hook", "order-sign")),
    Case("hook-empty", HOOK_URL, setting("hook", "")),
    Case("hook-1mb", HOOK_URL, setting("hook", "x" * MB)),
    Case("hook-escaped-nul", HOOK_URL, setting("hook", "patient-view\u0000")),
    Case("hookInstance-missing", HOOK_URL, setting("hookInstance", ...)),
    Case("hookInstance-not-uuid", HOOK_URL, setting("hookInstance", "not-a-uuid")),
    Case("hookInstance-number", HOOK_URL, setting("hookInstance", 12345)),
    Case("hookInstance-object", HOOK_URL, setting("hookInstance", {"id": 1})),
    Case("hookInstance-1mb", HOOK_URL, setting("hookInstance", "a" * MB)),
    # context
    Case("context-missing", HOOK_URL, setting("context", ...)),
    Case("context-list", HOOK_URL, setting("context", [])),
    Case("context-string", HOOK_URL, setting("context", "patientId=1")),
    Case("patientId-missing", HOOK_URL, setting("context.patientId", ...)),
    Case("patientId-number", HOOK_URL, setting("context.patientId", 1)),
    Case("patientId-null", HOOK_URL, setting("context.patientId", None)),
    Case("patientId-reference", HOOK_URL, setting("context.patientId", "Patient/p1")),
    Case("patientId-traversal", HOOK_URL, setting("context.patientId", "../../etc/passwd")),
    Case("patientId-query-injection", HOOK_URL, setting("context.patientId", "p1&_include=*")),
    Case("patientId-nul", HOOK_URL, setting("context.patientId", "p1\u0000")),
    Case("patientId-1mb", HOOK_URL, setting("context.patientId", "p" * MB)),
    Case("userId-missing", HOOK_URL, setting("context.userId", ...)),
    Case("userId-organization", HOOK_URL, setting("context.userId", "Organization/o1")),
    Case("userId-list", HOOK_URL, setting("context.userId", ["Practitioner/dr-1"])),
    Case("encounterId-number", HOOK_URL, setting("context.encounterId", 5)),
    Case("encounterId-traversal", HOOK_URL, setting("context.encounterId", "../x")),
    # fhirServer and fhirAuthorization
    Case("fhirServer-number", HOOK_URL, setting("fhirServer", 443)),
    Case("fhirServer-not-url", HOOK_URL, setting("fhirServer", "ehr")),
    Case("fhirServer-file-scheme", HOOK_URL, setting("fhirServer", "file:///etc/passwd")),
    Case("fhirServer-javascript", HOOK_URL, setting("fhirServer", "javascript:alert(1)")),
    Case("fhirServer-credentials", HOOK_URL, setting("fhirServer", "https://user:pw@ehr.example.com/fhir")),
    Case("fhirServer-1mb", HOOK_URL, setting("fhirServer", "https://ehr.example.com/" + "a" * MB)),
    # fhirServer outside the allow-list, however spelt: 403 before any call
    *(
        Case(f"fhirServer-{name}", HOOK_URL, naming_server(url, None, "patient"), status=403)
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
        status=412,
    ),
    Case(
        "fhirAuthorization-token-with-newline",
        HOOK_URL,
        naming_server(FHIR, {**BEARER, "access_token": "t\r\nX-Injected: 1"}, "patient"),
        status=412,
    ),
    Case(
        "fhirAuthorization-string",
        HOOK_URL,
        lambda b: {**b, "fhirServer": "https://ehr.example.com/fhir", "fhirAuthorization": "Bearer x"},
    ),
    Case(
        "fhirAuthorization-without-server",
        HOOK_URL,
        setting("fhirAuthorization", {"access_token": "t", "token_type": "Bearer"}),
    ),
    Case(
        "fhirAuthorization-mac",
        HOOK_URL,
        lambda b: {
            **b,
            "fhirServer": "https://ehr.example.com/fhir",
            "fhirAuthorization": {"access_token": "t", "token_type": "MAC"},
        },
    ),
    Case(
        "fhirAuthorization-token-number",
        HOOK_URL,
        lambda b: {
            **b,
            "fhirServer": "https://ehr.example.com/fhir",
            "fhirAuthorization": {"access_token": 5, "token_type": "Bearer"},
        },
    ),
    Case(
        "fhirAuthorization-expires-string",
        HOOK_URL,
        lambda b: {
            **b,
            "fhirServer": "https://ehr.example.com/fhir",
            "fhirAuthorization": {"access_token": "t", "token_type": "Bearer", "expires_in": "300"},
        },
    ),
    Case(
        "fhirAuthorization-expires-bool",
        HOOK_URL,
        lambda b: {
            **b,
            "fhirServer": "https://ehr.example.com/fhir",
            "fhirAuthorization": {"access_token": "t", "token_type": "Bearer", "expires_in": True},
        },
    ),
    # prefetch shape
    Case("prefetch-list", HOOK_URL, setting("prefetch", [])),
    Case("prefetch-string", HOOK_URL, setting("prefetch", "all")),
    Case("prefetch-value-number", HOOK_URL, setting("prefetch.patient", 1)),
    Case("prefetch-value-list", HOOK_URL, setting("prefetch.conditions", [])),
    Case("prefetch-value-true", HOOK_URL, setting("prefetch.patient", True)),
    Case("prefetch-no-resourceType", HOOK_URL, setting("prefetch.patient", {"id": "x"})),
    Case("prefetch-resourceType-number", HOOK_URL, setting("prefetch.patient", {"resourceType": 5})),
    Case(
        "prefetch-unknown-resource-type",
        HOOK_URL,
        setting("prefetch.patient", {"resourceType": "Spaceship", "id": "x"}),
        ODD,
    ),
    Case(
        "prefetch-unknown-type-in-searchset",
        HOOK_URL,
        adding_entries("conditions", {"resource": {"resourceType": "Spaceship", "id": "s"}}),
        ODD,
    ),
    Case(
        "prefetch-unknown-key", HOOK_URL, setting("prefetch.somethingElse", {"resourceType": "Patient", "id": "x"}), ODD
    ),
    Case("prefetch-entries-not-objects", HOOK_URL, adding_entries("conditions", "x", 1, None, [], True), ODD),
    Case(
        "prefetch-entry-resource-not-object",
        HOOK_URL,
        adding_entries("conditions", {"resource": "Condition/1"}, {"resource": [1]}),
        ODD,
    ),
    Case(
        "prefetch-entry-search-not-object",
        HOOK_URL,
        adding_entries("conditions", {"search": "match", "resource": {"resourceType": "Condition", "id": "c9"}}),
        ODD,
    ),
    Case("prefetch-entry-is-number", HOOK_URL, setting("prefetch.conditions.entry", 5)),
    Case("prefetch-entry-is-object", HOOK_URL, setting("prefetch.conditions.entry", {"resource": {}})),
    Case("prefetch-link-is-number", HOOK_URL, setting("prefetch.conditions.link", 5)),
    Case(
        "prefetch-link-url-number", HOOK_URL, setting("prefetch.conditions.link", [{"relation": "next", "url": 5}]), ODD
    ),
    Case(
        "prefetch-nested-bundle",
        HOOK_URL,
        adding_entries(
            "conditions",
            {"resource": {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Condition"}}]}},
        ),
        ODD,
    ),
    Case(
        "prefetch-next-link-other-host-no-server",
        HOOK_URL,
        setting("prefetch.conditions.link", NEXT_ELSEWHERE),
        status=412,
    ),
    Case(
        "prefetch-next-link-other-host",
        HOOK_URL,
        lambda b: setting("prefetch.conditions.link", NEXT_ELSEWHERE)(
            {**b, "fhirServer": "https://ehr.example.com/fhir"}
        ),
        status=412,
    ),
    Case(
        "prefetch-10000-keys",
        HOOK_URL,
        lambda b: {**b, "prefetch": {**b["prefetch"], **{f"k{n}": None for n in range(10_000)}}},
        ODD,
    ),
    Case("prefetch-1mb-key", HOOK_URL, lambda b: {**b, "prefetch": {**b["prefetch"], "k" * MB: None}}, ODD),
    Case(
        "prefetch-1mb-string-in-resource",
        HOOK_URL,
        setting("prefetch.conditions.entry.0.resource.note", [{"text": "n" * MB}]),
        ODD,
    ),
    Case("prefetch-50000-empty-entries", HOOK_URL, setting("prefetch.conditions.entry", [{}] * 50_000), ODD),
    # bounded work per call: CDS_MAX_RESOURCES (20,000 by default) across every prefetch key
    Case("prefetch-20001-conditions", HOOK_URL, conditions(20_001), status=413),
    Case(
        "prefetch-20001-resources-across-keys",
        HOOK_URL,
        lambda b: setting("prefetch.procedures.entry", [{"resource": {"resourceType": "Procedure"}}] * 10_001)(
            conditions(10_000)(b)
        ),
        status=413,
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
        status=400,
    ),
    # patients that do not match
    Case("patient-id-mismatch", HOOK_URL, setting("prefetch.patient.id", "someone-else"), status=400),
    Case(
        "condition-of-another-patient",
        HOOK_URL,
        setting("prefetch.conditions.entry.0.resource.subject", OTHER_PATIENT),
        status=400,
    ),
    Case(
        "observation-of-another-patient",
        HOOK_URL,
        setting("prefetch.observations.entry.0.resource.subject", OTHER_PATIENT),
        status=400,
    ),
    # resources that fail FHIR validation
    Case("observation-status-42", HOOK_URL, each_observation(lambda r: r.__setitem__("status", 42)), DATA_QUALITY),
    Case("observation-code-string", HOOK_URL, each_observation(lambda r: r.__setitem__("code", "x")), DATA_QUALITY),
    Case(
        "observation-value-wrong-type",
        HOOK_URL,
        each_observation(lambda r: r.__setitem__("valueCodeableConcept", "T2")),
        DATA_QUALITY,
    ),
    Case(
        "observation-unknown-field",
        HOOK_URL,
        each_observation(lambda r: r.__setitem__("bogusField", {"x": 1})),
        DATA_QUALITY,
    ),
    Case(
        "observation-bad-date",
        HOOK_URL,
        setting("prefetch.observations.entry.0.resource.effectiveDateTime", "2020-13-45"),
        ODD,
    ),
    Case(
        "observation-value-nan-string",
        HOOK_URL,
        setting("prefetch.observations.entry.0.resource.valueQuantity", {"value": "NaN"}),
        ODD,
    ),
    Case(
        "observation-deep-extension",
        HOOK_URL,
        setting("prefetch.observations.entry.0.resource.extension", [nested(500)]),
        ODD,
    ),
    Case("condition-code-string", HOOK_URL, setting("prefetch.conditions.entry.0.resource.code", "x"), DATA_QUALITY),
    Case(
        "condition-subject-reference-number",
        HOOK_URL,
        setting("prefetch.conditions.entry.0.resource.subject", {"reference": 5}),
        DATA_QUALITY,
    ),
    Case("condition-id-list", HOOK_URL, setting("prefetch.conditions.entry.0.resource.id", ["a"]), DATA_QUALITY),
    Case("patient-birthdate-garbage", HOOK_URL, setting("prefetch.patient.birthDate", "yesterday"), ODD),
    # paths and methods
    Case("unknown-service", "/cds-services/nope", lambda b: b, status=404),
    Case("service-id-traversal", "/cds-services/..%2f..%2fetc%2fpasswd", lambda b: b, status=404),
]

FEEDBACK_CASES = [
    Case("fb-truncated-json", FEEDBACK_URL, raw_of(lambda text: text[:-5])),
    Case("fb-json-array", FEEDBACK_URL, raw(b"[]")),
    Case("fb-json-null", FEEDBACK_URL, raw(b"null")),
    Case("fb-invalid-utf8", FEEDBACK_URL, raw(b'{"feedback": [{"card": "\xff"}]}')),
    Case("fb-deep-nesting", FEEDBACK_URL, raw(('{"feedback": ' + deep_json(10_000) + "}").encode())),
    Case(
        "fb-body-20mb",
        FEEDBACK_URL,
        lambda body: (b'{"feedback": "' + b"x" * (20 * MB) + b'"}', "application/json"),
        status=413,
    ),
    Case("fb-missing", FEEDBACK_URL, setting("feedback", ...)),
    Case("fb-not-list", FEEDBACK_URL, setting("feedback", {"card": "c"})),
    Case("fb-empty-list", FEEDBACK_URL, setting("feedback", []), ODD),
    Case("fb-item-not-object", FEEDBACK_URL, setting("feedback", ["card-1", 2, None])),
    Case("fb-card-missing", FEEDBACK_URL, setting("feedback.0.card", ...)),
    Case("fb-card-number", FEEDBACK_URL, setting("feedback.0.card", 1)),
    Case("fb-card-1mb", FEEDBACK_URL, setting("feedback.0.card", "c" * MB)),
    Case("fb-outcome-unknown", FEEDBACK_URL, setting("feedback.0.outcome", "maybe")),
    Case("fb-outcome-number", FEEDBACK_URL, setting("feedback.0.outcome", 1)),
    Case("fb-timestamp-garbage", FEEDBACK_URL, setting("feedback.0.outcomeTimestamp", "yesterday")),
    Case("fb-timestamp-no-zone", FEEDBACK_URL, setting("feedback.0.outcomeTimestamp", "2026-11-24T10:00:00")),
    Case("fb-timestamp-number", FEEDBACK_URL, setting("feedback.0.outcomeTimestamp", 1732442400)),
    Case("fb-accepted-without-suggestions", FEEDBACK_URL, setting("feedback.0.outcome", "accepted")),
    Case(
        "fb-accepted-suggestions-not-list",
        FEEDBACK_URL,
        lambda b: setting("feedback.0.acceptedSuggestions", "s1")(setting("feedback.0.outcome", "accepted")(b)),
    ),
    Case("fb-override-reason-string", FEEDBACK_URL, setting("feedback.0.overrideReason", "because")),
    Case("fb-override-reason-empty", FEEDBACK_URL, setting("feedback.0.overrideReason", {})),
    Case("fb-101-items", FEEDBACK_URL, lambda b: {"feedback": b["feedback"] * 101}),
    Case(
        "fb-duplicate-keys",
        FEEDBACK_URL,
        raw_of(lambda text: text.replace('"outcome": "overridden"', '"outcome": "bogus", "outcome": "overridden"', 1)),
        ODD,
    ),
    Case("fb-nul-in-card", FEEDBACK_URL, setting("feedback.0.card", "card\u0000id"), ODD),
    # bounded storage: CDS_MAX_FEEDBACK_BYTES (64 KiB) per call, comments of at most 2,000 characters
    Case("fb-body-100kb", FEEDBACK_URL, lambda b: {**b, "padding": "x" * 100_000}, status=413),
    Case(
        "fb-comment-2001-chars",
        FEEDBACK_URL,
        setting("feedback.0.overrideReason.userComment", "c" * 2001),
        status=400,
    ),
    Case(
        "fb-100-items-with-long-comments",
        FEEDBACK_URL,
        lambda b: {"feedback": [{**b["feedback"][0], "overrideReason": {"userComment": "c" * 2000}}] * 100},
        status=413,
    ),
    Case("fb-unknown-service", "/cds-services/nope/feedback", lambda b: b, status=404),
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
    assert status < 500, f"{case.id}: {status} {response.get_data(as_text=True)[:300]}"
    if case.status is not None:
        assert status == case.status, f"{case.id}: expected {case.status}, got {status}"
    body = response.get_json(silent=True)
    assert isinstance(body, dict), f"{case.id}: body is not a JSON object"
    if status >= 400:
        assert case.expect in (REFUSED, ODD), f"{case.id}: refused with {status} but the data are only odd"
        assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["diagnostics"]
        return
    assert case.expect != REFUSED, f"{case.id}: accepted with {status}"
    if case.url.endswith("/feedback"):
        assert set(body) == {"stored", "duplicates"}
        return
    assert isinstance(body["cards"], list)
    if case.expect == DATA_QUALITY:
        assert any(statements_of(card) & dq_statements for card in body["cards"]), f"{case.id}: no data-quality card"


def test_the_corpus_is_large_enough():
    assert len(HOOK_CASES) + len(FEEDBACK_CASES) >= 60
    assert len({case.id for case in HOOK_CASES + FEEDBACK_CASES}) == len(HOOK_CASES) + len(FEEDBACK_CASES)


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


@pytest.mark.parametrize("case", params(HOOK_CASES))
def test_hook_endpoint_never_fails_on_bad_input(client, case, data_quality_statements):
    check(send(client, case, valid_hook_body()), case, data_quality_statements)


@pytest.mark.parametrize("case", params(FEEDBACK_CASES))
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
