"""Safe by default (issue 17): who may call from a browser, which FHIR servers may be read, and the
settings that say so, parsed strictly and warned about one line each."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cds_service import Config, create_app
from cds_service.config import ConfigError, is_loopback, warnings

ROOT = Path(__file__).resolve().parents[2]
HOOK_URL = "/cds-services/sarcoma-patient-view"
ORIGIN = {"Origin": "https://any-page.example"}
PREFLIGHT = {
    **ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type",
}


def problem_of(**environ: str) -> str:
    with pytest.raises(ConfigError) as raised:
        Config.from_env(environ)
    [problem] = raised.value.problems
    return problem


# --- CORS: `*` only on loopback, unless configured ------------------------------------------------


@pytest.mark.parametrize(
    ("host", "auth", "expected"),
    [
        ("127.0.0.1", False, ("*",)),
        ("::1", False, ("*",)),
        ("localhost", False, ("*",)),
        ("0.0.0.0", False, ()),
        ("::", False, ()),
        ("10.1.2.3", False, ()),
        ("0.0.0.0", True, ()),
        ("127.0.0.1", True, ("*",)),
    ],
)
def test_the_default_origins_depend_on_the_address_only(host, auth, expected):
    assert Config(host=host, auth_required=auth).allowed_origins() == expected


def test_configured_origins_win_over_the_default():
    config = Config(host="0.0.0.0", cors_origins=("https://ehr.example.org",))
    assert config.allowed_origins() == ("https://ehr.example.org",)
    assert Config(host="0.0.0.0", cors_origins=("*",)).allowed_origins() == ("*",)


def test_beyond_loopback_without_authentication_no_web_page_may_call_even_in_a_demo(tmp_path, hook):
    client = create_app(Config(feedback_db=tmp_path / "f.db", host="0.0.0.0", insecure=True)).test_client()
    assert "Access-Control-Allow-Origin" not in client.get("/cds-services", headers=ORIGIN).headers
    assert "Access-Control-Allow-Origin" not in client.options(HOOK_URL, headers=PREFLIGHT).headers
    assert client.post(HOOK_URL, json=hook()).status_code == 200  # callers that are not browsers are unaffected


def test_on_loopback_the_cds_hooks_sandbox_may_call(tmp_path):
    client = create_app(Config(feedback_db=tmp_path / "f.db")).test_client()
    assert client.options(HOOK_URL, headers=PREFLIGHT).headers["Access-Control-Allow-Origin"] in ("*", ORIGIN["Origin"])


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("*,https://ehr.example.org", "stand alone"),
        ("https://ehr.example.org/app", "not an origin"),
        ("ehr.example.org", "not an absolute"),
        ("ftp://ehr.example.org", "not an absolute"),
        ("https://user@ehr.example.org", "credentials"),
        (",", "no origin"),
    ],
)
def test_origins_are_parsed_strictly(value, words):
    problem = problem_of(CDS_CORS_ORIGINS=value)
    assert problem.startswith("CDS_CORS_ORIGINS: ") and words in problem


def test_good_origins_are_read():
    config = Config.from_env({"CDS_CORS_ORIGINS": "https://ehr.example.org, http://localhost:3000"})
    assert config.cors_origins == ("https://ehr.example.org", "http://localhost:3000")
    assert Config.from_env({"CDS_CORS_ORIGINS": " * "}).cors_origins == ("*",)


@pytest.mark.parametrize(
    ("host", "expected"), [("127.0.0.2", True), ("[::1]", True), ("0.0.0.0", False), ("cds", False)]
)
def test_loopback_addresses(host, expected):
    assert is_loopback(host) is expected


# --- the other settings of issue 17 refuse nonsense ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CDS_ALLOW_ANY_FHIR_SERVER", "enabled"),
        ("CDS_ALLOW_ANY_FHIR_SERVER", '"true"'),
        ("CDS_MAX_RESOURCES", "0"),
        ("CDS_MAX_RESOURCES", "lots"),
        ("CDS_MAX_RESOURCES", "2e4"),
        ("CDS_MAX_FEEDBACK_BYTES", "100"),
        ("CDS_MAX_FEEDBACK_BYTES", "-1"),
        ("CDS_FHIR_DEADLINE_S", "61"),
        ("CDS_FHIR_TIMEOUT_S", "3600"),
        ("CDS_ALLOWED_FHIR_SERVERS", "https://ehr.example.org/fhir?x=1"),
    ],
)
def test_bad_values_stop_start_up_naming_the_setting(name, value):
    assert problem_of(**{name: value}).startswith(f"{name}: ")


def test_good_values_are_read():
    config = Config.from_env(
        {"CDS_ALLOW_ANY_FHIR_SERVER": "true", "CDS_MAX_RESOURCES": "5000", "CDS_MAX_FEEDBACK_BYTES": "2048"}
    )
    assert (config.allow_any_fhir_server, config.max_resources, config.max_feedback_bytes) == (True, 5000, 2048)


# --- warnings: one line each, starting with the setting ---------------------------------------------


def test_the_development_switch_and_an_open_cors_beyond_loopback_are_warned_about():
    config = Config(host="0.0.0.0", cors_origins=("*",), allow_any_fhir_server=True)
    found = warnings(config)
    assert [w.split()[0] for w in found] == [
        "CDS_AUTH_REQUIRED",
        "CDS_ALLOWED_FHIR_SERVERS",
        "CDS_ALLOW_ANY_FHIR_SERVER",
        "CDS_CORS_ORIGINS",
    ]
    assert all("\n" not in w for w in found)


def test_a_production_configuration_has_no_warning(tmp_path):
    config = Config(
        host="0.0.0.0",
        auth_required=True,
        public_base_url="https://cds.example.org",
        allowed_fhir_servers=("https://ehr.example.org/fhir",),
    )
    assert warnings(config) == []


def test_start_up_logs_each_warning_once_as_one_labelled_line(tmp_path, capsys):
    capsys.readouterr()
    config = Config(feedback_db=tmp_path / "f.db", host="0.0.0.0", cors_origins=("*",), allow_any_fhir_server=True)
    create_app(config.with_overrides(insecure=True))
    lines = [line for line in capsys.readouterr().err.splitlines() if " WARNING " in line]
    for setting in ("CDS_AUTH_REQUIRED", "CDS_ALLOWED_FHIR_SERVERS", "CDS_ALLOW_ANY_FHIR_SERVER", "CDS_CORS_ORIGINS"):
        [line] = [line for line in lines if f"WARNING cds_service.auth: {setting} " in line]
        assert re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+Z WARNING cds_service\.auth: CDS_[A-Z_]+ ", line)


# --- the image and compose file as shipped -------------------------------------------------------


def dockerfile_env() -> dict[str, str]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip().startswith("ENV "):
            env.update(pair.split("=", 1) for pair in line.split()[1:] if "=" in pair)
    return env


def test_the_image_binds_every_address_so_its_defaults_are_the_strict_ones():
    config = Config.from_env(dockerfile_env())
    assert config.host == "0.0.0.0"
    assert config.allowed_origins() == ()
    assert config.allowed_fhir_servers == ()


def test_compose_reads_only_its_own_fhir_server_and_lets_only_the_trusted_sandbox_origin_call():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    config = Config.from_env({**dockerfile_env(), **compose["services"]["cds"]["environment"]})
    assert config.allowed_fhir_servers == ("http://fhir:8080/fhir",)
    assert not config.allow_any_fhir_server
    assert config.allowed_origins() == ("https://sandbox.cds-hooks.org",)  # the one trusted issuer's page
    demo = Config.from_env({**dockerfile_env(), **compose["services"]["cds-demo"]["environment"]})
    assert demo.allowed_origins() == ()  # the sandbox page is served by the service itself
