"""Hook request validation (CDS Hooks 2.0 "HTTP Request", patient-view context)."""

import pytest

from cds_service.errors import InvalidRequest
from cds_service.prefetch import fill_template
from cds_service.protocol.request import parse_hook_request
from cds_service.protocol.services import SARCOMA_PATIENT_VIEW


def parse(body):
    return parse_hook_request(body, SARCOMA_PATIENT_VIEW)


def test_a_valid_request_parses(hook):
    request = parse(hook(patient_id="abc-1"))
    assert request.patient_id == "abc-1"
    assert request.fhir_server is None and request.fhir_authorization is None


@pytest.mark.parametrize(
    "change,field",
    [
        ({"hook": None}, "hook"),
        ({"hook": "order-sign"}, "hook"),
        ({"hook": 5}, "hook"),
        ({"hookInstance": None}, "hookInstance"),
        ({"hookInstance": "not-a-uuid"}, "hookInstance"),
        ({"context": None}, "context"),
        ({"context": []}, "context"),
        ({"context": {"userId": "Practitioner/1"}}, "context.patientId"),
        ({"context": {"patientId": "a b", "userId": "Practitioner/1"}}, "context.patientId"),
        ({"context": {"patientId": "p", "userId": "Doctor/1"}}, "context.userId"),
        ({"context": {"patientId": "p", "userId": "Practitioner/"}}, "context.userId"),
        ({"context": {"patientId": "p", "userId": "Practitioner/1", "encounterId": 7}}, "context.encounterId"),
        ({"fhirServer": "ftp://x"}, "fhirServer"),
        ({"fhirServer": "https://user:pw@x"}, "fhirServer"),
        ({"fhirAuthorization": {"access_token": "t", "token_type": "Bearer"}}, "fhirServer"),
        ({"fhirServer": "https://x", "fhirAuthorization": "t"}, "fhirAuthorization"),
        ({"fhirServer": "https://x", "fhirAuthorization": {"token_type": "Bearer"}}, "fhirAuthorization.access_token"),
        (
            {"fhirServer": "https://x", "fhirAuthorization": {"access_token": "t", "token_type": "MAC"}},
            "fhirAuthorization.token_type",
        ),
        (
            {
                "fhirServer": "https://x",
                "fhirAuthorization": {"access_token": "t", "token_type": "Bearer", "expires_in": "9"},
            },
            "fhirAuthorization.expires_in",
        ),
        ({"prefetch": []}, "prefetch"),
        ({"prefetch": {"patient": "Patient/1"}}, "prefetch.patient"),
    ],
)
def test_each_malformed_field_is_named(hook, change, field):
    body = hook(**change)
    with pytest.raises(InvalidRequest) as error:
        parse(body)
    assert field in error.value.message


def test_body_must_be_an_object():
    with pytest.raises(InvalidRequest):
        parse(["hook"])


def test_encounter_id_is_optional_and_user_may_be_any_allowed_type(hook):
    for user in ("PractitionerRole/r", "Patient/p", "RelatedPerson/x"):
        body = hook(context={"patientId": "p", "userId": user})
        assert parse(body).context["userId"] == user


def test_authorization_is_kept_but_never_shown(hook):
    body = hook(
        fhirServer="https://ehr.example/fhir/",
        fhirAuthorization={
            "access_token": "secret-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds",
        },
    )
    request = parse(body)
    assert request.fhir_server == "https://ehr.example/fhir"
    assert request.fhir_authorization.access_token == "secret-token"
    assert "secret-token" not in repr(request.fhir_authorization)


def test_templates_fill_context_and_user_tokens():
    context = {"patientId": "p1", "userId": "PractitionerRole/r9"}
    assert fill_template("Patient/{{context.patientId}}", context) == "Patient/p1"
    assert fill_template("X?u={{userPractitionerRoleId}}&v={{userPractitionerId}}", context) == "X?u=r9&v="
