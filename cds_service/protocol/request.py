"""The hook request: parsed and validated once at the edge (CDS Hooks 2.0 "HTTP Request").

``parse_hook_request`` turns a JSON body into a ``HookRequest`` or raises ``InvalidRequest`` with a
message naming the offending field (never its value: it may be PHI or a token).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..errors import InvalidRequest
from .services import ServiceDefinition

FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
USER_REF = re.compile(r"^(Practitioner|PractitionerRole|Patient|RelatedPerson)/[A-Za-z0-9\-.]{1,64}$")
MAX_TEXT = 4096


@dataclass(frozen=True)
class FhirAuthorization:
    access_token: str
    token_type: str
    expires_in: int | None = None
    scope: str | None = None
    subject: str | None = None
    patient: str | None = None

    def __repr__(self) -> str:  # never show the token in logs or tracebacks
        return f"FhirAuthorization(token_type={self.token_type!r}, access_token='***')"


@dataclass(frozen=True)
class HookRequest:
    hook: str
    hook_instance: str
    context: Mapping[str, Any]
    fhir_server: str | None = None
    fhir_authorization: FhirAuthorization | None = None
    prefetch: Mapping[str, Any] = field(default_factory=dict)

    @property
    def patient_id(self) -> str:
        return str(self.context["patientId"])


def _text(body: Mapping[str, Any], name: str, *, where: str = "", required: bool = True) -> str | None:
    value = body.get(name)
    label = f"{where}{name}"
    if value is None:
        if required:
            raise InvalidRequest(f"'{label}' is required", expression=[label])
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"'{label}' must be a non-empty string", expression=[label])
    if len(value) > MAX_TEXT:
        raise InvalidRequest(f"'{label}' is too long", expression=[label])
    return value


def _parse_context(body: Mapping[str, Any]) -> Mapping[str, Any]:
    context = body.get("context")
    if not isinstance(context, dict):
        raise InvalidRequest("'context' is required and must be an object", expression=["context"])
    patient_id = _text(context, "patientId", where="context.")
    if not FHIR_ID.match(patient_id or ""):
        raise InvalidRequest("'context.patientId' must be a FHIR id", expression=["context.patientId"])
    user_id = _text(context, "userId", where="context.")
    if not USER_REF.match(user_id or ""):
        raise InvalidRequest(
            "'context.userId' must be Practitioner/, PractitionerRole/, Patient/ or RelatedPerson/ plus an id",
            expression=["context.userId"],
        )
    encounter_id = _text(context, "encounterId", where="context.", required=False)
    if encounter_id is not None and not FHIR_ID.match(encounter_id):
        raise InvalidRequest("'context.encounterId' must be a FHIR id", expression=["context.encounterId"])
    return context


def _parse_fhir_server(body: Mapping[str, Any]) -> str | None:
    server = _text(body, "fhirServer", required=False)
    if server is None:
        return None
    try:
        parts = urlsplit(server)
        parts.port  # noqa: B018 - raises ValueError for an out-of-range port
    except ValueError:
        raise InvalidRequest("'fhirServer' is not a valid URL", expression=["fhirServer"]) from None
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.username or parts.password:
        raise InvalidRequest(
            "'fhirServer' must be an absolute http(s) URL without credentials", expression=["fhirServer"]
        )
    return server.rstrip("/")


def _parse_authorization(body: Mapping[str, Any], fhir_server: str | None) -> FhirAuthorization | None:
    auth = body.get("fhirAuthorization")
    if auth is None:
        return None
    if not isinstance(auth, dict):
        raise InvalidRequest("'fhirAuthorization' must be an object", expression=["fhirAuthorization"])
    if fhir_server is None:
        raise InvalidRequest("'fhirServer' is required when 'fhirAuthorization' is present", expression=["fhirServer"])
    where = "fhirAuthorization."
    token = _text(auth, "access_token", where=where)
    token_type = _text(auth, "token_type", where=where)
    if (token_type or "").lower() != "bearer":
        raise InvalidRequest("'fhirAuthorization.token_type' must be 'Bearer'", expression=[f"{where}token_type"])
    expires_in = auth.get("expires_in")
    if expires_in is not None and (not isinstance(expires_in, int) or isinstance(expires_in, bool)):
        raise InvalidRequest("'fhirAuthorization.expires_in' must be an integer", expression=[f"{where}expires_in"])
    return FhirAuthorization(
        access_token=token or "",
        token_type="Bearer",
        expires_in=expires_in,
        scope=_text(auth, "scope", where=where, required=False),
        subject=_text(auth, "subject", where=where, required=False),
        patient=_text(auth, "patient", where=where, required=False),
    )


def _parse_prefetch(body: Mapping[str, Any], service_keys: frozenset[str]) -> Mapping[str, Any]:
    """The prefetch values for this service's keys; keys it did not ask for are ignored (never echoed)."""
    prefetch = body.get("prefetch")
    if prefetch is None:
        return {}
    if not isinstance(prefetch, dict):
        raise InvalidRequest("'prefetch' must be an object", expression=["prefetch"])
    for key, value in prefetch.items():
        if value is not None and not isinstance(value, dict):
            named = f"'prefetch.{key}'" if key in service_keys else "a prefetch key this service did not ask for"
            raise InvalidRequest(
                f"{named} must be a FHIR resource, a Bundle, or null",
                expression=[f"prefetch.{key}"] if key in service_keys else ["prefetch"],
            )
    return {key: value for key, value in prefetch.items() if key in service_keys}


def parse_hook_request(body: Any, service: ServiceDefinition) -> HookRequest:
    """Validate a hook call for ``service``; raise ``InvalidRequest`` naming the bad field."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object")
    hook = _text(body, "hook")
    if hook != service.hook:
        raise InvalidRequest(f"'hook' must be '{service.hook}' for service '{service.id}'", expression=["hook"])
    hook_instance = _text(body, "hookInstance")
    try:
        hook_instance = str(uuid.UUID(hook_instance or ""))  # canonical form: safe in log lines
    except ValueError:
        raise InvalidRequest("'hookInstance' must be a UUID", expression=["hookInstance"]) from None
    fhir_server = _parse_fhir_server(body)
    return HookRequest(
        hook=hook or "",
        hook_instance=hook_instance or "",
        context=_parse_context(body),
        fhir_server=fhir_server,
        fhir_authorization=_parse_authorization(body, fhir_server),
        prefetch=_parse_prefetch(body, frozenset(service.prefetch)),
    )
