"""FHIR R4 resources as plain JSON dicts, for tests.

Verbs: ``concept(system, code)`` · ``primary(id, ...)`` / ``secondary(id, ...)`` / ``condition(id, code)``
· ``observation(id, code, ...)`` with ``tnm(id, "T2")``, ``stage_group(id, value)``, ``grade(id, value)``,
``size(id, cm)``, ``histology(id, icdo3)``, ``ecog(id, score)``, ``karnofsky(id, score)``,
``disease_status(id, status)`` · ``med_statement(id, drug)``, ``med_request(id, drug)``,
``med_administration(id, drug)`` with ``rxnorm(code)`` / ``drug_text(text)`` · ``patient(id)``
· ``excision(id, ...)``, ``radiotherapy(id, ...)`` (Procedures) and ``margin(id, "R1")``
· ``notes(text, ...)`` (``note`` annotations for any resource).
Dates are ISO strings; every builder takes keyword overrides that replace top-level fields.
Terse, single-purpose resources for one patient ``p1``; every system and code comes from the one
test-data builder, ``fhir_fixtures/resources.py``.
"""

from __future__ import annotations

from typing import Any

from fhir_fixtures import resources as fhir
from fhir_fixtures.resources import AJCC as AJCC  # the systems, for the tests
from fhir_fixtures.resources import ICD10 as ICD10
from fhir_fixtures.resources import ICDO3 as ICDO3
from fhir_fixtures.resources import LOINC as LOINC
from fhir_fixtures.resources import MCODE as MCODE
from fhir_fixtures.resources import RXNORM as RXNORM
from fhir_fixtures.resources import SCT as SNOMED
from fhir_fixtures.resources import coded as concept

AJCC8, AJCC7 = fhir.AJCC8["code"], fhir.AJCC7["code"]
TNM_CODES = {(axis, kind == "p"): code for (kind, axis), (code, *_) in fhir.TNM_CODE.items()}
"""(axis, pathological) -> the SNOMED code of a TNM category Observation."""


def _code(kind: str) -> dict[str, Any]:
    system, code, _ = fhir.CODE[kind]
    return concept(system, code)


def _status(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def patient(id: str = "p1", **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": id, **fields}


def condition(
    id: str,
    code: dict[str, Any],
    *,
    onset: str | None = "2020-01-01",
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    body_site: list[dict[str, Any]] | None = None,
    morphology: dict[str, Any] | None = None,
    profile: str | None = None,
    stage: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": id,
        "subject": {"reference": "Patient/p1"},
        "code": code,
    }
    if clinical:
        resource["clinicalStatus"] = _status(fhir.CLINICAL_STATUS, clinical)
    if verification:
        resource["verificationStatus"] = _status(fhir.VERIFICATION_STATUS, verification)
    if onset:
        resource["onsetDateTime"] = onset
    if body_site:
        resource["bodySite"] = body_site
    if morphology:
        resource["extension"] = [{"url": fhir.HISTOLOGY_EXTENSION, "valueCodeableConcept": morphology}]
    if profile:
        resource["meta"] = {"profile": [MCODE + profile]}
    if stage:
        resource["stage"] = stage
    return {**resource, **fields}


def primary(
    id: str = "primary",
    *,
    snomed: str | None = None,
    icd10: str | None = None,
    morphology: str | None = None,
    body_site: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """A PrimaryCancerCondition coded by SNOMED or ICD-10-CM, ICD-O-3 morphology, SNOMED bodySite."""
    code = concept(SNOMED, snomed) if snomed else concept(ICD10, icd10 or "C49.22")
    return condition(
        id,
        code,
        morphology=concept(ICDO3, morphology) if morphology else None,
        body_site=[concept(SNOMED, body_site)] if body_site else None,
        profile="mcode-primary-cancer-condition",
        **kwargs,
    )


def secondary(
    id: str,
    *,
    snomed: str | None = fhir.METASTASIS["lung"][0],
    icd10: str | None = None,
    of: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """A SecondaryCancerCondition (default: secondary malignant neoplasm of lung); ``of`` links it to
    its primary ("Condition/lms") with the condition-related extension."""
    code = concept(ICD10, icd10) if icd10 else concept(SNOMED, snomed or fhir.SCT_DISORDER["secondary"][0])
    if of:
        kwargs["extension"] = [{"url": fhir.CONDITION_RELATED, "valueReference": {"reference": of}}]
    return condition(id, code, profile="mcode-secondary-cancer-condition", **kwargs)


def observation(
    id: str,
    code: dict[str, Any],
    *,
    value: dict[str, Any] | None = None,
    date: str | None = "2020-02-01",
    method: str | None = None,
    focus: str | None = None,
    status: str = "final",
    **fields: Any,
) -> dict[str, Any]:
    """``value`` holds the value[x] element(s), e.g. {"valueInteger": 1}."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": id,
        "status": status,
        "code": code,
        "subject": {"reference": "Patient/p1"},
        **(value or {}),
    }
    if date:
        resource["effectiveDateTime"] = date
    if method:
        resource["method"] = concept(SNOMED, method)
    if focus:
        resource["focus"] = [{"reference": focus}]
    return {**resource, **fields}


def tnm(
    id: str, value: str, *, pathological: bool = False, edition: str | None = AJCC8, **kwargs: Any
) -> dict[str, Any]:
    """A TNM category Observation coded in SNOMED, e.g. ``tnm("t", "T2", pathological=True)``."""
    kind = "p" if pathological else "c"
    code = concept(SNOMED, fhir.TNM_CODE[(kind, value[0])][0])
    value_concept = concept(SNOMED, fhir.TNM_VALUE_SCT[kind + value])
    return observation(id, code, value={"valueCodeableConcept": value_concept}, method=edition, **kwargs)


def stage_group(
    id: str, value: dict[str, Any] | str, *, pathological: bool = False, edition: str | None = AJCC8, **kwargs: Any
) -> dict[str, Any]:
    """A TNM stage-group Observation; a str value is an AJCC 8 group coded in SNOMED."""
    code = concept(SNOMED, fhir.GROUP_CODE["p" if pathological else "c"][0])
    value_concept = concept(SNOMED, fhir.STAGE_SCT[value]) if isinstance(value, str) else value
    return observation(id, code, value={"valueCodeableConcept": value_concept}, method=edition, **kwargs)


def grade(id: str, value: dict[str, Any] | str, **kwargs: Any) -> dict[str, Any]:
    """A histologic grade Observation (LOINC 21858-6); a str value becomes valueString."""
    element = {"valueString": value} if isinstance(value, str) else {"valueCodeableConcept": value}
    return observation(id, _code("grade-loinc"), value=element, **kwargs)


def size(id: str, amount: float, unit: str = "cm", **kwargs: Any) -> dict[str, Any]:
    """A TumorSize Observation (LOINC 21889-1) with its longest-dimension component 33728-7."""
    component = {
        "code": _code("size-longest"),
        "valueQuantity": {"value": amount, "unit": unit, "system": fhir.UCUM, "code": unit},
    }
    return observation(id, _code("size"), value={"component": [component]}, **kwargs)


def histology(id: str, icdo3: str, **kwargs: Any) -> dict[str, Any]:
    """A HistologicBehaviorAndType Observation (LOINC 31206-6)."""
    return observation(id, _code("histology"), value={"valueCodeableConcept": concept(ICDO3, icdo3)}, **kwargs)


def ecog(id: str, score: int, **kwargs: Any) -> dict[str, Any]:
    return observation(id, _code("ecog"), value={"valueInteger": score}, **kwargs)


def karnofsky(id: str, score: int, **kwargs: Any) -> dict[str, Any]:
    return observation(id, _code("karnofsky"), value={"valueInteger": score}, **kwargs)


def disease_status(id: str, status: str, **kwargs: Any) -> dict[str, Any]:
    return observation(
        id,
        _code("disease-status"),
        value={"valueCodeableConcept": concept(SNOMED, fhir.DISEASE_STATUS[status][0])},
        **kwargs,
    )


def rxnorm(code: str, display: str | None = None) -> dict[str, Any]:
    return concept(RXNORM, code, display)


def drug_text(text: str) -> dict[str, Any]:
    return {"text": text}


def _reason(code: str | None) -> dict[str, Any] | None:
    return concept(SNOMED, code) if code else None


def med_statement(
    id: str,
    drug: dict[str, Any],
    *,
    start: str = "2020-03-01",
    end: str | None = None,
    status: str = "completed",
    stop_reason: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": id,
        "status": status,
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": drug,
    }
    resource.update({"effectivePeriod": {"start": start, "end": end}} if end else {"effectiveDateTime": start})
    if stop_reason:
        resource["statusReason"] = [_reason(stop_reason)]
    return {**resource, **fields}


def med_request(
    id: str,
    drug: dict[str, Any],
    *,
    start: str | None = "2020-03-01",
    end: str | None = None,
    authored: str | None = None,
    status: str = "completed",
    stop_reason: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": id,
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": drug,
    }
    if start:
        bounds = {"start": start, **({"end": end} if end else {})}
        resource["dosageInstruction"] = [{"timing": {"repeat": {"boundsPeriod": bounds}}}]
    if authored:
        resource["authoredOn"] = authored
    if stop_reason:
        resource["statusReason"] = _reason(stop_reason)
    return {**resource, **fields}


def med_administration(
    id: str, drug: dict[str, Any], *, start: str = "2020-03-01", status: str = "completed", **fields: Any
) -> dict[str, Any]:
    return {
        "resourceType": "MedicationAdministration",
        "id": id,
        "status": status,
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": drug,
        "effectiveDateTime": start,
        **fields,
    }


def notes(*texts: str, time: str | None = None) -> list[dict[str, Any]]:
    """``note`` annotations, e.g. ``primary("p", note=notes("Judged unresectable", time="2025-05-10"))``."""
    return [{"text": text, **({"time": time} if time else {})} for text in texts]


def excision(
    id: str,
    *,
    performed: str | None = "2020-02-15",
    status: str = "completed",
    text: str | None = None,
    reason: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A completed excision Procedure (SNOMED 65801008), optionally for a Condition (``reason``)."""
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": id,
        "status": status,
        "subject": {"reference": "Patient/p1"},
        "code": concept(*fhir.CODE["excision"], text),
    }
    if performed:
        resource["performedDateTime"] = performed
    if reason:
        resource["reasonReference"] = [{"reference": reason}]
    return {**resource, **fields}


def radiotherapy(
    id: str,
    *,
    start: str = "2020-01-10",
    end: str | None = "2020-02-10",
    status: str = "completed",
    reason: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A radiotherapy Procedure (SNOMED 108290001) over a period, optionally for a Condition (``reason``)."""
    code = concept(*fhir.CODE["radiotherapy"])
    return excision(
        id,
        performed=None,
        status=status,
        reason=reason,
        **{"code": code, "performedPeriod": {"start": start, **({"end": end} if end else {})}, **fields},
    )


def margin(id: str, r: str, **kwargs: Any) -> dict[str, Any]:
    """A residual-tumour Observation (LOINC 84892-9) valued R0/R1/R2 in SNOMED."""
    value = concept(SNOMED, fhir.RESIDUAL_TUMOUR[r])
    return observation(id, _code("residual-tumour"), value={"valueCodeableConcept": value}, **kwargs)
