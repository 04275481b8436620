"""FHIR R4 resources as plain JSON dicts, for tests.

Verbs: ``concept(system, code)`` · ``primary(id, ...)`` / ``secondary(id, ...)`` / ``condition(id, code)``
· ``observation(id, code, ...)`` with ``tnm(id, "T2")``, ``stage_group(id, value)``, ``grade(id, value)``,
``size(id, cm)``, ``histology(id, icdo3)``, ``ecog(id, score)``, ``karnofsky(id, score)``,
``disease_status(id, status)`` · ``med_statement(id, drug)``, ``med_request(id, drug)``,
``med_administration(id, drug)`` with ``rxnorm(code)`` / ``drug_text(text)`` · ``patient(id)``
· ``excision(id, ...)``, ``radiotherapy(id, ...)`` (Procedures) and ``margin(id, "R1")``
· ``notes(text, ...)`` (``note`` annotations for any resource).
Dates are ISO strings; every builder takes keyword overrides that replace top-level fields.
"""

from __future__ import annotations

from typing import Any

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
AJCC = "http://cancerstaging.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/"
AJCC8, AJCC7 = "897275008", "443830009"

# SNOMED TNM values: clinical and pathological.
CLINICAL_TNM = {
    "TX": "1222604002",
    "T1": "1228889001",
    "T2": "1228929004",
    "T3": "1228938002",
    "T4": "1228944003",
    "N0": "1229967007",
    "N1": "1229973008",
    "M0": "1229901006",
    "M1": "1229903009",
}
PATHOLOGICAL_TNM = {
    "T1": "1228957006",
    "T2": "1229852009",
    "T3": "1229859000",
    "T4": "1229864001",
    "N0": "1229947003",
    "N1": "1229951001",
    "M1": "1229916009",
}
TNM_CODES = {
    ("T", False): "399504009",
    ("T", True): "384625004",
    ("N", False): "399534004",
    ("N", True): "371494008",
    ("M", False): "399387003",
    ("M", True): "371497001",
}
STAGE_SNOMED = {
    "IA": "1222724007",
    "IB": "1222728005",
    "II": "1222765007",
    "IIIA": "1222802001",
    "IIIB": "1222805004",
    "IV": "1222837003",
    "IIIC": "1222806003",
}
STATUS_SNOMED = {"improved": "268910001", "stable": "359746009", "worsened": "271299001", "undetermined": "709137006"}


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    result: dict[str, Any] = {"coding": [coding]}
    if text:
        result["text"] = text
    return result


def _status(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": f"http://terminology.hl7.org/CodeSystem/{system}", "code": code}]}


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
        resource["clinicalStatus"] = _status("condition-clinical", clinical)
    if verification:
        resource["verificationStatus"] = _status("condition-ver-status", verification)
    if onset:
        resource["onsetDateTime"] = onset
    if body_site:
        resource["bodySite"] = body_site
    if morphology:
        resource["extension"] = [
            {"url": MCODE + "mcode-histology-morphology-behavior", "valueCodeableConcept": morphology}
        ]
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
    id: str, *, snomed: str | None = "94391008", icd10: str | None = None, of: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """A SecondaryCancerCondition (default: secondary malignant neoplasm of lung); ``of`` links it to
    its primary ("Condition/lms") with the condition-related extension."""
    code = concept(ICD10, icd10) if icd10 else concept(SNOMED, snomed or "128462008")
    if of:
        kwargs["extension"] = [
            {"url": "http://hl7.org/fhir/StructureDefinition/condition-related", "valueReference": {"reference": of}}
        ]
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
    table = PATHOLOGICAL_TNM if pathological else CLINICAL_TNM
    code = concept(SNOMED, TNM_CODES[(value[0], pathological)])
    return observation(
        id, code, value={"valueCodeableConcept": concept(SNOMED, table[value])}, method=edition, **kwargs
    )


def stage_group(
    id: str, value: dict[str, Any] | str, *, pathological: bool = False, edition: str | None = AJCC8, **kwargs: Any
) -> dict[str, Any]:
    """A TNM stage-group Observation; a str value is an AJCC 8 group coded in SNOMED."""
    code = concept(SNOMED, "399588009" if pathological else "399537006")
    value_concept = concept(SNOMED, STAGE_SNOMED[value]) if isinstance(value, str) else value
    return observation(id, code, value={"valueCodeableConcept": value_concept}, method=edition, **kwargs)


def grade(id: str, value: dict[str, Any] | str, **kwargs: Any) -> dict[str, Any]:
    """A histologic grade Observation (LOINC 21858-6); a str value becomes valueString."""
    element = {"valueString": value} if isinstance(value, str) else {"valueCodeableConcept": value}
    return observation(id, concept(LOINC, "21858-6"), value=element, **kwargs)


def size(id: str, amount: float, unit: str = "cm", **kwargs: Any) -> dict[str, Any]:
    """A TumorSize Observation (LOINC 21889-1) with its longest-dimension component 33728-7."""
    component = {
        "code": concept(LOINC, "33728-7"),
        "valueQuantity": {"value": amount, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }
    return observation(id, concept(LOINC, "21889-1"), value={"component": [component]}, **kwargs)


def histology(id: str, icdo3: str, **kwargs: Any) -> dict[str, Any]:
    """A HistologicBehaviorAndType Observation (LOINC 31206-6)."""
    return observation(id, concept(LOINC, "31206-6"), value={"valueCodeableConcept": concept(ICDO3, icdo3)}, **kwargs)


def ecog(id: str, score: int, **kwargs: Any) -> dict[str, Any]:
    return observation(id, concept(LOINC, "89247-1"), value={"valueInteger": score}, **kwargs)


def karnofsky(id: str, score: int, **kwargs: Any) -> dict[str, Any]:
    return observation(id, concept(LOINC, "89243-0"), value={"valueInteger": score}, **kwargs)


def disease_status(id: str, status: str, **kwargs: Any) -> dict[str, Any]:
    return observation(
        id, concept(LOINC, "97509-4"), value={"valueCodeableConcept": concept(SNOMED, STATUS_SNOMED[status])}, **kwargs
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
        "code": concept(SNOMED, "65801008", "Excision (procedure)", text),
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
    code = concept(SNOMED, "108290001", "Radiation oncology AND/OR radiotherapy (procedure)")
    return excision(
        id,
        performed=None,
        status=status,
        reason=reason,
        **{"code": code, "performedPeriod": {"start": start, **({"end": end} if end else {})}, **fields},
    )


def margin(id: str, r: str, **kwargs: Any) -> dict[str, Any]:
    """A residual-tumour Observation (LOINC 84892-9) valued R0/R1/R2 in SNOMED."""
    value = {"R0": "258254000", "R1": "278271003", "R2": "278272005"}[r]
    return observation(id, concept(LOINC, "84892-9"), value={"valueCodeableConcept": concept(SNOMED, value)}, **kwargs)
