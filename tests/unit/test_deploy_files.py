"""docker-compose.yml, Dockerfile and .dockerignore hold together (no Docker engine needed).

The compose file is parsed with PyYAML, the Dockerfile line by line; the checks are the ones a
broken deployment would fail first: pinned images, ports, health checks, start order, non-root.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds_service.auth.issuers import load_trusted_issuers
from cds_service.config import Config, exposure_problems, insecure_notice

ROOT = Path(__file__).resolve().parents[2]
FHIR_IN_COMPOSE = "http://fhir:8080/fhir"


@pytest.fixture(scope="module")
def compose_text() -> str:
    return (ROOT / "docker-compose.yml").read_text()


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    return yaml.safe_load(compose_text)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def instructions(dockerfile: list[tuple[str, str]], name: str) -> list[str]:
    return [args for instruction, args in dockerfile if instruction == name]


def command_text(command: Any) -> str:
    return " ".join(command) if isinstance(command, list) else str(command)


def test_compose_defines_the_fhir_server_the_service_its_proxy_and_the_loader(services: dict[str, Any]) -> None:
    assert {"fhir", "cds", "proxy", "loader"} <= set(services)


@pytest.mark.parametrize(
    "name", ["fhir", "cds", "proxy", "cds-demo", "loader", "postgres", "redis", "migrate", "replica", "replicas-proxy"]
)
def test_every_image_has_a_pinned_tag(services: dict[str, Any], name: str) -> None:
    image = services[name]["image"]
    repository, _, tag = image.rpartition(":")
    assert repository and "/" not in tag, f"{name}: '{image}' has no tag"
    assert tag != "latest"


def test_the_fhir_server_is_hapi_r4_on_host_port_8090(services: dict[str, Any]) -> None:
    fhir = services["fhir"]
    assert fhir["image"].startswith("hapiproject/hapi:v")
    assert fhir["ports"] == ["8090:8080"]
    assert fhir["environment"]["hapi.fhir.fhir_version"] == "R4"


def test_the_service_is_built_here_and_reached_only_through_nginx_on_8080(services: dict[str, Any]) -> None:
    cds, proxy = services["cds"], services["proxy"]
    assert cds["build"] == "."
    assert "ports" not in cds and cds["expose"] == ["8080"]
    assert proxy["image"].startswith("nginx:")
    assert proxy["ports"] == ["8080:8080"]
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in proxy["volumes"]
    assert proxy["depends_on"]["cds"]["condition"] == "service_healthy"
    assert "server cds:8080;" in (ROOT / "deploy" / "nginx.conf").read_text()


def compose_config(environment: dict[str, str]) -> Config:
    """The service's settings as the image runs them: its ENV lines, then the compose environment."""
    return Config.from_env({"CDS_HOST": "0.0.0.0", **{k: str(v) for k, v in environment.items()}})


def test_the_compose_service_is_secure_as_shipped(services: dict[str, Any]) -> None:
    config = compose_config(services["cds"]["environment"])
    assert exposure_problems(config) == [] and insecure_notice(config) is None
    assert config.auth_required and not config.sandbox and not config.insecure
    assert config.allowed_fhir_servers == (FHIR_IN_COMPOSE,)
    issuers_file = services["cds"]["environment"]["CDS_TRUSTED_ISSUERS_FILE"]
    assert f"./deploy/trusted-issuers.json:{issuers_file}:ro" in services["cds"]["volumes"]
    assert load_trusted_issuers(ROOT / "deploy" / "trusted-issuers.json")


def test_the_demo_profile_says_what_it_turns_off_and_stays_on_this_machine(
    services: dict[str, Any], compose_text: str
) -> None:
    demo = services["cds-demo"]
    assert demo["profiles"] == ["demo"]
    assert all(port.startswith("127.0.0.1:") for port in demo["ports"])
    config = compose_config(demo["environment"])
    notice = insecure_notice(config)
    assert notice is not None and "authentication off" in notice
    assert config.allowed_fhir_servers == (FHIR_IN_COMPOSE,)
    header = compose_text.split("\nname:", 1)[0]
    assert "--profile demo" in header and "CDS_INSECURE turns" in header and "authentication" in header


def test_the_image_as_shipped_refuses_to_start_open(dockerfile: list[tuple[str, str]]) -> None:
    """Its ENV binds 0.0.0.0 and sets none of the protections: start-up stops with one line naming them."""
    env = dict(pair.split("=", 1) for args in instructions(dockerfile, "ENV") for pair in args.split() if "=" in pair)
    assert env["CDS_HOST"] == "0.0.0.0"
    [problem] = exposure_problems(Config.from_env(env))
    assert problem.startswith("CDS_HOST: 0.0.0.0 ")
    for needed in ("CDS_AUTH_REQUIRED=true", "CDS_ALLOWED_FHIR_SERVERS", "CDS_PUBLIC_BASE_URL", "CDS_INSECURE"):
        assert needed in problem


@pytest.mark.parametrize("name", ["cds", "cds-demo"])
def test_the_service_healthcheck_probes_readiness(services: dict[str, Any], name: str) -> None:
    check = services[name]["healthcheck"]
    assert check["test"][0] == "CMD"
    assert "/readyz" in command_text(check["test"])
    assert {"interval", "timeout", "retries"} <= set(check)


def test_the_loader_runs_once_after_the_service_is_healthy(services: dict[str, Any]) -> None:
    loader = services["loader"]
    assert loader["image"] == services["cds"]["image"]
    assert loader["restart"] == "no"
    assert loader["depends_on"]["cds"]["condition"] == "service_healthy"
    assert loader["depends_on"]["fhir"]["condition"] in {"service_started", "service_healthy"}


def test_the_loader_waits_for_hapi_then_loads_the_fixtures_into_it(services: dict[str, Any]) -> None:
    script = services["loader"]["command"][-1]
    assert f"sarcoma-cds load-fixtures --fhir {FHIR_IN_COMPOSE}" in script
    waiter = re.search(r"<<'PY'\n(.*?)\nPY\n", script, re.S)
    assert waiter is not None, "the loader must wait for HAPI before loading"
    assert f"{FHIR_IN_COMPOSE}/metadata" in waiter.group(1)
    compile(waiter.group(1), "loader-wait", "exec")  # a syntax error would only show at `compose up`
    assert script.index("<<'PY'") < script.index("load-fixtures")


def test_the_replicas_profile_shares_postgresql_and_redis_migrated_before_any_replica(services: dict[str, Any]) -> None:
    shared = ("postgres", "redis", "migrate", "replica", "replicas-proxy")
    assert all(services[name]["profiles"] == ["replicas"] for name in shared)
    assert not any("profiles" in services[name] for name in ("fhir", "cds", "proxy", "loader"))  # `up` alone
    assert services["replica"]["environment"]["CDS_AUTH_REQUIRED"] == "true"  # secured as `cds` is
    replica = services["replica"]
    assert replica["deploy"]["replicas"] >= 2
    assert replica["environment"]["CDS_DATABASE_URL"] == services["migrate"]["environment"]["CDS_DATABASE_URL"]
    assert (
        replica["environment"]["CDS_DATABASE_URL"].startswith("postgresql://")
        and "@postgres:5432/" in (replica["environment"]["CDS_DATABASE_URL"])
    )
    assert replica["environment"]["CDS_REDIS_URL"] == "redis://redis:6379/0"
    assert services["migrate"]["command"] == ["sarcoma-cds", "migrate"]
    assert replica["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "/readyz" in command_text(replica["healthcheck"]["test"])


def test_the_proxy_spreads_calls_over_the_replicas_and_keeps_metrics_in(services: dict[str, Any]) -> None:
    proxy = services["replicas-proxy"]
    assert proxy["depends_on"]["replica"]["condition"] == "service_healthy"
    source, target, _ = proxy["volumes"][0].split(":")
    assert target == "/etc/nginx/conf.d/default.conf"
    conf = (ROOT / source).read_text()
    assert re.search(r"upstream cds_replicas \{\s*server replica:8080;", conf)
    assert "proxy_pass http://cds_replicas;" in conf
    assert "client_header_timeout 10s;" in conf  # the same timeouts as deploy/nginx.conf
    assert re.search(r"location = /metrics \{\s*return 404;", conf)


def test_dockerfile_starts_from_a_pinned_slim_python_311(dockerfile: list[tuple[str, str]]) -> None:
    (base,) = instructions(dockerfile, "FROM")
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base), base


def test_dockerfile_runs_as_a_non_root_user(dockerfile: list[tuple[str, str]]) -> None:
    users = instructions(dockerfile, "USER")
    assert users and users[-1] not in {"root", "0", "0:0"}
    last_user = max(i for i, (instruction, _) in enumerate(dockerfile) if instruction == "USER")
    assert all(instruction != "RUN" for instruction, _ in dockerfile[last_user:])


def test_dockerfile_installs_the_package_and_bakes_in_the_knowledge(dockerfile: list[tuple[str, str]]) -> None:
    assert any("pip install --no-deps ." in run for run in instructions(dockerfile, "RUN"))
    copied = " ".join(instructions(dockerfile, "COPY"))
    for needed in ("pyproject.toml", "README.md", "cds_service/", "cards/", "fhir_fixtures/"):
        assert needed in copied


def test_dockerfile_health_check_and_command_match_compose(
    dockerfile: list[tuple[str, str]], services: dict[str, Any]
) -> None:
    (health,) = instructions(dockerfile, "HEALTHCHECK")
    assert "/readyz" in health and "urllib" in health
    (command,) = instructions(dockerfile, "CMD")
    assert json.loads(command) == ["sarcoma-cds", "serve", "--host", "0.0.0.0", "--port", "8080"]
    assert instructions(dockerfile, "EXPOSE") == ["8080"]
    assert services["proxy"]["ports"][0].endswith(":8080")


def test_dockerignore_keeps_local_state_out_and_the_build_inputs_in() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    assert {".git", ".venv", ".fhir-server", "var"} <= ignored
    assert not ignored & {"cards", "fhir_fixtures", "cds_service", "README.md", "pyproject.toml", "*"}


def test_the_runtime_lock_pins_every_declared_dependency_and_both_store_drivers_within_range() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    pinned = dict(line.split("==", 1) for line in lines if line and not line.startswith("#"))
    pinned = {canonicalize_name(name): version for name, version in pinned.items()}
    extras = project["optional-dependencies"]
    for text in [*project["dependencies"], *extras["postgres"], *extras["redis"]]:  # the image has both drivers
        requirement = Requirement(text)
        version = pinned.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is not in requirements.lock"
        assert requirement.specifier.contains(version), (
            f"{requirement.name}=={version} is outside {requirement.specifier}"
        )


def test_dockerfile_installs_the_locked_versions(dockerfile: list[tuple[str, str]]) -> None:
    runs = " ".join(instructions(dockerfile, "RUN"))
    assert "requirements.lock" in " ".join(instructions(dockerfile, "COPY"))
    assert "pip install -r requirements.lock" in runs and "--no-deps" in runs
