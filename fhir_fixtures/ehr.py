"""Fixture patients (``fhir_fixtures/``) and the hook requests an EHR would send for them.

A fixture is a FHIR R4 transaction (or collection) Bundle named ``<slug>.json``; ``index.yaml``
describes each one. ``build_prefetch`` answers the service's prefetch templates from a bundle the
way a CDS client would (CDS Hooks 2.0 "Prefetch template"), with a local evaluator for exactly the
query features the templates use: instance read, type search by ``patient``, ``code`` and ``category`` token lists
(comma = OR, ``system|code`` or bare code) and ``_count`` (ignored: one page holds everything).
Anything else is refused, so a new template feature cannot be answered wrongly in silence. The
Medications that medication records reference and the bundle holds come along in their searchsets
(``search.mode`` ``include``), as a client that has them sends them.

Verbs: ``load_bundle`` reads and validates, ``list_fixtures`` reads the index, ``build_prefetch``
answers the templates, ``hook_request`` builds a full ``patient-view`` request,
``medications_by_reference`` rewrites a record's coded drugs as referenced Medication resources.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, cast

import yaml
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from cds_service.bundle import entries, referenced_patient
from cds_service.config import Config
from cds_service.prefetch import Query, fill_template
from cds_service.protocol.services import SARCOMA_PATIENT_VIEW, ServiceDefinition
from cds_service.summary.parse import MEDICATION_USES

SLUG = re.compile(r"^[a-z0-9][a-z0-9\-]{0,99}$")
BUNDLE_TYPES = ("transaction", "collection")
SANDBOX_USER = "Practitioner/sandbox-clinician"
REQUEST_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://sarcoma-cds.invalid/fhir_fixtures/requests")
"""Namespace of the fixed ``hookInstance`` of the committed request files (uuid5 of the slug)."""


class FixtureError(ValueError):
    """A fixture that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Fixture:
    slug: str
    file: Path
    patient: str | None = None
    description: str = ""
    situation: tuple[str, ...] = ()
    must: tuple[str, ...] = ()
    must_not: tuple[str, ...] = ()
    today: date | None = None  # the date the expectations hold on (ages, intervals)

    def summary_json(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "patient": self.patient,
            "description": self.description,
            "situation": list(self.situation),
        }


def resolve(slug_or_path: str | Path, fixtures_dir: Path) -> Path:
    """A path as given if it names a file (or looks like one), else ``<fixtures_dir>/<slug>.json``."""
    path = Path(slug_or_path)
    if path.suffix == ".json" or path.exists() or len(path.parts) > 1:
        return path
    if not SLUG.match(str(slug_or_path)):
        raise FixtureError(f"'{slug_or_path}' is neither a file nor a fixture name")
    return fixtures_dir / f"{slug_or_path}.json"


def default_fixtures_dir() -> Path:
    return Config.from_env().fixtures_dir


def load_bundle(slug_or_path: str | Path, fixtures_dir: Path | None = None) -> dict[str, Any]:
    """Read a fixture bundle and validate it with ``fhir.resources`` (R4B models, as ``summary`` uses)."""
    path = resolve(slug_or_path, fixtures_dir or default_fixtures_dir())
    bundle = read_json(path)
    check_bundle(bundle, str(path))
    return cast(dict[str, Any], bundle)


def read_json(path: Path) -> Any:
    """The JSON document in a fixture file (or a saved request), or ``FixtureError``."""
    if not path.is_file():
        raise FixtureError(f"{path}: no such fixture file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FixtureError(f"{path}: not valid JSON ({error})") from None


def check_bundle(bundle: Any, where: str) -> None:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FixtureError(f"{where}: not a FHIR Bundle")
    if bundle.get("type") not in BUNDLE_TYPES:
        raise FixtureError(f"{where}: Bundle.type must be transaction or collection, not {bundle.get('type')!r}")
    try:
        Bundle.model_validate(bundle)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}" for issue in error.errors()[:3]
        )
        raise FixtureError(f"{where}: fails FHIR R4 validation ({error.error_count()} errors): {problems}") from None


def fixture_resources(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Resources of a fixture bundle, each with its id (taken from ``request.url`` when absent)."""
    resources = []
    for entry in entries(bundle):
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        if "id" not in resource:
            url = str((entry.get("request") or {}).get("url", ""))
            kind, _, ident = url.partition("/")
            if kind == resource.get("resourceType") and ident:
                resource = {**resource, "id": ident}
        resources.append(resource)
    return resources


def patient_of(resources: Iterable[Mapping[str, Any]], where: str = "bundle") -> dict[str, Any]:
    patients = [dict(r) for r in resources if r.get("resourceType") == "Patient"]
    if len(patients) != 1 or not patients[0].get("id"):
        raise FixtureError(f"{where}: needs exactly one Patient with an id, found {len(patients)}")
    return patients[0]


def list_fixtures(fixtures_dir: Path) -> list[Fixture]:
    """Fixtures in ``index.yaml`` order; without an index, every ``*.json`` by name."""
    index = fixtures_dir / "index.yaml"
    if not index.is_file():
        return [Fixture(slug=path.stem, file=path) for path in sorted(fixtures_dir.glob("*.json"))]
    try:
        entries = yaml.safe_load(index.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as error:
        raise FixtureError(f"{index}: not valid YAML ({error})") from None
    if isinstance(entries, dict):
        entries = entries.get("fixtures") or []
    if not isinstance(entries, list):
        raise FixtureError(f"{index}: expected a list of fixtures")
    return [_indexed(entry, fixtures_dir, index) for entry in entries]


def _indexed(entry: Any, fixtures_dir: Path, index: Path) -> Fixture:
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        raise FixtureError(f"{index}: every entry needs a 'file'")
    file = fixtures_dir / entry["file"]
    return Fixture(
        slug=file.stem,
        file=file,
        patient=entry.get("patient"),
        description=str(entry.get("description") or "").strip(),
        situation=_strings(entry.get("situation")),
        must=_strings(entry.get("must")),
        must_not=_strings(entry.get("must_not")),
        today=_date(entry.get("today"), index),
    )


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (str(value),) if isinstance(value, str) else tuple(str(item) for item in value)


def _date(value: Any, index: Path) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise FixtureError(f"{index}: 'today' must be YYYY-MM-DD") from None


def find_fixture(slug: str, fixtures_dir: Path) -> Fixture | None:
    return next((f for f in list_fixtures(fixtures_dir) if f.slug == slug), None)


# --- the prefetch evaluator -------------------------------------------------------------------


def _references_patient(resource: Mapping[str, Any], patient: str) -> bool:
    return patient in (referenced_patient(resource.get("subject")), referenced_patient(resource.get("patient")))


def _has_code(resource: Mapping[str, Any], tokens: list[tuple[str | None, str]], element: str = "code") -> bool:
    """Whether the CodeableConcept ``element`` (or any of a list of them: ``category``) has one of ``tokens``."""
    value = resource.get(element) or {}
    concepts = value if isinstance(value, list) else [value]
    codings = [coding for concept in concepts for coding in (concept.get("coding") or [])]
    return any(
        coding.get("code") == code and (system is None or coding.get("system") == system)
        for coding in codings
        for system, code in tokens
    )


def _tokens(value: str) -> list[tuple[str | None, str]]:
    tokens: list[tuple[str | None, str]] = []
    for item in value.split(","):
        system, bar, code = item.partition("|")
        tokens.append((system or None, code) if bar else (None, item))
    return tokens


def run_query(query: Query, resources: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Answer one filled prefetch query: a resource (or ``None``) for a read, a searchset for a search."""
    if query.id is not None:
        if query.params:
            raise FixtureError(f"unsupported prefetch query: parameters on a read of {query.resource_type}")
        return next(
            (r for r in resources if r.get("resourceType") == query.resource_type and r.get("id") == query.id), None
        )
    matches = [r for r in resources if r.get("resourceType") == query.resource_type]
    for name, value in query.params:
        if name == "patient":
            matches = [r for r in matches if _references_patient(r, value.removeprefix("Patient/"))]
        elif name in ("code", "category"):
            matches = [r for r in matches if _has_code(r, _tokens(value), name)]
        elif name != "_count":
            raise FixtureError(f"unsupported prefetch search parameter '{name}' on {query.resource_type}")
    return searchset(matches)


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def build_prefetch(
    bundle: Mapping[str, Any], context: Mapping[str, Any], service: ServiceDefinition = SARCOMA_PATIENT_VIEW
) -> dict[str, Any]:
    """Every prefetch key of ``service`` answered from the bundle, as a client that has the data would."""
    resources = fixture_resources(bundle)
    return {
        key: _with_referenced_medications(
            run_query(Query.parse(fill_template(template, context)), resources), resources
        )
        for key, template in service.prefetch.items()
    }


def _with_referenced_medications(
    answer: dict[str, Any] | None, resources: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """A searchset with the Medications its records reference (``medicationReference``) that the
    bundle holds, added as ``include`` entries, as a client that has them sends them along."""
    if answer is None or answer.get("resourceType") != "Bundle":
        return answer
    held = {f"Medication/{r.get('id')}": r for r in resources if r.get("resourceType") == "Medication"}
    wanted = {
        reference
        for entry in answer["entry"]
        if isinstance(entry["resource"].get("medicationReference"), dict)
        and (reference := entry["resource"]["medicationReference"].get("reference")) in held
    }
    answer["entry"] += [{"resource": held[ref], "search": {"mode": "include"}} for ref in sorted(wanted)]
    return answer


def medications_by_reference(resources: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``resources`` with each ``medicationCodeableConcept`` moved into a Medication resource of its
    own (not contained) that the record references, as EHRs that keep a drug formulary write it; one
    Medication per record, its id made from the record's."""
    out: list[dict[str, Any]] = []
    for resource in resources:
        record = copy.deepcopy(dict(resource))
        if record.get("resourceType") in MEDICATION_USES and "medicationCodeableConcept" in record:
            kind = "".join(c for c in record["resourceType"] if c.isupper()).lower()  # ms, mr, ma
            ident = re.sub(r"[^A-Za-z0-9\-.]", "-", f"{kind}-{record.get('id')}")
            if len(ident) > 64:  # a FHIR id's limit: keep it unique, not cut
                ident = f"{kind}-{hashlib.sha256(ident.encode()).hexdigest()[:40]}"
            out.append({"resourceType": "Medication", "id": ident, "code": record.pop("medicationCodeableConcept")})
            record["medicationReference"] = {"reference": f"Medication/{ident}"}
        out.append(record)
    return out


def request_context(bundle: Mapping[str, Any]) -> dict[str, str]:
    return {"userId": SANDBOX_USER, "patientId": str(patient_of(fixture_resources(bundle))["id"])}


def stable_hook_instance(slug: str) -> str:
    """The fixed hookInstance of a committed request file, so regenerating it changes nothing."""
    return str(uuid.uuid5(REQUEST_NAMESPACE, slug))


def hook_request(
    bundle_or_slug: Mapping[str, Any] | str | Path,
    *,
    fixtures_dir: Path | None = None,
    fhir_server: str | None = None,
    token: str | None = None,
    prefetch: bool = True,
    hook_instance: str | None = None,
    service: ServiceDefinition = SARCOMA_PATIENT_VIEW,
) -> dict[str, Any]:
    """A spec-exact ``patient-view`` request for a fixture (CDS Hooks 2.0 "HTTP Request")."""
    if isinstance(bundle_or_slug, Mapping):
        bundle = bundle_or_slug
    else:
        bundle = load_bundle(bundle_or_slug, fixtures_dir)
    if token and not fhir_server:
        raise FixtureError("a bearer token needs a FHIR server (fhirAuthorization requires fhirServer)")
    if not prefetch and not fhir_server:
        raise FixtureError("without prefetch the request needs a FHIR server for the service to read")
    context = request_context(bundle)
    body: dict[str, Any] = {"hook": service.hook, "hookInstance": hook_instance or str(uuid.uuid4())}
    if fhir_server:
        body["fhirServer"] = fhir_server.rstrip("/")
    if token:
        body["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/Patient.read user/Condition.read user/Observation.read user/MedicationStatement.read "
            "user/MedicationRequest.read user/MedicationAdministration.read user/MedicationDispense.read "
            "user/Medication.read user/Procedure.read user/DiagnosticReport.read",
            "subject": "sandbox-clinician",
        }
    body["context"] = context
    if prefetch:
        body["prefetch"] = build_prefetch(bundle, context, service)
    return body
