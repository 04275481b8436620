"""Getting the patient's FHIR resources: prefetch unpacking and the FHIR server fallback."""
