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


@lru_cache(maxsize=1)
def prefetch_templates() -> dict[str, str]:
    """Expand prefetch.yaml into 2.0 templates (``{{context.patientId}}`` kept for the client)."""
    spec = yaml.safe_load(PREFETCH_FILE.read_text())
    fill = {
        "{page_size}": str(spec["page_size"]),
        "{observation_codes}": ",".join(str(code) for code in spec["observation_codes"]),
        "{report_categories}": ",".join(str(code) for code in spec["report_categories"]),
    }
    templates = {}
    for key, template in spec["templates"].items():
        for placeholder, value in fill.items():
            template = template.replace(placeholder, value)
        templates[key] = template
    return templates


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
)

SERVICES: dict[str, ServiceDefinition] = {SARCOMA_PATIENT_VIEW.id: SARCOMA_PATIENT_VIEW}
