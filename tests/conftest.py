"""Shared fixtures: ``app``, ``client`` and ``hook`` (a builder of spec-exact hook requests)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service import Config, create_app
from cds_service.protocol.services import SARCOMA_PATIENT_VIEW

SERVICE = "sarcoma-patient-view"
HOOK_URL = f"/cds-services/{SERVICE}"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(feedback_db=tmp_path / "feedback.sqlite3", sandbox=True)


@pytest.fixture
def app(config: Config) -> Flask:
    return create_app(config)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def empty_prefetch(patient_id: str = "p1") -> dict[str, Any]:
    """A prefetch that satisfies every template with no clinical data."""
    searchset = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    return {
        key: {"resourceType": "Patient", "id": patient_id} if key == "patient" else dict(searchset)
        for key in SARCOMA_PATIENT_VIEW.prefetch
    }


@pytest.fixture
def hook() -> Callable[..., dict[str, Any]]:
    """Build a patient-view request; keyword arguments replace or drop (``None``) top-level fields."""

    def build(patient_id: str = "p1", **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "hook": "patient-view",
            "hookInstance": str(uuid.uuid4()),
            "context": {"patientId": patient_id, "userId": "Practitioner/dr-1"},
            "prefetch": empty_prefetch(patient_id),
        }
        for name, value in fields.items():
            if value is None:
                body.pop(name, None)
            else:
                body[name] = value
        return body

    return build
