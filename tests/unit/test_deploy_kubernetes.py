"""deploy/kubernetes/: plain manifests, valid against the Kubernetes schemas (kubernetes-validate, offline),
wired to each other: probes, the migration before any replica, settings and secrets by reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from cds_service.config import SETTINGS

FOLDER = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
VERSION = "1.30.0"


def manifests() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for path in sorted(FOLDER.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())}


@pytest.mark.parametrize("kind", ["ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler"])
def test_each_manifest_is_valid_kubernetes(kind: str) -> None:
    kubernetes_validate.validate(manifests()[kind], VERSION, strict=True)


def test_the_validator_refuses_a_misspelt_field() -> None:
    broken = manifests()["Deployment"]
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = broken["spec"]["template"]["spec"][
        "containers"
    ][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


def test_the_replicas_probe_readiness_and_liveness_and_migrate_first() -> None:
    pod = manifests()["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["initContainers"][0]["command"] == ["sarcoma-cds", "migrate"]
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_settings_are_known_and_secrets_come_by_reference() -> None:
    known = {s.env for s in SETTINGS}
    config = manifests()["ConfigMap"]["data"]
    assert set(config) <= known and config["CDS_AUTH_REQUIRED"] == "true"
    env = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]
    by_name = {e["name"]: e for e in env}
    assert {"CDS_DATABASE_URL", "CDS_REDIS_URL"} <= set(by_name) <= known
    assert all("secretKeyRef" in e["valueFrom"] for e in by_name.values())


def test_the_service_and_autoscaler_point_at_the_deployment() -> None:
    found = manifests()
    labels = found["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert found["Service"]["spec"]["selector"] == labels
    assert found["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == found["Deployment"]["metadata"]["name"]
    assert found["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2
