"""Settings: strict parsing (issue 17), every setting declared once and documented (issue 13)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import fields
from datetime import date
from pathlib import Path

import pytest

from cds_service.config import (
    SETTINGS,
    Config,
    ConfigError,
    check,
    exposure_problems,
    insecure_notice,
    settings_table,
    shown_default,
    warnings,
)

ROOT = Path(__file__).resolve().parents[2]


def problems_of(**environ: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        Config.from_env(environ)
    return raised.value.problems


@pytest.mark.parametrize("word", ["enabled", "ture", "y", '"true"', "tru", "2", "false!"])
def test_a_boolean_that_is_not_one_stops_start_up_instead_of_reading_as_false(word):
    [problem] = problems_of(CDS_AUTH_REQUIRED=word)
    assert problem.startswith("CDS_AUTH_REQUIRED: ") and "not a boolean" in problem


@pytest.mark.parametrize(
    ("word", "expected"),
    [("true", True), ("TRUE", True), (" 1 ", True), ("yes", True), ("on", True), ("false", False), ("0", False)],
)
def test_boolean_words(word, expected):
    assert Config.from_env({"CDS_AUTH_REQUIRED": word}).auth_required is expected


@pytest.mark.parametrize("name", ["CDS_FHIR_DEADLINE_S", "CDS_FHIR_TIMEOUT_S", "CDS_SYNCHRONOUS_MONTHS"])
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "0", "-1", "0.0", "soon", "1e999"])
def test_a_duration_must_be_finite_and_above_zero(name, value):
    [problem] = problems_of(**{name: value})
    assert problem.startswith(f"{name}: ")


def test_durations_read_as_numbers():
    config = Config.from_env({"CDS_FHIR_DEADLINE_S": "2.5", "CDS_FHIR_TIMEOUT_S": "1", "CDS_SYNCHRONOUS_MONTHS": "6"})
    assert (config.fhir_deadline_s, config.fhir_timeout_s, config.synchronous_months) == (2.5, 1.0, 6.0)
    assert all(math.isfinite(v) for v in (config.fhir_deadline_s, config.fhir_timeout_s))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CDS_PORT", "0"),
        ("CDS_PORT", "65536"),
        ("CDS_PORT", "80.5"),
        ("CDS_WORKERS", "0"),
        ("CDS_THREADS", "-4"),
        ("CDS_FHIR_MAX_PAGES", "0"),
        ("CDS_FHIR_MAX_BYTES", "lots"),
        ("CDS_MAX_BODY_BYTES", "1e6"),
    ],
)
def test_whole_numbers_are_checked_against_their_range(name, value):
    [problem] = problems_of(**{name: value})
    assert problem.startswith(f"{name}: ")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CDS_PUBLIC_BASE_URL", "cds.example.org"),
        ("CDS_PUBLIC_BASE_URL", "ftp://cds.example.org"),
        ("CDS_PUBLIC_BASE_URL", "https://user:pw@cds.example.org"),
        ("CDS_PUBLIC_BASE_URL", "https://cds.example.org/?x=1"),
        ("CDS_ALLOWED_FHIR_SERVERS", "https://ehr.example.org/fhir,ehr.example.org"),
        ("CDS_ALLOWED_FHIR_SERVERS", "https://ehr.example.org:99999/fhir"),
        ("CDS_TODAY", "2026-02-30"),
        ("CDS_LOG_FORMAT", "xml"),
        ("CDS_LOG_LEVEL", "chatty"),
    ],
)
def test_urls_dates_and_choices_are_parsed_strictly(name, value):
    [problem] = problems_of(**{name: value})
    assert problem.startswith(f"{name}: ")


def test_every_bad_setting_is_reported_at_once_one_line_each():
    problems = problems_of(CDS_AUTH_REQUIRED="enabled", CDS_FHIR_DEADLINE_S="inf", CDS_PORT="x")
    assert [p.split(":")[0] for p in problems] == ["CDS_PORT", "CDS_FHIR_DEADLINE_S", "CDS_AUTH_REQUIRED"]
    assert all("\n" not in p for p in problems)


def test_good_values_are_read():
    config = Config.from_env(
        {
            "CDS_PUBLIC_BASE_URL": "https://cds.example.org/",
            "CDS_ALLOWED_FHIR_SERVERS": "https://ehr.example.org/fhir/, https://other.example.org/r4",
            "CDS_TODAY": "2026-03-01",
            "CDS_LOG_FORMAT": "JSON",
            "CDS_LOG_LEVEL": "debug",
            "CDS_PORT": "8081",
            "CDS_HOST": "0.0.0.0",
        }
    )
    assert config.public_base_url == "https://cds.example.org"
    assert config.allowed_fhir_servers == ("https://ehr.example.org/fhir", "https://other.example.org/r4")
    assert config.today == date(2026, 3, 1)
    assert (config.log_format, config.log_level, config.port, config.host) == ("json", "DEBUG", 8081, "0.0.0.0")


def test_an_empty_variable_means_the_default():
    assert Config.from_env({"CDS_AUTH_REQUIRED": "", "CDS_PORT": " "}) == Config()


def test_every_config_field_is_a_declared_setting_and_every_setting_a_field():
    declared = [s.attr for s in SETTINGS]
    assert len(declared) == len(set(declared)) and len({s.env for s in SETTINGS}) == len(SETTINGS)
    assert set(declared) == {f.name for f in fields(Config)} - {"extra"}
    assert all(re.fullmatch(r"CDS_[A-Z0-9_]+", s.env) for s in SETTINGS)


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.default is None], ids=lambda s: s.env)
def test_a_documented_default_reads_back_as_the_default(setting):
    shown = shown_default(setting)
    default = getattr(Config(), setting.attr)
    if shown == "(none)":
        assert default in (None, ())
    else:
        assert getattr(Config.from_env({setting.env: shown.strip("`")}), setting.attr) == default


def test_the_readme_settings_table_is_the_one_config_declares():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings_table() in readme, "regenerate with: .venv/bin/sarcoma-cds settings (README, Configuration)"


# --- check: what start-up would fail on -------------------------------------------------------


def test_the_default_configuration_passes_its_checks_with_two_warnings(tmp_path):
    config = Config(feedback_db=tmp_path / "f.db")
    assert check(config) == []
    assert [w.split()[0] for w in warnings(config)] == ["CDS_AUTH_REQUIRED", "CDS_ALLOWED_FHIR_SERVERS"]


def test_auth_needs_an_issuers_file_and_a_public_base_url(tmp_path):
    problems = check(Config(feedback_db=tmp_path / "f.db", auth_required=True))
    assert any("CDS_TRUSTED_ISSUERS_FILE is not set" in p for p in problems)
    assert any("needs CDS_PUBLIC_BASE_URL" in p for p in problems)


def test_a_bad_issuers_file_is_one_problem_naming_it_even_with_auth_off(tmp_path):
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps([{"iss": "https://ehr.example.org"}]))
    [problem] = check(Config(feedback_db=tmp_path / "f.db", trusted_issuers_file=issuers))
    assert str(issuers) in problem and "no key source" in problem


def test_unsafe_algorithms_and_a_missing_cards_folder_are_problems(tmp_path):
    problems = check(Config(feedback_db=tmp_path / "f.db", jwt_algorithms=("HS256",), cards_dir=tmp_path / "none"))
    assert len(problems) == 2
    assert "HS256" in problems[0] and problems[1].startswith("CDS_CARDS_DIR: ")


def test_an_unwritable_feedback_database_is_a_problem(tmp_path):
    assert check(Config(feedback_db=tmp_path)) == [f"CDS_FEEDBACK_DB: {tmp_path} is not a writable file"]


# --- secure by default: an address others can reach needs authentication, an allow-list, a URL ---------

EXPOSED = {"host": "0.0.0.0"}
PROTECTED = {
    "auth_required": True,
    "allowed_fhir_servers": ("https://ehr.example.org/fhir",),
    "public_base_url": "https://cds.example.org",
}


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_a_loopback_address_needs_none_of_the_protections(host):
    assert exposure_problems(Config(host=host)) == []


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "cds.example.org"])
def test_a_reachable_address_without_protections_stops_start_up_naming_what_is_missing(host):
    [problem] = exposure_problems(Config(host=host))
    assert problem == (
        f"CDS_HOST: {host} is reachable from other machines, so the service needs CDS_AUTH_REQUIRED=true, "
        "CDS_ALLOWED_FHIR_SERVERS, CDS_PUBLIC_BASE_URL (or CDS_INSECURE=true for a demo)"
    )


@pytest.mark.parametrize("dropped", sorted(PROTECTED))
def test_each_protection_is_required_on_its_own(dropped):
    given = {name: value for name, value in PROTECTED.items() if name != dropped}
    [problem] = exposure_problems(Config(**EXPOSED, **given))
    named = {"auth_required": "CDS_AUTH_REQUIRED=true", "allowed_fhir_servers": "CDS_ALLOWED_FHIR_SERVERS"}
    assert f"needs {named.get(dropped, 'CDS_PUBLIC_BASE_URL')} (or CDS_INSECURE=true" in problem


def test_all_three_protections_let_it_start_and_nothing_insecure_is_announced():
    config = Config(**EXPOSED, **PROTECTED)
    assert exposure_problems(config) == [] and insecure_notice(config) is None


def test_any_fhir_server_is_for_loopback_development_only():
    [problem] = exposure_problems(Config(**EXPOSED, **PROTECTED, allow_any_fhir_server=True))
    assert problem.startswith("CDS_ALLOW_ANY_FHIR_SERVER: development only")
    assert exposure_problems(Config(allow_any_fhir_server=True)) == []


def test_insecure_lets_a_demo_start_and_says_in_one_line_what_is_off():
    config = Config.from_env({"CDS_HOST": "0.0.0.0", "CDS_INSECURE": "true", "CDS_ALLOWED_FHIR_SERVERS": "http://f/x"})
    assert exposure_problems(config) == []
    assert insecure_notice(config) == (
        "INSECURE: CDS_INSECURE=true on 0.0.0.0: authentication off; card links taken from the Host header. "
        "For demos only, never with patient data"
    )
    assert insecure_notice(config.with_overrides(host="127.0.0.1")) is None


def test_check_reports_the_exposure_problem_first(tmp_path):
    problems = check(Config(feedback_db=tmp_path / "f.db", host="0.0.0.0"))
    assert problems[0].startswith("CDS_HOST: 0.0.0.0 is reachable")


def test_the_app_itself_refuses_an_exposed_configuration(tmp_path):
    from cds_service import create_app

    with pytest.raises(ConfigError) as raised:
        create_app(Config(feedback_db=tmp_path / "f.db", host="0.0.0.0"))
    assert raised.value.problems[0].startswith("CDS_HOST: 0.0.0.0 ")


def test_the_insecure_line_is_written_once_however_many_apps_start(tmp_path, capsys):
    from cds_service import create_app

    config = Config(feedback_db=tmp_path / "f.db", host="10.20.30.40", insecure=True)
    create_app(config)
    create_app(config)
    lines = [line for line in capsys.readouterr().err.splitlines() if "INSECURE" in line]
    assert len(lines) == 1 and " CRITICAL " in lines[0] and "10.20.30.40: authentication off" in lines[0]


def test_a_call_may_not_read_more_than_its_worker_can_hold(tmp_path):
    problems = check(Config(feedback_db=tmp_path / "f.db", fhir_max_bytes=2_000, fhir_bytes_per_worker=1_000))
    assert problems == [
        "CDS_FHIR_MAX_BYTES (2000) is above CDS_FHIR_BYTES_PER_WORKER (1000): a call reading that much could never "
        "be held"
    ]
