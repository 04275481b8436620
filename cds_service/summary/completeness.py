"""Which facts may rest on partial data, because a record could not be read or obtained (G6, G7).

Each fact declares the records that feed it (``model.PatientSummary``, ``fed_by``). A record that
failed validation, or a whole resource type the EHR could not provide, marks those facts
INCOMPLETE; the data-quality guardrail withholds the facts it watches and names the cause.
"""

from __future__ import annotations

from collections.abc import Mapping

from cds_service.summary.context import Context
from cds_service.summary.model import Finding, FindingKind

RESOURCE_NAMES = {
    "Condition": "the patient's conditions",
    "Observation": "the patient's observations",
    "MedicationStatement": "the medication statements",
    "MedicationRequest": "the medication orders",
    "MedicationAdministration": "the medication administrations",
    "MedicationDispense": "the pharmacy dispenses",
    "Medication": "the medication records",
    "Procedure": "the patient's procedures",
    "Patient": "the patient record",
}


def note_unreadable_records(ctx: Context) -> None:
    """INCOMPLETE findings for the facts fed by records that failed validation.

    Observations are read per kind, newest first; an unreadable one is reported for its kind where
    it is met (``observations``).
    """
    for finding in list(ctx.findings):
        if finding.kind is FindingKind.INVALID and finding.about == "resource":
            for ref in finding.sources:
                record = ref.split("/", 1)[0]
                if record != "Observation":
                    ctx.incomplete(record, f"{ref} could not be read; this may rest on partial data.", (ref,))


def note_unavailable(ctx: Context, unavailable: Mapping[str, str]) -> None:
    """Resource types the EHR could not provide (``{type: why}``): their facts rest on partial data."""
    for resource_type, why in sorted(unavailable.items()):
        what = RESOURCE_NAMES.get(resource_type, resource_type)
        ctx.incomplete(resource_type, f"The EHR could not provide {what} ({why}); this may rest on partial data.")
        ctx.add(Finding(FindingKind.MISSING, resource_type, f"The EHR could not provide {what}: {why}."))
