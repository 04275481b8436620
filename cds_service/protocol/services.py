"""The services this CDS Service offers, as discovery describes them (CDS Hooks 2.0 "Discovery")."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..prefetch import Query

PREFETCH_FILE = Path(__file__).with_name("prefetch.yaml")


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str] = field(default_factory=dict)
    # key -> a further query the service runs beside that key's template when it fills it itself
    supplements: dict[str, str] = field(default_factory=dict)

    def resource_type(self, key: str) -> str:
        """The FHIR resource type a prefetch key asks for ("conditions" -> "Condition")."""
        return Query.parse(self.prefetch[key]).resource_type

    def discovery_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
        }
        if self.prefetch:
            body["prefetch"] = dict(self.prefetch)
        return body


def prefetch_templates() -> dict[str, str]:
    """Expand prefetch.yaml into 2.0 templates (``{{context.patientId}}`` kept for the client)."""
    return dict(_expanded("templates"))


def supplement_templates() -> dict[str, str]:
    """The queries prefetch.yaml runs beside a template the service fills itself (not in discovery)."""
    return dict(_expanded("supplements"))


@lru_cache(maxsize=2)
def _expanded(section: str) -> tuple[tuple[str, str], ...]:
    spec = yaml.safe_load(PREFETCH_FILE.read_text())
    fill = {
        "{page_size}": str(spec["page_size"]),
        **{f"{{{name}}}": ",".join(str(v) for v in spec[name]) for name in LISTS},
    }
    templates = []
    for key, template in spec[section].items():
        for placeholder, value in fill.items():
            template = template.replace(placeholder, value)
        templates.append((key, template))
    return tuple(templates)


LISTS = ("observation_codes", "observation_profiles", "report_categories")


SARCOMA_PATIENT_VIEW = ServiceDefinition(
    id="sarcoma-patient-view",
    hook="patient-view",
    title="Soft tissue sarcoma guideline support",
    description=(
        "At chart open, summarises a soft tissue sarcoma patient's histology, AJCC 8th-edition stage, "
        "metastatic extent, performance status and prior systemic therapy, and shows the guideline "
        "statements that apply, each with its source, level of evidence and the data that made it apply."
    ),
    prefetch=prefetch_templates(),
    supplements=supplement_templates(),
)

SERVICES: dict[str, ServiceDefinition] = {SARCOMA_PATIENT_VIEW.id: SARCOMA_PATIENT_VIEW}
