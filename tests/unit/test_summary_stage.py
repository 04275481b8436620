"""Recorded vs computed AJCC 8 stage."""

from __future__ import annotations

from datetime import date

import pytest
from fhir_builders import AJCC, AJCC7, SNOMED, concept, grade, primary, secondary, size, stage_group, tnm

from cds_service.summary import summarise
from cds_service.summary.model import FindingKind, StageGroup

TODAY = date(2025, 1, 1)
EXTREMITY = dict(snomed="443719001", body_site="61685007")


def summary_of(*resources, **primary_fields):
    return summarise([primary(**{**EXTREMITY, **primary_fields}), *resources], today=TODAY)


def findings(summary, kind: FindingKind, about: str = "stage") -> list[str]:
    return [f.message for f in summary.findings if f.kind is kind and f.about == about]


def test_recorded_stage_from_condition_summary() -> None:
    stage = [{"summary": concept(SNOMED, "1222802001"), "type": concept(SNOMED, "897275008")}]
    summary = summary_of(stage=stage)
    assert summary.stage_recorded.value == "IIIA"
    assert summary.stage.value is StageGroup.IIIA and summary.stage.sources == ("Condition/primary",)


@pytest.mark.parametrize(
    "value,expected",
    [
        (concept(AJCC, "3B"), "IIIB"),
        (concept(AJCC, "1A"), "IA"),
        (concept(AJCC, "4"), "IV"),
        (concept(SNOMED, "2640006"), "IV"),
        ({"text": "Stage IIIA"}, "IIIA"),
    ],
)
def test_recorded_stage_value_forms(value, expected: str) -> None:
    summary = summary_of(stage_group("sg", value))
    assert summary.stage_recorded.value == expected
    assert summary.stage.value == StageGroup(expected)


def test_seventh_edition_stage_is_not_used() -> None:
    summary = summary_of(
        stage_group("sg7", {"text": "Stage III"}, edition=AJCC7), tnm("t", "T2"), tnm("m", "M0"), grade("g", "G3")
    )
    assert summary.stage_recorded is None
    assert any("7th-edition stage III" in m for m in findings(summary, FindingKind.INFO))
    assert summary.stage.value is StageGroup.IIIA and summary.stage.basis.startswith("computed")


def test_pathological_stage_beats_later_clinical() -> None:
    summary = summary_of(
        stage_group("p", "IIIB", pathological=True, date="2020-02-01"), stage_group("c", "IIIA", date="2020-05-01")
    )
    assert summary.stage_recorded.value == "IIIB" and "pathological" in summary.stage_recorded.basis


def test_latest_recorded_stage_beats_older() -> None:
    summary = summary_of(stage_group("old", "IB", date="2020-01-01"), stage_group("new", "IIIA", date="2020-06-01"))
    assert summary.stage_recorded.value == "IIIA"


def test_computed_from_tnm_and_grade() -> None:
    summary = summary_of(tnm("t", "T2"), tnm("n", "N0"), tnm("m", "M0"), grade("g", "G3"))
    assert summary.stage_computed.value is StageGroup.IIIA
    assert summary.stage.value is StageGroup.IIIA
    assert summary.stage.basis == "computed from T2 N0 M0 G3 by the AJCC 8 trunk/extremity table"
    assert {"Observation/t", "Observation/g", "Condition/primary"} <= set(summary.stage.sources)


def test_unknown_n_reads_as_n0_and_is_said() -> None:
    summary = summary_of(tnm("t", "T1"), tnm("m", "M0"), grade("g", "GX"))
    assert summary.stage.value is StageGroup.IA
    assert "N0 (none or unknown)" in summary.stage.basis


def test_unknown_m_gives_no_stage_and_names_the_staging_scan() -> None:
    summary = summary_of(tnm("t", "T1"), grade("g", "GX"))
    assert summary.stage is None and summary.m is None and summary.extent is None
    assert findings(summary, FindingKind.MISSING) == [
        "no stage recorded and T/N/M/G incomplete: M status (staging CT of the chest) missing"
    ]
    assert "M status (staging CT of the chest) not recorded" in findings(summary, FindingKind.MISSING, "extent")


@pytest.mark.parametrize(
    "cm,t,stage",
    [(5.0, "T1", "II"), (5.01, "T2", "IIIA"), (10.0, "T2", "IIIA"), (15.0, "T3", "IIIB"), (15.1, "T4", "IIIB")],
)
def test_t_derived_from_size(cm: float, t: str, stage: str) -> None:
    summary = summary_of(size("s", cm), grade("g", "G2"), tnm("m", "M0"))
    assert summary.t.value == t and "derived from tumour size" in summary.t.basis
    assert summary.stage.value == StageGroup(stage)


def test_recorded_t_beats_size() -> None:
    assert summary_of(tnm("t", "T3"), size("s", 2.0)).t.value == "T3"


@pytest.mark.parametrize("cm,t", [(2.0, "T1"), (2.1, "T2"), (4.0, "T2"), (4.1, "T3")])
def test_head_and_neck_size_bands_and_no_stage_group(cm: float, t: str) -> None:
    summary = summarise([primary(icd10="C49.0", morphology="8890/3"), size("s", cm), grade("g", "G3")], today=TODAY)
    assert summary.t.value == t
    assert summary.stage is None and summary.stage_computed is None
    assert "no AJCC stage group for this site (head-and-neck)" in findings(summary, FindingKind.INFO)


def test_visceral_has_no_stage_group() -> None:
    summary = summarise(
        [primary(snomed="443719001", body_site="69695003"), tnm("t", "T2"), grade("g", "G3")], today=TODAY
    )
    assert summary.stage is None
    assert "no AJCC stage group for this site (visceral)" in findings(summary, FindingKind.INFO)


def test_retroperitoneal_nodal_disease_is_iiib() -> None:
    summary = summary_of(tnm("n", "N1"), tnm("m", "M0"), body_site="82849001")
    assert summary.stage.value is StageGroup.IIIB


def test_recorded_and_computed_disagreeing_keeps_recorded_and_reports() -> None:
    summary = summary_of(stage_group("sg", "IIIB"), tnm("t", "T2"), grade("g", "G3"))
    assert summary.stage.value is StageGroup.IIIB
    assert summary.stage_computed.value is StageGroup.IIIA
    assert findings(summary, FindingKind.CONTRADICTION)


def test_metastasis_after_recorded_stage_makes_stage_iv_without_contradiction() -> None:
    summary = summary_of(stage_group("sg", "IIIA", date="2020-02-01"), secondary("met", onset="2021-01-01"))
    assert summary.stage.value is StageGroup.IV
    assert not findings(summary, FindingKind.CONTRADICTION)


def test_m1_observation_implies_stage_iv() -> None:
    summary = summary_of(tnm("m", "M1"), secondary("met"))
    assert summary.stage.value is StageGroup.IV


def test_missing_grade_is_named() -> None:
    summary = summary_of(tnm("t", "T2"), tnm("m", "M0"))
    assert summary.stage is None
    assert findings(summary, FindingKind.MISSING) == ["no stage recorded and T/N/M/G incomplete: grade missing"]


def test_missing_t_and_grade_are_named() -> None:
    message = findings(summary_of(tnm("m", "M0")), FindingKind.MISSING)
    assert message == ["no stage recorded and T/N/M/G incomplete: tumour size or T missing, grade missing"]


def test_non_sts_stage_group_is_kept_as_recorded_string_only() -> None:
    summary = summary_of(stage_group("sg", "IIIC"))
    assert summary.stage_recorded.value == "IIIC" and summary.stage is None
    assert findings(summary, FindingKind.INVALID)


def test_condition_stage_takes_edition_from_its_assessment_observation() -> None:
    stage = [{"summary": {"text": "Stage III"}, "assessment": [{"reference": "Observation/sg7"}]}]
    summary = summary_of(stage_group("sg7", {"text": "Stage III"}, edition=AJCC7), stage=stage)
    assert summary.stage_recorded is None
    assert not findings(summary, FindingKind.INVALID)
    assert len(findings(summary, FindingKind.INFO)) == 2


def test_recorded_stage_iv_without_metastasis_or_nodes_is_a_contradiction() -> None:
    summary = summary_of(stage_group("sg", "IV"))
    assert findings(summary, FindingKind.CONTRADICTION) and findings(summary, FindingKind.CONTRADICTION, "extent")
    assert summary.extent is None


def test_recorded_stage_iv_with_regional_nodes_is_no_contradiction() -> None:
    summary = summary_of(stage_group("sg", "IV"), tnm("n", "N1"), tnm("m", "M0"))
    assert not findings(summary, FindingKind.CONTRADICTION)
    assert summary.extent.value.value == "nodal"


def test_recorded_stage_iv_with_a_metastasis_is_no_contradiction() -> None:
    summary = summary_of(stage_group("sg", "IV"), secondary("met", onset="2024-06-01"))
    assert not findings(summary, FindingKind.CONTRADICTION) and summary.m.value == "M1"


@pytest.mark.parametrize("group", ["IA", "IB", "II", "IIIA", "IIIB"])
def test_recorded_stage_i_to_iii_implies_m0(group: str) -> None:
    summary = summary_of(stage_group("sg", group))
    assert summary.m.value == "M0" and summary.m.sources == ("Observation/sg",)
    assert summary.extent.value.value == "none"
