"""``sarcoma-cds load-fixtures`` (run by the session fixture) put every fixture on the FHIR server."""

from __future__ import annotations

from collections import Counter

import pytest
import requests

from cds_service.config import PROJECT_ROOT
from fhir_fixtures.ehr import fixture_resources, list_fixtures, load_bundle

FIXTURES = list_fixtures(PROJECT_ROOT / "fhir_fixtures")
TYPES = ("Condition", "Observation", "MedicationStatement", "MedicationRequest", "MedicationAdministration")


def _count(server, resource_type: str, patient: str) -> int:
    response = requests.get(
        f"{server.base_url}/{resource_type}",
        params={"patient": patient, "_count": "1"},
        headers=server.headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["total"]


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.slug)
def test_every_resource_of_the_fixture_is_on_the_server(fhir_server, fixture):
    resources = fixture_resources(load_bundle(fixture.file))
    patient = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    read = requests.get(f"{fhir_server.base_url}/Patient/{patient}", headers=fhir_server.headers, timeout=30)
    assert read.status_code == 200 and read.json()["id"] == patient
    expected = Counter(r["resourceType"] for r in resources)
    for resource_type in TYPES:
        assert _count(fhir_server, resource_type, patient) == expected[resource_type], resource_type
