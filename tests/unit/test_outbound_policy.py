"""Outbound safety: the service calls only allowed FHIR servers, and bounds what it reads from them."""

from __future__ import annotations

import re

import pytest
import responses

from cds_service import Config, create_app
from cds_service.errors import ForbiddenFhirServer
from cds_service.fhir.policy import check_fhir_server, url_within

HOOK_URL = "/cds-services/sarcoma-patient-view"
ALLOWED = "https://ehr.example.com/fhir"


@pytest.mark.parametrize(
    "url",
    [
        "https://ehr.example.com/fhir",
        "https://ehr.example.com/fhir/",
        "https://ehr.example.com/fhir/R4",
        "https://EHR.Example.COM/fhir",
        "HTTPS://ehr.example.com/fhir",
        "https://ehr.example.com:443/fhir",
        "https://ehr.example.com/fhir?x=1",
    ],
)
def test_urls_within_the_prefix_pass(url):
    assert url_within(url, ALLOWED)


@pytest.mark.parametrize(
    "url",
    [
        "https://ehr.example.com.evil.net/fhir",
        "https://ehr.example.com@evil.net/fhir",
        "https://ehr.example@evil/fhir",
        "https://user:pw@ehr.example.com/fhir",
        "https://ehr.example.com:8443/fhir",
        "http://ehr.example.com/fhir",
        "https://ehr.example.comevil.net/fhir",
        "https://ehr.example.com/fhirx",
        "https://ehr.example.com/fhi",
        "https://ehr.example.com/",
        "https://ehr.example.com/fhir/../admin",
        "https://ehr.example.com/fhir/%2e%2e/admin",
        "https://ehr.example.com/fhir/..%2fadmin",
        "https://ehr.example.com\\@evil.net/fhir",
        "https://ehr.example.com/fhir#frag",
        "https://ehr.example.com:notaport/fhir",
        "https://ehr.example.com./fhir",
        "https://evil.net/https://ehr.example.com/fhir",
        "https:///ehr.example.com/fhir",
        "ftp://ehr.example.com/fhir",
        "https://ehr.example.com/fhir\n.evil.net",
        "",
    ],
)
def test_tricks_do_not_pass(url):
    assert not url_within(url, ALLOWED)


def test_a_prefix_with_a_trailing_slash_means_the_same():
    assert url_within("https://ehr.example.com/fhir/R4", ALLOWED + "/")
    assert not url_within("https://ehr.example.com/fhirx", ALLOWED + "/")


def test_a_host_only_prefix_allows_every_path_on_that_host():
    assert url_within("https://ehr.example.com/any/path", "https://ehr.example.com")
    assert not url_within("https://ehr.example.com.evil.net/", "https://ehr.example.com")


def test_policy_allows_anything_when_unconfigured_and_refuses_outside_the_list():
    check_fhir_server(Config(), "http://anything.example/fhir")
    config = Config(allowed_fhir_servers=(ALLOWED, "https://other.example.org/r4"))
    check_fhir_server(config, "https://other.example.org/r4/")
    with pytest.raises(ForbiddenFhirServer):
        check_fhir_server(config, "https://ehr.example.com.evil.net/fhir")


def test_require_https_refuses_plain_http():
    with pytest.raises(ForbiddenFhirServer, match="https"):
        check_fhir_server(Config(require_https=True), "http://ehr.example.com/fhir")
    check_fhir_server(Config(require_https=True), "https://ehr.example.com/fhir")


# --- through the hook endpoint -------------------------------------------------------------------


def app_with(tmp_path, **settings):
    return create_app(Config(feedback_db=tmp_path / "f.db", **settings)).test_client()


def without(body, *keys):
    for key in keys:
        del body["prefetch"][key]
    return body


def assert_forbidden(response):
    assert response.status_code == 403
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "forbidden"
    assert body["issue"][0]["expression"] == ["fhirServer"]


@pytest.mark.parametrize(
    "server",
    [
        "https://evil.example/fhir",
        "https://ehr.example.com.evil.net/fhir",
        "https://ehr.example.com:8443/fhir",
        "https://ehr.example.com/fhir/../admin",
    ],
)
@responses.activate
def test_another_fhir_server_gets_403_and_no_outbound_call(tmp_path, hook, server):
    client = app_with(tmp_path, allowed_fhir_servers=(ALLOWED,))
    response = client.post(HOOK_URL, json=without(hook(fhirServer=server), "observations"))
    assert_forbidden(response)
    assert len(responses.calls) == 0


@responses.activate
def test_forbidden_server_is_refused_even_when_prefetch_is_complete(tmp_path, hook):
    client = app_with(tmp_path, allowed_fhir_servers=(ALLOWED,))
    assert_forbidden(client.post(HOOK_URL, json=hook(fhirServer="https://evil.example/fhir")))
    assert len(responses.calls) == 0


@responses.activate
def test_plain_http_is_refused_when_https_is_required(tmp_path, hook):
    client = app_with(tmp_path, require_https=True)
    response = client.post(HOOK_URL, json=without(hook(fhirServer="http://ehr.example.com/fhir"), "patient"))
    assert_forbidden(response)
    assert len(responses.calls) == 0


@responses.activate
def test_allowed_server_is_called(tmp_path, hook):
    responses.get(f"{ALLOWED}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    client = app_with(tmp_path, allowed_fhir_servers=(ALLOWED,), require_https=True)
    assert client.post(HOOK_URL, json=without(hook(fhirServer=ALLOWED), "patient")).status_code == 200
    assert len(responses.calls) == 1


@responses.activate
def test_redirects_are_not_followed(tmp_path, hook):
    responses.get(f"{ALLOWED}/Patient/p1", status=302, headers={"Location": "https://evil.example/Patient/p1"})
    responses.get("https://evil.example/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    client = app_with(tmp_path, allowed_fhir_servers=(ALLOWED,))
    response = client.post(HOOK_URL, json=without(hook(fhirServer=ALLOWED), "patient"))
    assert response.status_code == 412
    assert [call.request.url for call in responses.calls] == [f"{ALLOWED}/Patient/p1"]


@responses.activate
def test_response_size_is_capped(tmp_path, hook):
    big = {
        "resourceType": "Patient",
        "id": "p1",
        "text": {"status": "generated", "div": "<div>" + "x" * 5000 + "</div>"},
    }
    responses.get(f"{ALLOWED}/Patient/p1", json=big)
    client = app_with(tmp_path, fhir_max_bytes=1000)
    response = client.post(HOOK_URL, json=without(hook(fhirServer=ALLOWED), "patient"))
    assert response.status_code == 412
    assert "too large" in response.get_json()["issue"][0]["diagnostics"]


@responses.activate
def test_page_count_is_capped(tmp_path, hook):
    page = re.compile(re.escape(ALLOWED) + r"/Condition.*")
    responses.get(
        page,
        json={
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [],
            "link": [{"relation": "next", "url": f"{ALLOWED}/Condition?page=n"}],
        },
    )
    client = app_with(tmp_path, fhir_max_pages=3)
    response = client.post(HOOK_URL, json=without(hook(fhirServer=ALLOWED), "conditions"))
    assert response.status_code == 412
    assert "pages" in response.get_json()["issue"][0]["diagnostics"]
    assert len(responses.calls) == 3


@responses.activate
def test_next_link_to_another_host_is_not_followed(tmp_path, hook):
    body = hook(fhirServer=ALLOWED)
    body["prefetch"]["conditions"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [],
        "link": [{"relation": "next", "url": "https://evil.example/Condition?page=2"}],
    }
    response = app_with(tmp_path, allowed_fhir_servers=(ALLOWED,)).post(HOOK_URL, json=body)
    assert response.status_code == 412
    assert len(responses.calls) == 0
