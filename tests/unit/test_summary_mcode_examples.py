"""The real mCODE example instances (tests/data/mcode-examples, CC0, from HL7/fhir-mCODE-ig) are read and
summarised as not STS."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from cds_service.summary import summarise
from cds_service.summary.model import Diagnosis, FindingKind

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "mcode-examples"
FILES = sorted(EXAMPLES.glob("*/*.json"))
TODAY = date(2025, 1, 1)


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_example_alone_is_read_without_invalid_findings(path: Path) -> None:
    summary = summarise([load(path)], today=TODAY)
    assert not [f for f in summary.findings if f.kind is FindingKind.INVALID]
    assert summary.diagnosis.value in (Diagnosis.OTHER_CANCER, Diagnosis.NONE)
    if path.name.startswith("Condition-") and "primary" in path.name.lower():
        assert summary.diagnosis.value is Diagnosis.OTHER_CANCER


@pytest.mark.parametrize("folder", ["stu1", "stu4-transcribed"])
def test_each_version_together_is_other_cancer_with_ecog_and_stage(folder: str) -> None:
    summary = summarise([load(p) for p in FILES if p.parent.name == folder], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.OTHER_CANCER
    assert summary.ecog.value == 0
    assert summary.stage_recorded.value == "IIIC"
    assert summary.stage is None


def test_all_examples_together() -> None:
    summary = summarise([load(p) for p in FILES], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.OTHER_CANCER
    assert summary.patient == "Patient/cancer-patient-john-anyperson"
    assert summary.ecog.value == 0 and summary.stage_recorded.value == "IIIC" and summary.stage is None
    assert summary.t.value == "T3"
    assert summary.metastatic_organs.value == ("brain",)
    assert summary.prior_drugs.value == frozenset({"doxorubicin", "gefitinib"})
    assert summary.prior_anthracycline.value is True
    assert not [f for f in summary.findings if f.kind is FindingKind.INVALID]


def test_stu1_medication_statement_scd_rolls_up() -> None:
    path = next(p for p in FILES if p.name.startswith("MedicationStatement"))
    (exposure,) = summarise([load(path)], today=TODAY).therapies
    assert exposure.ingredient == "gefitinib" and exposure.start == date(2019, 4, 1)
