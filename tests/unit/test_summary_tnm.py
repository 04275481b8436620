"""T, N, M, grade and size from staging Observations."""

from __future__ import annotations

from datetime import date

import pytest
from fhir_builders import AJCC, AJCC7, LOINC, SNOMED, concept, grade, observation, primary, size, tnm

from cds_service.summary import summarise
from cds_service.summary.model import FindingKind

TODAY = date(2025, 1, 1)
PRIMARY = primary(snomed="443719001", body_site="61685007")


def summary_of(*resources):
    return summarise([PRIMARY, *resources], today=TODAY)


def test_snomed_categories_are_read() -> None:
    summary = summary_of(tnm("t", "T2"), tnm("n", "N0"), tnm("m", "M0"))
    assert (summary.t.value, summary.n.value, summary.m.value) == ("T2", "N0", "M0")
    assert summary.t.sources == ("Observation/t",)


def test_loinc_code_with_ajcc_system_values() -> None:
    t = observation("t", concept(LOINC, "21905-5"), value={"valueCodeableConcept": concept(AJCC, "cT3")})
    n = observation("n", concept(LOINC, "21900-6"), value={"valueCodeableConcept": concept(AJCC, "pN1")})
    summary = summary_of(t, n)
    assert summary.t.value == "T3" and summary.n.value == "N1"
    assert summary.n.basis.startswith("pathological")


@pytest.mark.parametrize(
    "code,expected", [("23351008", "T1"), ("67673008", "T2"), ("14410001", "T3"), ("65565005", "T4")]
)
def test_legacy_synthea_t_findings(code: str, expected: str) -> None:
    t = observation("t", concept(SNOMED, "78873005"), value={"valueCodeableConcept": concept(SNOMED, code)})
    assert summary_of(t).t.value == expected


def test_subcategory_is_reduced_to_main_category() -> None:
    t = observation("t", concept(LOINC, "21899-0"), value={"valueCodeableConcept": concept(AJCC, "pT2b")})
    assert summary_of(t).t.value == "T2"


def test_pathological_beats_later_clinical() -> None:
    summary = summary_of(tnm("pt", "T3", pathological=True, date="2020-02-01"), tnm("ct", "T2", date="2020-06-01"))
    assert summary.t.value == "T3" and summary.t.sources == ("Observation/pt",)


def test_latest_beats_older() -> None:
    summary = summary_of(tnm("old", "T2", date="2020-01-01"), tnm("new", "T3", date="2020-06-01"))
    assert summary.t.value == "T3"


def test_later_clinical_m1_beats_earlier_pathological_m() -> None:
    summary = summary_of(tnm("pm", "M1", pathological=True, date="2020-01-01"), tnm("cm", "M0", date="2020-06-01"))
    assert summary.m.sources == ("Observation/cm",)


def test_seventh_edition_t_is_not_used() -> None:
    summary = summary_of(tnm("t7", "T2", edition=AJCC7))
    assert summary.t is None
    assert any(f.kind is FindingKind.INFO and f.about == "t" for f in summary.findings)


def test_observation_focused_on_another_primary_is_ignored() -> None:
    other = primary("breast", snomed="353431000119107")
    summary = summarise([PRIMARY, other, tnm("t", "T3", focus="Condition/breast")], today=TODAY)
    assert summary.t is None


def test_unrecognised_value_is_invalid() -> None:
    t = observation("t", concept(SNOMED, "399504009"), value={"valueCodeableConcept": concept(SNOMED, "1")})
    summary = summary_of(t)
    assert summary.t is None and any(f.kind is FindingKind.INVALID for f in summary.findings)


@pytest.mark.parametrize(
    "value,expected",
    [
        (concept(SNOMED, "1663004"), "G2"),
        (concept(SNOMED, "61026006"), "G3"),
        (concept(SNOMED, "12619005"), "GX"),
        (concept(SNOMED, "1155708003"), "G1"),
        (concept(SNOMED, "1286893008"), "G2"),
        (concept(SNOMED, "1155707008"), "G3"),
        ("G2", "G2"),
        ("Grade 3", "G3"),
        ("high grade", "G3"),
        ("FNCLCC 3", "G3"),
        ("FNCLCC grade 2", "G2"),
    ],
)
def test_grade_values(value, expected: str) -> None:
    assert summary_of(grade("g", value)).grade.value == expected


def test_ncit_grade_code_is_read() -> None:
    g = observation(
        "g",
        concept("http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl", "C18000"),
        value={"valueCodeableConcept": concept(SNOMED, "61026006")},
    )
    assert summary_of(g).grade.value == "G3"


def test_latest_grade_wins() -> None:
    summary = summary_of(grade("g1", "G1", date="2020-01-01"), grade("g3", "G3", date="2020-05-01"))
    assert summary.grade.value == "G3"


@pytest.mark.parametrize("amount,unit,cm", [(7.5, "cm", 7.5), (75, "mm", 7.5)])
def test_size_in_cm_or_mm(amount: float, unit: str, cm: float) -> None:
    assert summary_of(size("s", amount, unit)).tumour_size_cm.value == cm


def test_size_as_value_quantity() -> None:
    s = observation("s", concept(LOINC, "21889-1"), value={"valueQuantity": {"value": 12, "unit": "cm", "code": "cm"}})
    assert summary_of(s).tumour_size_cm.value == 12


def test_the_size_of_a_metastasis_never_sets_the_primary_size() -> None:
    from fhir_builders import secondary

    nodule = size("nodule", 3.0, date="2024-06-01", focus="Condition/lung")
    summary = summary_of(secondary("lung", onset="2024-05-01"), nodule, size("primary-size", 12.0, date="2020-02-01"))
    assert summary.tumour_size_cm.value == 12.0 and summary.tumour_size_cm.sources == ("Observation/primary-size",)


@pytest.mark.parametrize("measured,used", [("2020-02-28", True), ("2020-03-01", True), ("2020-03-02", False)])
def test_a_size_measured_after_treatment_began_never_sets_t(measured: str, used: bool) -> None:
    from fhir_builders import RXNORM, med_statement

    doxorubicin = med_statement("dox", concept(RXNORM, "3639"), start="2020-03-01")
    summary = summary_of(doxorubicin, size("s", 4.0, date=measured))
    assert (summary.tumour_size_cm is not None) is used


@pytest.mark.parametrize(
    "measured,status,used",
    [
        ("2020-02-28", "completed", True),
        ("2020-03-01", "completed", True),
        ("2020-03-02", "completed", False),
        ("2020-03-02", "in-progress", False),
        ("2020-03-02", "not-done", True),
    ],
)
def test_a_size_measured_after_radiotherapy_to_the_primary_began_never_sets_t(
    measured: str, status: str, used: bool
) -> None:
    from fhir_builders import radiotherapy

    preoperative = radiotherapy("rt", start="2020-03-01", end="2020-04-05", status=status, reason="Condition/primary")
    summary = summary_of(preoperative, size("s", 4.0, date=measured))
    assert (summary.tumour_size_cm is not None) is used


def test_radiotherapy_to_a_metastasis_does_not_stop_the_primary_size_setting_t() -> None:
    from fhir_builders import radiotherapy, secondary

    to_the_lung = radiotherapy("rt", start="2020-03-01", reason="Condition/lung")
    summary = summary_of(secondary("lung", onset="2020-02-15"), to_the_lung, size("s", 4.0, date="2020-03-02"))
    assert summary.tumour_size_cm.value == 4.0


def test_a_post_treatment_y_category_is_kept_apart_from_the_pre_treatment_stage() -> None:
    ypt = observation("ypt", concept(LOINC, "21899-0"), value={"valueCodeableConcept": concept(AJCC, "ypT1")})
    summary = summary_of(ypt, tnm("t", "T3", date="2019-12-01"))
    assert summary.t.value == "T3"
    assert any(f.kind is FindingKind.INFO and "post-treatment" in f.message for f in summary.findings)


def test_nodes_found_at_restaging_beat_an_earlier_pathological_n0() -> None:
    summary = summary_of(tnm("pn", "N0", pathological=True, date="2020-02-01"), tnm("cn", "N1", date="2021-05-01"))
    assert summary.n.value == "N1" and summary.n.sources == ("Observation/cn",)


# --- Each category in full (value, source, how it was read, date), and every reading set aside -------


def provenance(fact) -> tuple:
    return (fact.value, fact.sources, fact.basis, fact.when)


def found(summary, about: str) -> set[tuple]:
    return {(f.kind, f.message, f.sources) for f in summary.findings if f.about == about}


def valued(id: str, code: str, value: dict) -> dict:
    """An Observation of a TNM category code (SNOMED) with the given value[x] element."""
    return observation(id, concept(SNOMED, code), value=value, method="897275008")


def test_categories_in_full_say_clinical_or_pathological_and_the_edition() -> None:
    summary = summary_of(
        tnm("t", "T3", pathological=True, date="2020-03-01"), tnm("n", "N0", edition=None), tnm("m", "M0")
    )
    assert provenance(summary.t) == (
        "T3",
        ("Observation/t",),
        "pathological T3 (AJCC 8th edition)",
        date(2020, 3, 1),
    )
    assert provenance(summary.n) == (
        "N0",
        ("Observation/n",),
        "clinical N0 (AJCC edition not stated)",
        date(2020, 2, 1),
    )
    assert provenance(summary.m) == ("M0", ("Observation/m",), "clinical M0 (AJCC 8th edition)", date(2020, 2, 1))


@pytest.mark.parametrize(
    "letter,code,wrong",
    [("T", "399504009", "1229973008"), ("N", "399534004", "1228929004"), ("M", "399387003", "1229967007")],
)
def test_an_unreadable_category_is_named_and_an_older_reading_is_used(letter: str, code: str, wrong: str) -> None:
    """The newest reading holds another letter's value (an N1 code as T ...): set aside, not stopped at."""
    newest = valued("new", code, {"valueCodeableConcept": concept(SNOMED, wrong)})
    newest["effectiveDateTime"] = "2020-06-01"
    older = tnm("old", f"{letter}1", date="2020-02-01")
    summary = summary_of(newest, older)
    assert getattr(summary, letter.lower()).value == f"{letter}1"
    assert (FindingKind.INVALID, f"unrecognised {letter} value; ignored", ("Observation/new",)) in found(
        summary, letter.lower()
    )


def test_a_seventh_edition_t_is_named_and_an_older_eighth_edition_t_is_used() -> None:
    summary = summary_of(tnm("t7", "T2", edition=AJCC7, date="2020-06-01"), tnm("t8", "T3", date="2020-02-01"))
    assert summary.t.value == "T3"
    assert found(summary, "t") == {
        (FindingKind.INFO, "T2 by AJCC 7th edition not used as an AJCC 8th-edition T", ("Observation/t7",))
    }


def test_a_post_treatment_category_in_text_is_kept_apart_and_named() -> None:
    ypt = valued("ypt", "399504009", {"valueString": "ypT1"})
    summary = summary_of(ypt, tnm("t", "T3", date="2019-12-01"))
    assert summary.t.value == "T3"
    assert found(summary, "t") == {
        (FindingKind.INFO, "post-treatment (y) T1 kept apart from the pre-treatment stage", ("Observation/ypt",))
    }


@pytest.mark.parametrize(
    "code,text,expected",
    [
        ("399504009", "pT2 N0 M0", "T2"),  # the T of a TNM string
        ("399534004", "T2 N1 M0", "N1"),  # the N of it
        ("399387003", "cT2 cN0 cM1", "M1"),
        ("399504009", "tx", "TX"),
        ("399504009", "Tis", "Tis"),
    ],
)
def test_categories_are_read_from_text(code: str, text: str, expected: str) -> None:
    summary = summary_of(valued("o", code, {"valueCodeableConcept": {"text": text}}))
    assert getattr(summary, expected[0].lower()).value == expected


def test_nx_reads_as_n0_and_says_so() -> None:
    summary = summary_of(valued("n", "399534004", {"valueCodeableConcept": {"text": "NX"}}))
    assert provenance(summary.n) == (
        "N0",
        ("Observation/n",),
        "clinical NX (AJCC 8th edition): NX read as N0 (AJCC 8 has no NX for STS)",
        date(2020, 2, 1),
    )


def test_mx_is_no_m_status_and_says_so() -> None:
    summary = summary_of(valued("m", "399387003", {"valueCodeableConcept": {"text": "MX"}}))
    assert summary.m is None
    assert (FindingKind.INFO, "MX is not an AJCC 8 category; M treated as unknown", ("Observation/m",)) in found(
        summary, "m"
    )


def test_grade_in_full_and_an_unreadable_grade_named() -> None:
    summary = summary_of(grade("bad", "moderately pleomorphic", date="2020-06-01"), grade("g", "G3"))
    assert provenance(summary.grade) == ("G3", ("Observation/g",), "histologic grade G3 recorded", date(2020, 2, 1))
    assert found(summary, "grade") == {(FindingKind.INVALID, "unrecognised grade value; ignored", ("Observation/bad",))}


@pytest.mark.parametrize("score,expected", [(0, None), (1, "G1"), (2, "G2"), (3, "G3"), (4, "G3"), (5, None)])
def test_grade_as_an_integer_1_to_4_with_four_tier_4_read_as_3(score: int, expected: str | None) -> None:
    found_grade = summary_of(observation("g", concept(LOINC, "21858-6"), value={"valueInteger": score})).grade
    assert (found_grade.value if found_grade else None) == expected


def test_size_in_full_rounded_to_a_tenth_of_a_millimetre() -> None:
    summary = summary_of(size("s", 7.456))
    assert provenance(summary.tumour_size_cm) == (
        7.46,
        ("Observation/s",),
        "greatest tumour dimension recorded",
        date(2020, 2, 1),
    )


@pytest.mark.parametrize(
    "quantity,cm",
    [
        ({"value": 0.4, "unit": "cm", "code": "cm"}, 0.4),
        ({"value": 25, "unit": "mm"}, 2.5),  # unit without a UCUM code
        ({"value": 4.5, "unit": "in", "code": "[in_i]"}, 11.43),  # inches
        ({"value": 0.06, "unit": "m", "code": "m"}, 6.0),
        ({"value": 3, "unit": "[ft_i]", "code": "[ft_i]"}, None),  # not a unit a size is given in
        ({"value": 0, "unit": "cm", "code": "cm"}, None),  # no size
        ({"unit": "cm", "code": "cm"}, None),  # no value
    ],
)
def test_size_units_and_unusable_sizes(quantity: dict, cm: float | None) -> None:
    component = {"code": concept(LOINC, "33728-7"), "valueQuantity": quantity}
    summary = summary_of(observation("s", concept(LOINC, "21889-1"), value={"component": [component]}))
    assert (summary.tumour_size_cm.value if summary.tumour_size_cm else None) == cm
    if cm is None:
        assert found(summary, "tumour_size_cm") == {
            (FindingKind.INVALID, "no size in a unit of length; ignored", ("Observation/s",))
        }


def test_a_size_without_a_quantity_is_named_unusable() -> None:
    component = {"code": concept(LOINC, "33728-7")}
    summary = summary_of(observation("s", concept(LOINC, "21889-1"), value={"component": [component]}))
    assert summary.tumour_size_cm is None and found(summary, "tumour_size_cm")


def test_a_size_of_the_primary_itself_sets_its_size() -> None:
    summary = summary_of(size("s", 6.0, focus="Condition/primary"))
    assert summary.tumour_size_cm.value == 6.0 and summary.t.value == "T2"


def test_a_reading_about_both_the_sarcoma_and_another_primary_is_used() -> None:
    other = primary("breast", snomed="353431000119107")
    both = tnm("t", "T3")
    both["focus"] = [{"reference": "Condition/primary"}, {"reference": "Condition/breast"}]
    assert summarise([PRIMARY, other, both], today=TODAY).t.value == "T3"


def _panel(status: str = "final", **fields: object) -> dict[str, object]:
    """A TNM clinical staging panel (LOINC 75620-5) whose T, N, M and stage group are components."""
    parts = [("21905-5", "cT3"), ("21906-3", "cN0"), ("21907-1", "cM0"), ("21908-9", "IIIB")]
    components = [{"code": concept(LOINC, code), "valueCodeableConcept": concept(AJCC, value)} for code, value in parts]
    return observation("panel", concept(LOINC, "75620-5"), value={"component": components}, status=status, **fields)


def test_a_staging_panel_gives_its_components_as_t_n_m_and_stage() -> None:
    s = summarise([primary(snomed="443719001", body_site="61685007"), _panel(), grade("g", "G3")], today=TODAY)
    assert (s.t.value, s.n.value, s.m.value) == ("T3", "N0", "M0")
    assert s.t.sources == s.m.sources == ("Observation/panel",)
    assert s.stage is not None and s.stage.value.value == "IIIB"


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled"])
def test_a_staging_panel_entered_in_error_gives_nothing(status: str) -> None:
    s = summarise([primary(snomed="443719001", body_site="61685007"), _panel(status)], today=TODAY)
    assert s.t is None and s.m is None


def test_an_invalid_staging_panel_is_not_read_and_is_reported() -> None:
    broken = _panel(effectiveDateTime="not a date")
    s = summarise([primary(snomed="443719001", body_site="61685007"), broken], today=TODAY)
    assert s.m is None and any("Observation/panel" in f.sources for f in s.findings)


@pytest.mark.parametrize(
    ("site", "read"),
    [
        ({"coding": [{"system": SNOMED, "code": "10200004", "display": "Liver structure"}]}, False),  # a haemangioma
        ({"text": "Right lung"}, False),
        ({"text": "Left thigh"}, True),  # the primary's region: no organ named
        ({"text": "Subcutaneous soft tissue"}, True),
    ],
)
def test_a_size_measured_in_another_organ_is_not_the_primarys(site: dict, read: bool) -> None:
    """A 21 mm liver lesion beside a thigh sarcoma must not set its T (R1)."""
    summary = summary_of(size("sz", 2.1, bodySite=site))
    assert (summary.tumour_size_cm is not None) is read
