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
    ("stage", "read"),
    [
        ({"summary": {"text": "Enneking stage III"}, "type": {"text": "MSTS (Enneking) surgical staging"}}, False),
        ({"summary": {"text": "Stage III"}, "type": {"text": "MSTS surgical staging"}}, False),
        ({"summary": {"text": "Stage III"}, "type": {"text": "AJCC 8th edition"}}, True),
    ],
)
def test_a_stage_of_another_staging_system_is_not_an_ajcc_stage(stage: dict, read: bool) -> None:
    """Enneking's stage III is metastatic disease: read as AJCC III it would be taken for M0 (R1)."""
    summary = summary_of(stage=[stage])
    assert (summary.stage_recorded is not None) is read


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


@pytest.mark.parametrize(
    ("recorded", "findings_on", "used", "contradiction"),
    [
        ("IB", "2020-03-01", StageGroup.IIIA, False),  # pT2 G3 at resection after a clinical IB: upstaged
        ("IB", "2020-02-01", StageGroup.IB, True),  # the same day: which is right cannot be told
        ("IB", "2020-01-31", StageGroup.IB, True),  # older findings do not supersede a later stage
        ("IIIB", "2020-03-01", StageGroup.IIIB, True),  # lower from later findings (after neoadjuvant): not taken
    ],
)
def test_a_higher_stage_from_t_and_grade_recorded_after_the_stage_supersedes_it(
    recorded: str, findings_on: str, used: StageGroup, contradiction: bool
) -> None:
    summary = summary_of(
        stage_group("sg", recorded, date="2020-02-01"),
        tnm("t", "T2", pathological=True, date=findings_on),
        tnm("m", "M0", date="2020-02-01"),
        grade("g", "G3", date=findings_on),
    )
    assert summary.stage_computed.value is StageGroup.IIIA
    assert summary.stage.value is used
    assert bool(findings(summary, FindingKind.CONTRADICTION)) is contradiction


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


# --- The stage used, in full: which record it rests on, how it was obtained, and what disagrees -------


def provenance(fact) -> tuple:
    return (fact.value, fact.sources, fact.basis, fact.when)


def found(summary, about: str = "stage") -> set[tuple]:
    return {(f.kind, f.message, f.sources) for f in summary.findings if f.about == about}


TNM_RECORDS = ("Condition/primary", "Observation/g", "Observation/m", "Observation/s")


def test_a_recorded_stage_is_used_as_recorded() -> None:
    summary = summary_of(stage_group("sg", "IIIA", date="2020-03-01"))
    recorded = ("IIIA", ("Observation/sg",), "recorded (clinical, AJCC 8th)", date(2020, 3, 1))
    assert provenance(summary.stage_recorded) == recorded
    assert provenance(summary.stage) == (StageGroup.IIIA, *recorded[1:])


def test_a_recorded_stage_the_tnm_disagrees_with_is_kept_and_the_disagreement_named() -> None:
    summary = summary_of(stage_group("sg", "II", date="2020-03-01"), size("s", 7.0), grade("g", "G3"), tnm("m", "M0"))
    assert provenance(summary.stage) == (
        StageGroup.II,
        ("Observation/sg",),
        "recorded (clinical, AJCC 8th)",
        date(2020, 3, 1),
    )
    computed = "computed from T2 N0 M0 G3 by the AJCC 8 trunk/extremity table; N0 (none or unknown)"
    assert provenance(summary.stage_computed) == (StageGroup.IIIA, TNM_RECORDS, computed, None)
    assert found(summary) == {
        (FindingKind.CONTRADICTION, f"recorded stage II but IIIA {computed}", (*TNM_RECORDS, "Observation/sg"))
    }


@pytest.mark.parametrize("recorded_on", ["2021-01-01", "2021-06-01"])  # the day of the metastasis, or after it
def test_m1_with_a_recorded_stage_from_that_day_or_later_is_stage_iv_and_a_contradiction(recorded_on: str) -> None:
    summary = summary_of(stage_group("sg", "IIIA", date=recorded_on), secondary("lung", onset="2021-01-01"))
    computed = "computed from N0 M1 by the AJCC 8 trunk/extremity table; N0 (none or unknown), T and grade not known"
    assert provenance(summary.stage) == (StageGroup.IV, ("Condition/lung", "Condition/primary"), computed, None)
    assert found(summary) == {
        (
            FindingKind.CONTRADICTION,
            f"recorded stage IIIA but IV {computed}",
            ("Condition/lung", "Condition/primary", "Observation/sg"),
        )
    }


def test_a_recorded_stage_older_than_the_first_metastasis_gives_way_to_iv_without_contradiction() -> None:
    summary = summary_of(stage_group("sg", "IIIA", date="2020-12-31"), secondary("lung", onset="2021-01-01"))
    assert summary.stage.value is StageGroup.IV and summary.stage.basis.startswith("computed")
    assert found(summary) == {
        (FindingKind.INFO, "recorded stage IIIA predates the first metastasis; IV used", ("Observation/sg",))
    }


def test_stage_iv_without_metastasis_or_nodes_names_the_contradiction_for_stage_and_extent() -> None:
    summary = summary_of(stage_group("sg", "IV", date="2020-06-01"))
    message = "stage IV recorded, but no metastasis and no regional node involvement is recorded"
    assert (FindingKind.CONTRADICTION, message, ("Observation/sg",)) in found(summary)
    assert (FindingKind.CONTRADICTION, message, ("Observation/sg",)) in found(summary, "extent")


def test_a_recorded_stage_that_is_no_sts_group_is_named_invalid() -> None:
    summary = summary_of(stage_group("sg", {"text": "Stage IIIC"}))
    assert (
        FindingKind.INVALID,
        "recorded stage IIIC is not an AJCC 8 soft tissue sarcoma stage group",
        ("Observation/sg",),
    ) in found(summary)


def test_an_unreadable_stage_value_is_invalid_and_not_used() -> None:
    summary = summary_of(stage_group("sg", {"text": "see pathology report"}))
    assert summary.stage_recorded is None
    assert (FindingKind.INVALID, "unrecognised stage value; ignored", ("Observation/sg",)) in found(summary)


def test_a_site_without_stage_groups_says_so_citing_the_site() -> None:
    summary = summarise([primary(icd10="C49.0", morphology="8890/3"), size("s", 3), grade("g", "G3")], today=TODAY)
    assert found(summary) == {
        (FindingKind.INFO, "no AJCC stage group for this site (head-and-neck)", ("Condition/primary",))
    }


def test_a_t_category_outside_the_table_cannot_be_grouped_and_is_named() -> None:
    summary = summary_of(tnm("t", "TX"), tnm("m", "M0"), grade("g", "G1"))
    assert summary.stage is None
    assert found(summary) == {
        (FindingKind.MISSING, "no stage recorded and T/N/M/G incomplete: TX cannot be grouped", ("Condition/primary",))
    }


def test_recorded_nodes_are_not_called_assumed() -> None:
    summary = summary_of(tnm("t", "T2"), tnm("n", "N0"), tnm("m", "M0"), grade("g", "G3"))
    assert summary.stage.basis == "computed from T2 N0 M0 G3 by the AJCC 8 trunk/extremity table"


def test_on_the_same_day_a_stage_group_beats_a_bare_roman_stage_and_a_stated_8th_edition_beats_none() -> None:
    bare = summary_of(
        stage_group("a", "IA", date="2020-03-01"), stage_group("b", {"text": "Stage I"}, date="2020-03-01")
    )
    assert bare.stage_recorded.value == "IA"
    stated = summary_of(
        stage_group("a", "IIIA", date="2020-03-01"), stage_group("b", "IIIB", date="2020-03-01", edition=None)
    )
    assert stated.stage_recorded.value == "IIIA" and stated.stage_recorded.basis == "recorded (clinical, AJCC 8th)"


def test_the_edition_of_a_condition_stage_comes_from_its_type() -> None:
    eighth = summary_of(stage=[{"summary": concept(SNOMED, "1222802001"), "type": concept(SNOMED, "897275008")}])
    assert eighth.stage_recorded.basis == "recorded (clinical, AJCC 8th)"
    seventh = summary_of(stage=[{"summary": concept(SNOMED, "1222802001"), "type": concept(SNOMED, AJCC7)}])
    assert seventh.stage_recorded is None
    assert (
        FindingKind.INFO,
        "AJCC 7th-edition stage IIIA recorded; not used as an AJCC 8th-edition stage",
        ("Condition/primary",),
    ) in found(seventh)


@pytest.mark.parametrize("code,expected", [("IIIB", "IIIB"), ("IV", "IV"), ("stage IA", "IA")])
def test_roman_stage_codes_of_any_system_are_read(code: str, expected: str) -> None:
    assert summary_of(stage_group("sg", concept("http://example.org/stage", code))).stage_recorded.value == expected


def test_a_stage_written_as_a_string_is_read() -> None:
    written = stage_group("sg", {"text": "unused"})
    del written["valueCodeableConcept"]
    written["valueString"] = "Stage IIIA"
    assert summary_of(written).stage_recorded.value == "IIIA"


def test_an_unreadable_stage_observation_does_not_hide_a_readable_older_one() -> None:
    summary = summary_of(
        stage_group("new", {"text": "see report"}, date="2020-06-01"), stage_group("old", "IB", date="2020-03-01")
    )
    assert summary.stage_recorded.value == "IB" and summary.stage_recorded.sources == ("Observation/old",)


def test_a_condition_stage_is_dated_by_its_assessment_then_recorded_date_then_onset() -> None:
    assessed = summary_of(
        stage_group("sgp", "IIIB", pathological=True, date="2020-05-01"),
        stage=[{"summary": concept(SNOMED, "1222805004"), "assessment": [{"reference": "Observation/sgp"}]}],
        recordedDate="2020-04-01",
    )
    assert assessed.stage_recorded.basis == "recorded (pathological, AJCC 8th)"
    assert assessed.stage_recorded.when == date(2020, 5, 1)
    recorded = summary_of(
        stage=[{"summary": {"text": "pending"}}, {"summary": concept(SNOMED, "1222802001")}], recordedDate="2020-04-01"
    )
    assert provenance(recorded.stage_recorded) == (
        "IIIA",
        ("Condition/primary",),
        "recorded (clinical, edition not stated, read as AJCC 8th)",
        date(2020, 4, 1),
    )
    onset = summary_of(stage=[{"summary": concept(SNOMED, "1222802001")}], onset="2020-01-15")
    assert onset.stage_recorded.when == date(2020, 1, 15)


def test_a_condition_stage_typed_pathological_is_pathological() -> None:
    typed = summary_of(stage=[{"summary": concept(SNOMED, "1222802001"), "type": concept(SNOMED, "399588009")}])
    assert typed.stage_recorded.basis.startswith("recorded (pathological")


def test_a_recorded_stage_implies_m0_in_full() -> None:
    summary = summary_of(stage_group("sg", "IIIA", date="2020-03-01"))
    assert provenance(summary.m) == ("M0", ("Observation/sg",), "implied by the recorded stage IIIA", date(2020, 3, 1))
    assert not found(summary)  # the stage is known: nothing is missing


def test_t_derived_from_size_in_full() -> None:
    summary = summary_of(size("s", 7.0, date="2020-02-10"))
    assert provenance(summary.t) == (
        "T2",
        ("Observation/s", "Condition/primary"),
        "derived from tumour size 7 cm (extremity size bands, AJCC 8)",
        date(2020, 2, 10),
    )


def test_a_recorded_stage_at_a_site_without_groups_is_set_aside_and_named() -> None:
    summary = summarise([primary(icd10="C49.0", morphology="8890/3"), stage_group("sg", "II")], today=TODAY)
    assert summary.stage is None and summary.stage_recorded.value == "II"
    assert (
        FindingKind.INFO,
        "recorded stage II not used: AJCC 8 has no soft tissue sarcoma stage group for this site (head-and-neck)",
        ("Observation/sg",),
    ) in found(summary)


def test_an_unusable_recorded_stage_and_incomplete_tnm_name_both() -> None:
    summary = summary_of(stage_group("sg", {"text": "Stage IIIC"}), tnm("m", "M0"))
    assert (
        FindingKind.MISSING,
        "recorded stage IIIC unusable and T/N/M/G incomplete: tumour size or T missing, grade missing",
        ("Condition/primary",),
    ) in found(summary)


def test_an_unknown_site_class_is_named_as_what_stops_the_stage() -> None:
    summary = summarise([primary(snomed="443719001"), tnm("t", "T2"), tnm("m", "M0"), grade("g", "G3")], today=TODAY)
    assert (
        FindingKind.MISSING,
        "no stage recorded and T/N/M/G incomplete: primary site class unknown",
        ("Condition/primary",),
    ) in found(summary)


def test_a_condition_stage_takes_its_date_from_the_assessment_before_the_recorded_date() -> None:
    """The assessment is a 7th-edition Observation (itself set aside); the stage's type says 8th edition."""
    summary = summary_of(
        stage_group("sg7", {"text": "Stage III"}, edition=AJCC7, date="2020-05-01"),
        stage=[
            {
                "summary": concept(SNOMED, "1222802001"),
                "type": concept(SNOMED, "897275008"),
                "assessment": [{"reference": "Observation/sg7"}],
            }
        ],
        recordedDate="2020-04-01",
    )
    assert summary.stage_recorded.sources == ("Condition/primary",)
    assert summary.stage_recorded.when == date(2020, 5, 1)


def test_a_stage_without_metastasis_recorded_after_a_metastasis_puts_stage_and_extent_in_doubt() -> None:
    lung = secondary("lung", onset="2021-01-01")
    after = summary_of(lung, stage_group("sg", "IA", date="2021-06-01"))
    doubted = {f.about for f in after.findings if f.kind is FindingKind.CONTRADICTION}
    assert {"stage", "extent"} <= doubted
    before = summary_of(lung, stage_group("sg", "IA", date="2020-06-01"))
    assert not any(f.kind is FindingKind.CONTRADICTION for f in before.findings)


T2, N0, M0, M1, G3 = (
    tnm("t", "T2", date="2021-01-01"),
    tnm("n", "N0", date="2021-01-01"),
    tnm("m", "M0", date="2021-01-01"),
    tnm("m", "M1", date="2021-01-01"),
    grade("g", "G3", date="2021-01-01"),
)
STAGE_MISSING = "no stage recorded and T/N/M/G incomplete: "


@pytest.mark.parametrize(
    "resources,group,basis",
    [
        ((T2, N0, M0, G3), "IIIA", "computed from T2 N0 M0 G3 by the AJCC 8 trunk/extremity table"),
        ((T2, M0, G3), "IIIA", "computed from T2 N0 M0 G3 by the AJCC 8 trunk/extremity table; N0 (none or unknown)"),
        (
            (M1,),
            "IV",
            "computed from N0 M1 by the AJCC 8 trunk/extremity table; N0 (none or unknown), T and grade not known",
        ),
        (
            (T2, M1),
            "IV",
            "computed from T2 N0 M1 by the AJCC 8 trunk/extremity table; N0 (none or unknown), grade not known",
        ),
        ((T2, M0), None, STAGE_MISSING + "grade missing"),
        ((M0, G3), None, STAGE_MISSING + "tumour size or T missing"),
        ((T2,), None, STAGE_MISSING + "M status (staging CT of the chest) missing, grade missing"),
    ],
)
def test_a_computed_stage_says_what_it_was_computed_from_and_what_was_missing(
    resources: tuple, group: str | None, basis: str
) -> None:
    summary = summary_of(*resources)
    if group is None:
        assert summary.stage is None and findings(summary, FindingKind.MISSING) == [basis]
    else:
        assert (summary.stage.value, summary.stage.basis) == (StageGroup(group), basis)
        cited = {"Condition/primary", *(f"Observation/{r['id']}" for r in resources)}
        assert summary.stage.sources == tuple(sorted(cited))


def test_a_recorded_non_iv_stage_after_a_metastasis_contradicts_the_stage_and_the_extent() -> None:
    summary = summarise(
        [primary(icd10="C49.9", morphology="8890/3"), M1, stage_group("sg", "II", date="2021-02-01")], today=TODAY
    )
    said = "recorded stage II (no distant metastasis) dated on or after a recorded metastasis"
    for about in ("stage", "extent"):
        assert findings(summary, FindingKind.CONTRADICTION, about) == [said]
    cited = {f.sources for f in summary.findings if f.kind is FindingKind.CONTRADICTION}
    assert cited == {("Observation/m", "Observation/sg")}


def test_dfsp_gets_no_ajcc_stage_even_with_lung_metastases_and_a_recorded_stage() -> None:
    summary = summarise(
        [primary(snomed="276799004", body_site="22943007"), secondary("met"), stage_group("sg", "IV")], today=TODAY
    )
    assert summary.stage is None and summary.stage_computed is None
    assert summary.extent is not None and summary.extent.value.value == "lung-only"
    assert any("does not stage this histology" in m for m in findings(summary, FindingKind.INFO))


def test_a_metastatic_leiomyosarcoma_at_the_same_site_is_stage_iv() -> None:
    summary = summarise([primary(snomed="443719001", body_site="22943007"), secondary("met")], today=TODAY)
    assert summary.stage is not None and summary.stage.value is StageGroup.IV


@pytest.mark.parametrize(
    ("location", "related", "stage"),
    [
        ("39607008", None, StageGroup.IIIB),  # the 8 mm size is of a lung nodule: the 16.5 cm primary sets T4
        ("61685007", None, StageGroup.II),  # a thigh tumour: the latest size, 8 mm (T1), counts
        ("61685007", "Condition/met", StageGroup.IIIB),  # the Tumor of another condition
        (None, None, None),  # the BodyStructure is not on record: which is the primary is not known
    ],
)
def test_a_size_focused_on_an_mcode_tumor_is_the_primarys_only_when_that_tumor_is(
    location: str | None, related: str | None, stage: StageGroup | None
) -> None:
    tumours = [{"resourceType": "BodyStructure", "id": "t1", "patient": {"reference": "Patient/p1"}}]
    if location:
        tumours[0]["location"] = concept(SNOMED, location)
    if related:
        url = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-related-condition"
        tumours[0]["extension"] = [{"url": url, "valueReference": {"reference": related}}]
    big = size("s1", 16.5, date="2024-10-01", focus="BodyStructure/t0")
    small = size("s2", 0.8, date="2024-11-01", focus="BodyStructure/t1")
    primary_tumour = {
        "resourceType": "BodyStructure",
        "id": "t0",
        "patient": {"reference": "Patient/p1"},
        "location": concept(SNOMED, "61685007"),
    }
    chart = [big, small, tnm("m", "M0"), grade("g", "G3"), primary_tumour, *(tumours if location else [])]
    summary = summary_of(*chart)
    assert (summary.stage.value if summary.stage else None) is stage


@pytest.mark.parametrize(("radiotherapy", "stage"), [("2020-02-15", StageGroup.II), (None, StageGroup.IIIA)])
def test_a_t_recorded_after_radiotherapy_began_does_not_raise_the_stage(
    radiotherapy: str | None, stage: StageGroup
) -> None:
    """Stage II (T1 G3) recorded; a cT2 on the restaging scan after preoperative radiotherapy is a
    post-treatment finding (swelling, bleeding), not the tumour's stage."""
    from fhir_builders import radiotherapy as rt

    chart = [stage_group("sg", "II", date="2020-02-01"), tnm("t", "T2", date="2020-04-01"), tnm("m", "M0")]
    chart += [grade("g", "G3", date="2020-02-01")]
    if radiotherapy:
        chart.append(rt("rt", start=radiotherapy, end="2020-03-20", reason="Condition/primary"))
    assert summary_of(*chart).stage.value is stage
