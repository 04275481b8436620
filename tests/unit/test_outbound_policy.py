"""Outbound safety: the service calls only allowed FHIR servers (none by default), and bounds what it reads."""

from __future__ import annotations

import re
import time

import pytest
import responses
from hostile_http import answer, running

from cds_service import Config, create_app
from cds_service.errors import ForbiddenFhirServer
from cds_service.fhir.client import Deadline, FhirClient, FhirFetchError, new_session
from cds_service.fhir.policy import check_fhir_server, public_only, url_within

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
        "https://ehr.example.com:0/fhir",  # port 0, not the default port
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
        "https://ehr.example.com/fhir/..;/admin",
        "https://ehr.example.com/fhir/.;x=1/../admin",
        "https://ehr.example.com/fhir/%252e%252e/admin",
        "https://ehr.example.com/fhir/%25252e%25252e/admin",
        "https://ehr.example.com/fhir/%2E%2E%2Fadmin",
        "https://ehr.example.com/fhir/\uff0e\uff0e/admin",
        "https://ehr.example.com/fhir/%EF%BC%8E%EF%BC%8E/admin",
        "https://ehr.example.com/fhir/\u2025/admin",
        "https://ehr.example.com/fhir/%5c..%5cadmin",
        "https://ehr.example.com/fhir/%255c..%255cadmin",
        "https://ehr.example.com/fhir/caf\u00e9",
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


def test_by_default_every_fhir_server_is_refused_with_the_setting_that_allows_it_named():
    with pytest.raises(ForbiddenFhirServer) as refused:
        check_fhir_server(Config(), "https://ehr.example.com/fhir")
    assert "not on this service's allow-list" in refused.value.message
    assert "CDS_ALLOWED_FHIR_SERVERS" in refused.value.message
    assert "ehr.example.com" not in refused.value.message  # the request's value is never echoed


def test_listed_servers_pass_and_others_are_refused():
    config = Config(allowed_fhir_servers=(ALLOWED, "https://other.example.org/r4"))
    check_fhir_server(config, "https://other.example.org/r4/")
    check_fhir_server(config, "https://ehr.example.com/fhir/R4")
    with pytest.raises(ForbiddenFhirServer):
        check_fhir_server(config, "https://ehr.example.com.evil.net/fhir")


@pytest.mark.parametrize("url", [ALLOWED + "?x=1", ALLOWED + "?", ALLOWED + "/?_format=xml", ALLOWED + "#f"])
def test_a_fhir_server_with_a_query_or_fragment_is_refused_even_when_listed(url):
    with pytest.raises(ForbiddenFhirServer, match="without query or fragment"):
        check_fhir_server(Config(allowed_fhir_servers=(ALLOWED,)), url)


def test_require_https_refuses_plain_http():
    config = Config(require_https=True, allowed_fhir_servers=(ALLOWED, "http://ehr.example.com/fhir"))
    with pytest.raises(ForbiddenFhirServer, match="https"):
        check_fhir_server(config, "http://ehr.example.com/fhir")
    check_fhir_server(config, "https://ehr.example.com/fhir")


# --- CDS_ALLOW_ANY_FHIR_SERVER: public addresses only ---------------------------------------------

ANY_SERVER = Config(allow_any_fhir_server=True)


@pytest.mark.parametrize("url", ["https://93.184.215.14/fhir", "http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/r4"])
def test_the_development_switch_allows_a_public_address(url):
    check_fhir_server(ANY_SERVER, url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8091/fhir",
        "http://127.1/fhir",
        "http://0x7f.1/fhir",
        "http://2130706433/fhir",
        "http://0177.0.0.1/fhir",
        "http://localhost:8080/fhir",
        "http://app.localhost/fhir",
        "http://[::1]/fhir",
        "http://[::ffff:127.0.0.1]/fhir",
        "http://0.0.0.0/fhir",
        "http://10.0.0.5/fhir",
        "http://172.16.3.4/fhir",
        "http://192.168.1.1/fhir",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/fhir",
        "http://[fd00::1]/fhir",
        "http://100.64.0.1/fhir",
        "http://fhir:8080/fhir",
        "http://nothing.invalid/fhir",
    ],
)
def test_the_development_switch_never_opens_loopback_link_local_or_private_addresses(url):
    with pytest.raises(ForbiddenFhirServer, match="CDS_ALLOWED_FHIR_SERVERS"):
        check_fhir_server(ANY_SERVER, url)


@pytest.mark.parametrize("switch", [False, True])
def test_a_listed_private_server_passes_with_or_without_the_switch(switch):
    config = Config(allow_any_fhir_server=switch, allowed_fhir_servers=("http://127.0.0.1:8091/fhir",))
    check_fhir_server(config, "http://127.0.0.1:8091/fhir/Patient")


def test_the_switch_still_refuses_dot_segments_and_credentials():
    for url in ("https://93.184.215.14/fhir/../admin", "https://u:p@93.184.215.14/fhir"):
        with pytest.raises(ForbiddenFhirServer):
            check_fhir_server(ANY_SERVER, url)


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
        "https://ehr.example.com/fhir/..;/admin",
        "https://ehr.example.com/fhir/%252e%252e/admin",
        "https://ehr.example.com/fhir/\uff0e\uff0e/admin",
        "https://ehr.example.com/fhir?_format=json",
    ],
)
@responses.activate
def test_another_fhir_server_gets_403_and_no_outbound_call(tmp_path, hook, server):
    client = app_with(tmp_path, allowed_fhir_servers=(ALLOWED,))
    response = client.post(HOOK_URL, json=without(hook(fhirServer=server), "observations"))
    assert_forbidden(response)
    assert len(responses.calls) == 0


@responses.activate
def test_with_default_settings_a_fhir_server_gets_403_naming_the_setting(tmp_path, hook):
    response = app_with(tmp_path).post(HOOK_URL, json=without(hook(fhirServer=ALLOWED), "observations"))
    assert_forbidden(response)
    assert "CDS_ALLOWED_FHIR_SERVERS" in response.get_json()["issue"][0]["diagnostics"]
    assert len(responses.calls) == 0


@responses.activate
def test_forbidden_server_is_refused_even_when_prefetch_is_complete(tmp_path, hook):
    client = app_with(tmp_path, allowed_fhir_servers=(ALLOWED,))
    assert_forbidden(client.post(HOOK_URL, json=hook(fhirServer="https://evil.example/fhir")))
    assert len(responses.calls) == 0


@responses.activate
def test_plain_http_is_refused_when_https_is_required(tmp_path, hook):
    client = app_with(tmp_path, require_https=True, allowed_fhir_servers=("http://ehr.example.com/fhir",))
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
    client = app_with(tmp_path, fhir_max_bytes=1000, allowed_fhir_servers=(ALLOWED,))
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
    client = app_with(tmp_path, fhir_max_pages=3, allowed_fhir_servers=(ALLOWED,))
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


def test_only_servers_allowed_by_the_switch_are_held_to_public_addresses_when_connecting():
    config = Config(allow_any_fhir_server=True, allowed_fhir_servers=("http://127.0.0.1:8091/fhir",))
    assert public_only(config, "https://93.184.215.14/fhir")
    assert not public_only(config, "http://127.0.0.1:8091/fhir/Patient")


def test_a_client_held_to_public_addresses_refuses_a_name_that_resolves_to_loopback():
    """The address connected to is checked, whatever the name said at the policy check (DNS rebinding)."""
    with running(answer()) as server:
        base = f"http://localhost:{server.port}/fhir"
        client = FhirClient(new_session(), base, token=None, timeout_s=1, max_pages=2, max_bytes=1000, public_only=True)
        with pytest.raises(FhirFetchError, match="loopback, link-local or private"):
            client.read("Patient/p1", Deadline.after(2))
        time.sleep(0.1)
        assert server.requests == []
