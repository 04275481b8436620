"""Reading codes out of FHIR CodeableConcepts, by short system name (``codes.yaml`` ``systems``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from cds_service.summary.codes import codes, longest_prefix

Code = tuple[str, str]
"""(system short name, code), e.g. ("snomed", "94391008"); unknown systems keep their URI."""


def _codings(concept: Any) -> Iterable[Any]:
    if concept is None:
        return ()
    if getattr(concept, "coding", None) is not None:
        codings: Iterable[Any] = concept.coding
        return codings
    return (concept,) if getattr(concept, "code", None) is not None else ()


def codes_of(concept: Any) -> list[Code]:
    """Codes of a CodeableConcept or Coding, system URIs shortened and codes written as the tables
    write them (``normal_code``)."""
    found: list[Code] = []
    for coding in _codings(concept):
        if coding.code:
            found.append(normal_code(coding.system, coding.code))
    return found


_ICD10_UNDOTTED = re.compile(r"([A-Z]\d[0-9A-Z])([0-9A-Z]{1,4})")
_ICDO_UNSLASHED = re.compile(r"(\d{4})(\d)")


def normal_code(system: Any, code: Any) -> Code:
    """(short system name, code); an ICD-10 code written without its dot ("C7800") and an ICD-O-3
    morphology without its slash ("88583") in the tables' form ("C78.00", "8858/3")."""
    systems: Mapping[str, str] = codes()["systems"]
    name, text = systems.get(str(system or ""), str(system or "")), str(code)
    if name == "icd10" and (match := _ICD10_UNDOTTED.fullmatch(text)):
        text = f"{match.group(1)}.{match.group(2)}"
    elif name == "icdo3" and (match := _ICDO_UNSLASHED.fullmatch(text)):
        text = f"{match.group(1)}/{match.group(2)}"
    return name, text


def text_of(concept: Any) -> str:
    """Lower-case text and displays of a concept, for display-text fallbacks."""
    if concept is None:
        return ""
    parts = [getattr(concept, "text", None)]
    parts += [getattr(coding, "display", None) for coding in _codings(concept)]
    return " | ".join(part for part in parts if part).lower()


def name_of(concept: Any) -> str:
    """The concept's name as the record writes it: its text, else its first display."""
    text = getattr(concept, "text", None) if concept is not None else None
    return text or next((c.display for c in _codings(concept) if getattr(c, "display", None)), "")


def has_code(concept: Any, code_set: Mapping[str, Iterable[str]]) -> bool:
    """Whether the concept carries a code of ``{system: [codes]}``."""
    return any(code in code_set.get(system, ()) for system, code in codes_of(concept))


def lookup(concept: Any, table: Mapping[str, Mapping[str, Any]]) -> tuple[Any, Code] | None:
    """First exact match of the concept's codes in ``{system: {code: value}}``."""
    for system, code in codes_of(concept):
        values = table.get(system)
        if values is not None and code in values:
            return values[code], (system, code)
    return None


def lookup_prefix(concept: Any, system: str, table: Mapping[str, Any]) -> tuple[Any, Code] | None:
    """Longest-prefix match of the concept's codes in ``system`` (ICD-10-CM, ICD-O-3 topography)."""
    best: tuple[str, Any, Code] | None = None
    for code_system, code in codes_of(concept):
        if code_system != system:
            continue
        hit = longest_prefix(table, code.upper())
        if hit is not None and (best is None or len(hit[0]) > len(best[0])):
            best = (hit[0], hit[1], (code_system, code))
    return None if best is None else (best[1], best[2])


def describe(code: Code) -> str:
    """A code for messages, e.g. "SNOMED 94391008"."""
    system, value = code
    names = {
        "snomed": "SNOMED",
        "loinc": "LOINC",
        "icd10": "ICD-10-CM",
        "icdo3": "ICD-O-3",
        "ajcc": "AJCC",
        "ncit": "NCIt",
        "rxnorm": "RxNorm",
    }
    return f"{names.get(system, system)} {value}"
