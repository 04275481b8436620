"""Metastatic extent, organs, timing and local recurrence (S15-S20)."""

from __future__ import annotations

from datetime import date

import pytest
from fhir_builders import (
    SNOMED,
    concept,
    condition,
    disease_status,
    excision,
    margin,
    observation,
    primary,
    secondary,
    stage_group,
    tnm,
)

from cds_service.summary import summarise
from cds_service.summary.model import Extent, FindingKind, MetastasisTiming

TODAY = date(2025, 1, 1)
PRIMARY = primary(snomed="443719001", body_site="61685007", onset="2020-01-01")


def summary_of(*resources, months: float = 3.0):
    return summarise([PRIMARY, *resources], today=TODAY, synchronous_months=months)


def test_no_metastasis_is_extent_none() -> None:
    summary = summary_of(tnm("m", "M0"))
    assert summary.extent.value is Extent.NONE and summary.metastatic_organs.value == ()


def test_regional_nodes_only_is_nodal() -> None:
    for resources in ([tnm("n", "N1")], [secondary("nodes", icd10="C77.4")]):
        summary = summary_of(*resources, tnm("m", "M0"))
        assert summary.extent.value is Extent.NODAL and summary.n.value == "N1" and summary.m.value == "M0"


def test_regional_nodes_without_m_status_leave_the_extent_unknown() -> None:
    summary = summary_of(tnm("n", "N1"))
    assert summary.extent is None and summary.m is None
    assert any(f.kind is FindingKind.MISSING and "staging CT of the chest" in f.message for f in summary.findings)


def test_no_m_status_is_unknown_extent_not_none() -> None:
    summary = summary_of()
    assert summary.extent is None and summary.m is None


def test_an_m0_older_than_a_local_recurrence_needs_restaging() -> None:
    recurrence = condition("rec", concept(SNOMED, "25173007", "Recurrent tumor"), onset="2022-01-01")
    older = summary_of(tnm("m", "M0", date="2021-12-31"), recurrence)
    assert older.m is None and older.extent is None
    assert any("restaging needed" in f.message for f in older.findings)
    newer = summary_of(tnm("m", "M0", date="2022-01-02"), recurrence)
    assert newer.m.value == "M0"


def test_lung_only() -> None:
    summary = summary_of(secondary("lung"))
    assert summary.extent.value is Extent.LUNG_ONLY
    assert summary.metastatic_organs.value == ("lung",) and summary.m.value == "M1"


def test_single_non_lung_organ_is_limited() -> None:
    summary = summary_of(secondary("liver", snomed="94381002"))
    assert summary.extent.value is Extent.LIMITED and summary.metastatic_organs.value == ("liver",)


def test_lung_and_pleura_are_two_organs() -> None:
    summary = summary_of(secondary("lung"), secondary("pleura", icd10="C78.2"))
    assert summary.extent.value is Extent.DISSEMINATED
    assert summary.metastatic_organs.value == ("lung", "pleura")


def test_regional_nodes_are_not_an_organ_but_lung_with_nodes_is_not_lung_only() -> None:
    summary = summary_of(secondary("lung"), secondary("nodes", icd10="C77.4"))
    assert summary.metastatic_organs.value == ("lung",) and summary.n.value == "N1"
    assert summary.extent.value is Extent.DISSEMINATED  # more than one site: not lung-only, nor limited (R5)
    assert summary_of(secondary("lung")).extent.value is Extent.LUNG_ONLY


def test_inactive_metastasis_does_not_count() -> None:
    summary = summary_of(secondary("lung", clinical="resolved"), tnm("m", "M0"))
    assert summary.extent.value is Extent.NONE


def test_m1_without_organ_is_distant_with_its_organs_in_doubt() -> None:
    summary = summary_of(tnm("m", "M1"))
    assert summary.extent.value is Extent.DISTANT and summary.metastatic_organs is None
    assert any(f.kind is FindingKind.AMBIGUOUS and f.about == "metastatic_organs" for f in summary.findings)


def test_a_metastasis_without_coded_organ_leaves_limited_or_disseminated_open_unless_two_organs_known() -> None:
    one_known = summary_of(secondary("lung"), secondary("nos", snomed="128462008"))
    assert one_known.extent.value is Extent.DISTANT and one_known.metastatic_organs.value == ("lung",)
    assert any(f.kind is FindingKind.AMBIGUOUS and f.about == "metastatic_organs" for f in one_known.findings)
    both = summary_of(secondary("lung"), secondary("liver", snomed="94381002"), secondary("nos", snomed="128462008"))
    assert both.extent.value is Extent.DISSEMINATED
    assert not any(f.about == "metastatic_organs" for f in both.findings)


def test_secondary_organ_from_body_site() -> None:
    met = secondary("nos", snomed="128462008", body_site=[concept(SNOMED, "10200004")])
    assert summary_of(met).metastatic_organs.value == ("liver",)


def test_synchronous_within_threshold() -> None:
    summary = summary_of(secondary("lung", onset="2020-03-15"))
    assert summary.metastasis_timing.value is MetastasisTiming.SYNCHRONOUS
    assert summary.disease_free_interval_months is None


def test_metachronous_with_disease_free_interval() -> None:
    summary = summary_of(
        secondary("lung", onset="2021-07-01"), excision("x", performed="2020-01-01", reason="Condition/primary")
    )
    assert summary.metastasis_timing.value is MetastasisTiming.METACHRONOUS
    assert summary.disease_free_interval_months.value == pytest.approx(18.0, abs=0.1)
    untreated = summary_of(secondary("lung", onset="2021-07-01"))  # never known to be disease-free
    assert untreated.metastasis_timing.value is MetastasisTiming.METACHRONOUS
    assert untreated.disease_free_interval_months is None


def test_threshold_is_configurable() -> None:
    summary = summary_of(secondary("lung", onset="2020-06-01"), months=6)
    assert summary.metastasis_timing.value is MetastasisTiming.SYNCHRONOUS


def test_earliest_metastasis_dates_the_spread() -> None:
    summary = summary_of(
        secondary("liver", snomed="94381002", onset="2022-01-01"), secondary("lung", onset="2021-01-01")
    )
    assert summary.metastasis_timing.when == date(2021, 1, 1)


def test_m0_recorded_after_metastasis_is_a_contradiction() -> None:
    summary = summary_of(secondary("lung", onset="2021-01-01"), tnm("m", "M0", date="2021-02-01"))
    assert summary.m.value == "M1"
    assert any(f.kind is FindingKind.CONTRADICTION and f.about == "m" for f in summary.findings)


def test_m0_before_metastasis_is_history_not_contradiction() -> None:
    summary = summary_of(secondary("lung", onset="2021-01-01"), tnm("m", "M0", date="2020-01-10"))
    assert not any(f.kind is FindingKind.CONTRADICTION for f in summary.findings)


def test_a_relapse_status_on_the_primary_alone_is_not_a_local_recurrence() -> None:
    summary = summarise([primary(snomed="443719001", clinical="recurrence")], today=TODAY)
    assert summary.local_recurrence is None
    assert any(f.kind is FindingKind.AMBIGUOUS and f.about == "local_recurrence" for f in summary.findings)


def test_a_relapse_status_on_the_primary_with_metastases_is_distant() -> None:
    relapsed = primary(snomed="443719001", body_site="61685007", clinical="recurrence")
    summary = summarise([relapsed, secondary("lung")], today=TODAY)
    assert summary.local_recurrence.value is False and summary.extent.value is Extent.LUNG_ONLY


def test_local_recurrence_from_recurrent_tumour_condition() -> None:
    summary = summary_of(condition("rec", concept(SNOMED, "25173007", "Recurrent tumor"), onset="2022-01-01"))
    assert summary.local_recurrence.value is True and summary.local_recurrence.when == date(2022, 1, 1)
    assert summary.diagnosis.sources == ("Condition/primary",)


def test_no_recurrence_is_false() -> None:
    assert summary_of().local_recurrence.value is False


# --- Provenance in full: what a card shows as "why" (each fact's value, sources, basis and date) -------


def provenance(fact) -> tuple:
    return (fact.value, fact.sources, fact.basis, fact.when)


def findings_about(summary, about: str) -> set[tuple]:
    return {(f.kind, f.message, f.sources) for f in summary.findings if f.about == about}


def test_extent_none_and_nodal_rest_on_the_m0_and_the_nodes() -> None:
    m0 = summary_of(tnm("m", "M0"))
    assert provenance(m0.extent) == (Extent.NONE, ("Observation/m",), "M0: clinical M0 (AJCC 8th edition)", None)
    assert provenance(m0.metastatic_organs) == ((), (), "", None)
    nodal = summary_of(tnm("n", "N1"), tnm("m", "M0"))
    assert provenance(nodal.extent) == (
        Extent.NODAL,
        ("Observation/m", "Observation/n"),
        "regional nodal disease (N1); M0 clinical M0 (AJCC 8th edition)",
        None,
    )
    assert provenance(nodal.metastatic_organs) == ((), (), "", None)


def test_distant_organs_rest_on_their_metastasis_conditions() -> None:
    summary = summary_of(
        secondary("lung", onset="2021-01-01"), secondary("liver", snomed="94381002", onset="2021-02-01")
    )
    both = ("Condition/liver", "Condition/lung")
    assert provenance(summary.extent) == (Extent.DISSEMINATED, both, "2 distant organs: liver, lung", None)
    assert provenance(summary.metastatic_organs) == (
        ("liver", "lung"),
        both,
        "organs of active secondary cancer Conditions",
        None,
    )
    assert provenance(summary.m) == ("M1", both, "active secondary cancer Condition", date(2021, 1, 1))
    limited = summary_of(secondary("liver", snomed="94381002", onset="2021-02-01"))
    assert provenance(limited.extent) == (Extent.LIMITED, ("Condition/liver",), "one distant organ: liver", None)


def test_a_recorded_m1_and_its_metastasis_condition_are_both_cited() -> None:
    summary = summary_of(tnm("m", "M1", date="2021-03-01"), secondary("liver", snomed="94381002", onset="2021-02-01"))
    assert provenance(summary.m) == (
        "M1",
        ("Condition/liver", "Observation/m"),
        "clinical M1 (AJCC 8th edition); active secondary cancer Condition",
        date(2021, 2, 1),
    )
    assert summary.extent.sources == ("Condition/liver", "Observation/m")


def test_an_m0_recorded_on_the_day_of_a_metastasis_contradicts_it() -> None:
    summary = summary_of(secondary("lung", onset="2021-01-01"), tnm("m", "M0", date="2021-01-01"))
    expected = {
        (
            FindingKind.CONTRADICTION,
            "M0 recorded on or after a metastasis Condition; M1 used",
            ("Condition/lung", "Observation/m"),
        )
    }
    assert findings_about(summary, "m") == expected and findings_about(summary, "extent") == expected
    assert provenance(summary.m) == ("M1", ("Condition/lung",), "active secondary cancer Condition", date(2021, 1, 1))


def test_an_m1_without_a_coded_organ_names_what_is_missing() -> None:
    message = "M1 but the organ of a metastasis is not coded: limited or disseminated unknown"
    recorded = summary_of(tnm("m", "M1"))
    assert findings_about(recorded, "metastatic_organs") == {(FindingKind.AMBIGUOUS, message, ("Observation/m",))}
    uncoded = summary_of(secondary("nos", snomed="128462008", onset="2021-01-01"))
    assert findings_about(uncoded, "metastatic_organs") == {(FindingKind.AMBIGUOUS, message, ("Condition/nos",))}
    assert uncoded.metastatic_organs is None and uncoded.extent.value is Extent.DISTANT


def test_lung_metastases_with_regional_nodes_cite_both() -> None:
    summary = summary_of(secondary("lung", onset="2021-01-01"), secondary("nodes", icd10="C77.4", onset="2021-01-01"))
    assert summary.extent.value is Extent.DISSEMINATED
    assert summary.extent.sources == ("Condition/lung", "Condition/nodes")
    assert "lung" in summary.extent.basis and "more than one site" in summary.extent.basis
    assert provenance(summary.n) == ("N1", ("Condition/nodes",), "active secondary cancer Condition", date(2021, 1, 1))


@pytest.mark.parametrize(
    "nodes,site",
    [
        (secondary("nodes", icd10="C77.9", onset="2021-01-01"), "61685007"),  # nodes, region not coded
        (secondary("nodes", icd10="C77.4", onset="2021-01-01"), None),  # groin nodes, primary site unknown
    ],
)
def test_a_node_metastasis_whose_region_or_primary_site_is_unknown_is_ambiguous(nodes, site) -> None:
    summary = summarise(
        [primary(snomed="443719001", body_site=site, onset="2020-01-01"), nodes, tnm("m", "M0")], today=TODAY
    )
    assert summary.n.value == "N1" and summary.n.sources == ("Condition/nodes",)
    assert summary.extent.value is Extent.NODAL
    assert (
        FindingKind.AMBIGUOUS,
        "lymph-node metastasis whose region or primary site is not known: regional (N1) or distant cannot be told",
        ("Condition/nodes",),
    ) in findings_about(summary, "extent")


def test_a_metastasis_of_another_primary_is_left_out_and_said_so() -> None:
    breast = condition("breast", concept(SNOMED, "353431000119107"), profile="mcode-primary-cancer-condition")
    theirs = secondary("bone", snomed="94222008", onset="2021-01-10", of="Condition/breast")
    ours = secondary("lung", onset="2021-01-10", of="Condition/primary")
    summary = summary_of(breast, theirs, ours)
    assert summary.metastatic_organs.value == ("lung",) and summary.extent.value is Extent.LUNG_ONLY
    assert findings_about(summary, "extent") == {
        (FindingKind.INFO, "metastases linked to another primary cancer are not counted", ("Condition/bone",))
    }


def test_an_unlinked_metastasis_beside_two_primaries_counts_but_leaves_whose_it_is_in_doubt() -> None:
    breast = condition("breast", concept(SNOMED, "353431000119107"), profile="mcode-primary-cancer-condition")
    summary = summary_of(breast, secondary("bone", snomed="94222008", onset="2021-01-10"))
    assert summary.m.value == "M1" and summary.metastatic_organs.value == ("bone",)
    doubt = (
        FindingKind.AMBIGUOUS,
        "more than one primary cancer and a metastasis not linked to either: whose it is cannot be told",
        ("Condition/bone",),
    )
    assert doubt in findings_about(summary, "extent") and doubt in findings_about(summary, "stage")


def test_a_metastasis_linked_to_this_primary_beside_another_primary_leaves_no_doubt() -> None:
    breast = condition("breast", concept(SNOMED, "353431000119107"), profile="mcode-primary-cancer-condition")
    summary = summary_of(breast, secondary("bone", snomed="94222008", onset="2021-01-10", of="Condition/primary"))
    assert summary.m.value == "M1"
    assert not any(f.kind is FindingKind.AMBIGUOUS for f in summary.findings if f.about in ("extent", "stage"))


def test_timing_facts_in_full() -> None:
    synchronous = summary_of(secondary("lung", onset="2020-03-15"))
    assert provenance(synchronous.metastasis_timing) == (
        MetastasisTiming.SYNCHRONOUS,
        ("Condition/lung",),
        "first distant metastasis 2.4 months after primary onset (<= 3)",
        date(2020, 3, 15),
    )
    metachronous = summary_of(secondary("lung", onset="2021-06-20"))  # 536 days: 17.61 months
    assert provenance(metachronous.metastasis_timing) == (
        MetastasisTiming.METACHRONOUS,
        ("Condition/lung",),
        "first distant metastasis 17.6 months after primary onset (> 3)",
        date(2021, 6, 20),
    )
    assert metachronous.disease_free_interval_months is None  # no curative treatment recorded


def test_a_metastasis_exactly_on_the_synchronous_threshold_is_synchronous() -> None:
    """16 months are exactly 487 days (365.25 / 12 a month), so the threshold itself can be hit."""
    on = summary_of(secondary("lung", onset="2021-05-02"), months=16)
    after = summary_of(secondary("lung", onset="2021-05-03"), months=16)
    assert on.metastasis_timing.value is MetastasisTiming.SYNCHRONOUS
    assert after.metastasis_timing.value is MetastasisTiming.METACHRONOUS


@pytest.mark.parametrize(
    "primary_onset,metastasis_onset,missing",
    [("2020-01-01", None, "metastasis date"), (None, "2021-01-01", "primary onset date")],
)
def test_timing_unknown_names_the_missing_date(primary_onset, metastasis_onset, missing: str) -> None:
    summary = summarise(
        [
            primary(snomed="443719001", body_site="61685007", onset=primary_onset),
            secondary("lung", onset=metastasis_onset),
        ],
        today=TODAY,
    )
    assert summary.metastasis_timing is None and summary.disease_free_interval_months is None
    assert findings_about(summary, "metastasis_timing") == {
        (FindingKind.MISSING, f"synchronous or metachronous unknown: {missing} missing", ("Condition/lung",))
    }


def test_an_m0_from_the_day_of_a_local_recurrence_still_holds() -> None:
    recurrence = condition("rec", concept(SNOMED, "25173007", "Recurrent tumor"), onset="2022-01-01")
    assert summary_of(tnm("m", "M0", date="2022-01-01"), recurrence).m.value == "M0"


def test_restaging_needed_names_the_m0_and_the_event_after_it() -> None:
    recurrence = condition("rec", concept(SNOMED, "25173007", "Recurrent tumor"), onset="2022-01-01")
    summary = summary_of(tnm("m", "M0", date="2021-12-31"), recurrence)
    assert (
        FindingKind.MISSING,
        "M0 (clinical M0 (AJCC 8th edition)) predates the local recurrence: restaging needed",
        ("Condition/rec", "Observation/m"),
    ) in findings_about(summary, "extent")


def test_an_undated_relapse_supersedes_any_m0() -> None:
    relapsed = primary(snomed="443719001", body_site="61685007", clinical="recurrence", onset="2020-01-01")
    summary = summarise([relapsed, tnm("m", "M0", date="2024-06-01")], today=TODAY)
    assert summary.m is None and summary.extent is None
    assert (
        FindingKind.MISSING,
        "M0 (clinical M0 (AJCC 8th edition)) predates the relapse recorded on the primary: restaging needed",
        ("Condition/primary", "Observation/m"),
    ) in findings_about(summary, "extent")


def test_an_unconfirmed_metastasis_leaves_extent_and_stage_in_doubt_until_staging_settles_it() -> None:
    suspected = secondary("lung", onset="2021-01-01", verification="provisional")
    message = (
        "metastasis recorded as not confirmed and no staging recorded since: whether the disease has spread is in doubt"
    )
    doubt = summary_of(suspected, tnm("m", "M0", date="2020-12-31"))
    for about in ("extent", "stage"):
        assert (FindingKind.AMBIGUOUS, message, ("Condition/lung",)) in findings_about(doubt, about)
    settled = summary_of(suspected, tnm("m", "M0", date="2021-01-01"))
    assert not any(f.kind is FindingKind.AMBIGUOUS for f in settled.findings)


def test_nodes_not_recorded_read_as_n0_and_say_so() -> None:
    assert provenance(summary_of(tnm("m", "M0")).n) == (
        "N0",
        (),
        "N0 (none or unknown): nodes not recorded read as N0, as AJCC 8 does for soft tissue sarcoma",
        None,
    )


def test_an_n0_recorded_after_a_regional_node_metastasis_contradicts_it() -> None:
    summary = summary_of(
        secondary("nodes", icd10="C77.4", onset="2021-01-01"),
        tnm("n", "N0", date="2021-02-01"),
        tnm("m", "M0", date="2021-02-01"),
    )
    expected = {
        (
            FindingKind.CONTRADICTION,
            "N0 recorded on or after a metastasis Condition; N1 used",
            ("Condition/nodes", "Observation/n"),
        )
    }
    assert summary.n.value == "N1"
    assert findings_about(summary, "n") == expected and findings_about(summary, "extent") == expected


def test_a_metastasis_linked_to_the_sarcoma_and_another_primary_counts_for_the_sarcoma() -> None:
    breast = condition("breast", concept(SNOMED, "353431000119107"), profile="mcode-primary-cancer-condition")
    related = "http://hl7.org/fhir/StructureDefinition/condition-related"
    both = secondary(
        "lung",
        onset="2021-01-01",
        extension=[
            {"url": related, "valueReference": {"reference": "Condition/primary"}},
            {"url": related, "valueReference": {"reference": "Condition/breast"}},
        ],
    )
    summary = summary_of(breast, both)
    assert summary.m.value == "M1" and summary.metastatic_organs.value == ("lung",)
    assert not findings_about(summary, "extent")


def ct_chest(id: str, result: dict | None, *, date: str = "2020-01-20", **fields) -> dict:
    """CT of the chest (LOINC 24627-2) with its result as valueCodeableConcept."""
    code = concept("http://loinc.org", "24627-2", "CT Chest")
    return observation(id, code, value={"valueCodeableConcept": result} if result else None, date=date, **fields)


NEGATIVE = concept(SNOMED, "260385009", "Negative")


@pytest.mark.parametrize(
    "scan",
    [
        ct_chest("ct", NEGATIVE),
        ct_chest("ct", concept(SNOMED, "281900007", "No abnormality detected")),
        ct_chest(
            "ct",
            None,
            interpretation=[concept("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "NEG")],
        ),
    ],
)
def test_a_coded_negative_staging_scan_is_m0(scan) -> None:
    summary = summary_of(scan)
    assert summary.m.value == "M0" and summary.m.sources == ("Observation/ct",)
    assert summary.extent.value is Extent.NONE
    assert not any("staging CT" in f.message for f in summary.findings)


@pytest.mark.parametrize(
    "scan",
    [
        ct_chest("ct", {"text": "Two 4 mm nodules, indeterminate"}),
        ct_chest("ct", concept(SNOMED, "260385009", "Negative"), date=None),
        ct_chest("ct", NEGATIVE, status="entered-in-error"),
        observation("xr", concept("http://loinc.org", "36643-5", "XR Chest"), value={"valueCodeableConcept": NEGATIVE}),
    ],
)
def test_a_scan_that_is_not_a_dated_coded_negative_chest_ct_leaves_m_unknown(scan) -> None:
    summary = summary_of(scan)
    assert summary.m is None and summary.extent is None
    assert any("staging CT of the chest" in f.message for f in summary.findings)


def test_the_latest_scan_decides_and_a_negative_scan_before_a_recurrence_needs_restaging() -> None:
    later_unclear = summary_of(ct_chest("ct1", NEGATIVE), ct_chest("ct2", {"text": "nodules"}, date="2020-06-01"))
    assert later_unclear.m is None
    recurrence = condition("rec", concept(SNOMED, "25173007", "Recurrent tumor"), onset="2022-01-01")
    before = summary_of(ct_chest("ct", NEGATIVE, date="2021-12-31"), recurrence)
    assert before.m is None and any("restaging needed" in f.message for f in before.findings)
    after = summary_of(ct_chest("ct", NEGATIVE, date="2022-01-02"), recurrence)
    assert after.m.value == "M0"


@pytest.mark.parametrize(
    "scanned,staged,source,when",
    [
        ("2020-03-01", "2020-02-01", "Observation/ct", date(2020, 3, 1)),
        ("2020-01-20", "2020-02-01", "Observation/sg", date(2020, 2, 1)),
    ],
)
def test_m0_rests_on_the_later_of_a_negative_staging_scan_and_a_recorded_stage_i_to_iii(
    scanned: str, staged: str, source: str, when: date
) -> None:
    summary = summary_of(ct_chest("ct", NEGATIVE, date=scanned), stage_group("sg", "II", date=staged))
    assert (summary.m.value, summary.m.sources, summary.m.when) == ("M0", (source,), when)
    assert summary.extent.value is Extent.NONE


DFSP = primary(icd10="C49.12", morphology="8832/3", onset="2020-01-01")


def test_dfsp_without_staging_reads_as_localised_and_no_m_status_is_asked() -> None:
    summary = summarise([DFSP], today=TODAY)
    assert summary.histology.value.value == "dermatofibrosarcoma-protuberans"
    assert summary.m is None and summary.extent.value is Extent.NONE
    assert summary.extent.basis == "no metastasis recorded; staging imaging is not routine for this histology"
    assert not any(f.about == "extent" for f in summary.findings)  # the stage is not expected either (G7)
    spread = summarise([DFSP, secondary("met", onset="2021-01-01")], today=TODAY)
    assert spread.extent.value is Extent.LUNG_ONLY


def test_another_histology_without_staging_is_still_asked_for_m_status() -> None:
    summary = summary_of()
    assert summary.extent is None
    assert any("staging CT of the chest" in f.message for f in summary.findings)


def test_an_unsettled_staging_scan_is_named_in_what_is_missing() -> None:
    summary = summary_of(ct_chest("ct", {"text": "Two 4 mm nodules, indeterminate"}, date="2020-01-20"))
    assert summary.m is None
    assert any(
        "latest staging CT of the chest of 2020-01-20 is not recorded as negative (Observation/ct)" in f.message
        for f in summary.findings
    )


@pytest.mark.parametrize(
    "abatement,metastatic",
    [
        ({"abatementDateTime": "2024-03-01"}, False),
        ({"abatementDateTime": "2024-12-31"}, False),
        ({"abatementString": "resected"}, False),
        ({"abatementDateTime": "2025-01-02"}, True),  # abates after today: still active today
        ({}, True),
    ],
)
def test_a_metastasis_recording_its_abatement_without_a_status_is_not_active(
    abatement: dict[str, str], metastatic: bool
) -> None:
    summary = summary_of(secondary("met", clinical=None, **abatement), tnm("m", "M0", date="2024-06-01"))
    assert (summary.metastatic_organs.value == ("lung",)) is metastatic


def test_icd10_c78_6_names_both_retroperitoneum_and_peritoneum() -> None:
    """C78.6 is "Secondary malignant neoplasm of retroperitoneum and peritoneum": it does not say which."""
    summary = summarise([primary(morphology="8890/3"), secondary("m", snomed=None, icd10="C78.6")], today=TODAY)
    assert summary.extent.value is Extent.LIMITED
    assert summary.metastatic_organs.value == ("retroperitoneum-and-peritoneum",)


@pytest.mark.parametrize(
    "scanned,restaged",
    [("2022-01-02", True), ("2022-01-01", False), ("2021-12-31", False)],  # after, on, before the recurrence
)
def test_a_negative_staging_ct_after_a_local_recurrence_is_the_restaging_it_needed(
    scanned: str, restaged: bool
) -> None:
    recurrence = condition("rec", concept(SNOMED, "25173007", "Recurrent tumor"), onset="2022-01-01")
    summary = summary_of(tnm("m", "M0", date="2021-06-01"), recurrence, ct_chest("ct", NEGATIVE, date=scanned))
    assert (summary.m is not None and summary.m.value == "M0" and summary.m.sources == ("Observation/ct",)) is restaged
    assert any("restaging needed" in f.message for f in summary.findings) is not restaged


def test_a_negative_scan_before_a_worsening_status_needs_restaging() -> None:
    summary = summary_of(
        ct_chest("ct", NEGATIVE, date="2020-01-20"), disease_status("ds", "worsened", date="2020-06-01")
    )
    assert summary.m is None
    found = [(f.kind, f.message, f.sources) for f in summary.findings if f.about == "extent"]
    assert found == [
        (
            FindingKind.MISSING,
            "M0 (staging imaging of the chest on 2020-01-20: negative) predates the worsening disease status: "
            "restaging needed",
            ("Observation/ct", "Observation/ds"),
        )
    ]


def _resolved_lung(**kwargs):
    return secondary("met-2022", of="Condition/primary", onset="2022-01-10", clinical="resolved", **kwargs)


def test_a_resolved_metastasis_is_history_not_extent() -> None:
    summary = summary_of(_resolved_lung(), tnm("m", "M0", date="2024-06-01"))
    assert summary.extent.value is Extent.NONE
    assert summary.metastases_resolved.value == ("lung",)
    assert summary.metastases_resolved.sources == ("Condition/met-2022",)
    assert summary_of(tnm("m", "M0", date="2024-06-01")).metastases_resolved is None


def test_a_suspected_or_another_primarys_resolved_metastasis_is_not_this_ones_history() -> None:
    suspected = secondary("s", of="Condition/primary", clinical="resolved", verification="provisional")
    other = primary("other", icd10="C50.912")
    foreign = secondary("f", of="Condition/other", clinical="resolved")
    assert summary_of(suspected, tnm("m", "M0")).metastases_resolved is None
    assert summary_of(other, foreign, tnm("m", "M0")).metastases_resolved is None


def test_the_first_metastasis_is_the_earliest_even_when_resolved() -> None:
    """A lung metastasis in 2022 (resected), a new one in 2024: metachronous from 2022, so the interval
    and the start of advanced disease count from the first."""
    new = secondary("met-2024", of="Condition/primary", onset="2024-03-01")
    summary = summary_of(_resolved_lung(), new, excision("x", performed="2020-03-01", reason="Condition/primary"))
    assert summary.extent.value is Extent.LUNG_ONLY
    assert summary.metastasis_timing.value is MetastasisTiming.METACHRONOUS
    assert summary.disease_free_interval_months.value == pytest.approx(22.3, abs=0.1)


@pytest.mark.parametrize(("r", "interval"), [("R0", 18.0), ("R1", 18.0), ("R2", None)])
def test_an_r2_resection_leaves_tumour_behind_and_starts_no_disease_free_interval(
    r: str, interval: float | None
) -> None:
    resection = excision("x", performed="2020-01-01", reason="Condition/primary")
    summary = summary_of(resection, margin("mg", r, date="2020-01-01"), secondary("lung", onset="2021-07-01"))
    fact = summary.disease_free_interval_months
    assert (round(fact.value) if fact else None) == interval


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("Metastatic leiomyosarcoma L thigh to lungs", True),
        ("LMS thigh with lung mets", True),
        ("Leiomyosarcoma, stage IV", True),
        ("Non-metastatic leiomyosarcoma of thigh", False),
        ("Leiomyosarcoma thigh, no metastases on CT", False),
        ("Leiomyosarcoma thigh", False),
    ],
)
def test_a_diagnosis_that_says_metastatic_while_none_is_coded_is_quoted(text: str, said: bool) -> None:
    condition = primary(snomed="443719001", body_site="61685007", onset="2020-01-01")
    condition["code"]["text"] = text
    summary = summarise([condition], today=TODAY)
    quoted = [f for f in summary.findings if f.about == "extent" and "no metastasis is coded" in f.message]
    assert summary.extent is None and bool(quoted) is said


@pytest.mark.parametrize(
    ("onset", "timing"),
    [
        ({"onsetString": "February 2024"}, MetastasisTiming.METACHRONOUS),
        ({"onsetString": "2024-02"}, MetastasisTiming.METACHRONOUS),
        ({"onsetString": "early 2024"}, None),  # too vague to date
        ({"onsetString": "Feb 0000"}, None),  # no such year: not a date, no error
    ],
)
def test_an_onset_written_as_a_month_dates_the_primary(onset: dict, timing: MetastasisTiming | None) -> None:
    condition = primary(snomed="443719001", body_site="61685007", onset=None, **onset)
    summary = summarise([condition, secondary("lung", onset="2025-09-01")], today=TODAY.replace(year=2026))
    assert (summary.metastasis_timing.value if summary.metastasis_timing else None) == timing


@pytest.mark.parametrize(
    ("scanned", "in_doubt"),
    [("2024-06-02", True), ("2024-06-01", False), ("2024-05-01", False)],  # after, on, before the metastasis
)
def test_a_negative_chest_ct_after_a_lung_metastasis_puts_the_spread_in_doubt(scanned: str, in_doubt: bool) -> None:
    summary = summary_of(secondary("lung", onset="2024-06-01"), ct_chest("ct", NEGATIVE, date=scanned))
    doubts = {f.about for f in summary.findings if f.kind is FindingKind.CONTRADICTION}
    assert summary.m.value == "M1"
    assert (doubts == {"m", "extent", "stage"}) is in_doubt and (not doubts) is (not in_doubt)


def test_a_negative_chest_ct_does_not_put_a_liver_metastasis_in_doubt() -> None:
    summary = summary_of(
        secondary("liver", snomed="94381002", onset="2024-06-01"), ct_chest("ct", NEGATIVE, date="2024-07-01")
    )
    assert not [f for f in summary.findings if f.kind is FindingKind.CONTRADICTION]


def ct_report(id: str, *, date: str, conclusion_code: dict | None = None) -> dict:
    """A final radiology report of a CT of the chest, its conclusion in words (and coded when given)."""
    report = {
        "resourceType": "DiagnosticReport",
        "id": id,
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "category": [concept("http://terminology.hl7.org/CodeSystem/v2-0074", "RAD", "Radiology")],
        "code": concept("http://loinc.org", "24627-2", "CT Chest"),
        "effectiveDateTime": date,
        "conclusion": "No evidence of metastatic disease in the chest.",
    }
    if conclusion_code:
        report["conclusionCode"] = [conclusion_code]
    return report


def test_a_chest_ct_report_in_words_only_settles_no_m_and_the_card_says_it_was_reported() -> None:
    summary = summary_of(ct_report("ct", date="2024-06-01"))
    assert summary.m is None and summary.extent is None
    assert any("reported in words only (DiagnosticReport/ct)" in f.message for f in summary.findings)


def test_a_chest_ct_report_with_a_coded_negative_conclusion_is_m0() -> None:
    summary = summary_of(ct_report("ct", date="2024-06-01", conclusion_code=NEGATIVE))
    assert summary.m.value == "M0" and summary.m.sources == ("DiagnosticReport/ct",)


@pytest.mark.parametrize(("reported", "m0"), [("2024-05-31", True), ("2024-06-02", False)])
def test_the_later_of_a_coded_scan_and_a_report_in_words_decides(reported: str, m0: bool) -> None:
    summary = summary_of(ct_chest("obs", NEGATIVE, date="2024-06-01"), ct_report("ct", date=reported))
    assert (summary.m is not None and summary.m.value == "M0") is m0


@pytest.mark.parametrize(
    ("site", "extent", "local"),
    [
        ({"coding": [{"system": SNOMED, "code": "39607008"}], "text": "Both lungs"}, "lung-only", False),
        ({"text": "Left thigh, at the scar"}, None, True),  # at the primary site: a local recurrence
    ],
)
def test_a_tumour_recorded_as_recurrent_in_a_distant_organ_has_spread(
    site: dict, extent: str | None, local: bool
) -> None:
    """ "Recurrent leiomyosarcoma - both lungs" (status recurrence) is a distant relapse, not a local one (R1)."""
    recurred = condition(
        "rec",
        {"coding": [{"system": SNOMED, "code": "443719001"}], "text": "Recurrent leiomyosarcoma"},
        onset="2022-01-01",
        clinical="recurrence",
        bodySite=[site],
    )
    summary = summary_of(recurred, tnm("m", "M0"))
    if extent is not None:
        assert summary.extent is not None and summary.extent.value.value == extent
    assert (summary.local_recurrence is not None and summary.local_recurrence.value) is local


@pytest.mark.parametrize(
    ("node_side", "m"),
    [("Right inguinal lymph node", "M1"), ("Left inguinal lymph node", "M0"), ("Inguinal lymph node", "M0")],
)
def test_nodes_on_the_other_side_of_a_limb_primary_are_distant(node_side: str, m: str) -> None:
    """A right groin node beside a left heel primary is a distant metastasis (AJCC 8), not N1."""
    left_heel = primary(snomed="443719001", body_site="61685007", onset="2020-01-01")
    left_heel["bodySite"][0]["text"] = "Left heel"
    node = {**secondary("nodes", icd10="C77.4", onset="2021-01-01"), "bodySite": [{"text": node_side}]}
    summary = summarise([left_heel, node, tnm("m", "M0", date="2020-02-01")], today=TODAY)
    assert summary.m is not None and summary.m.value == m
    assert (summary.n is not None and summary.n.value == "N1") is (m == "M0")


@pytest.mark.parametrize(("scanned", "m0"), [("2019-10-03", True), ("2019-10-02", False)])  # onset 2020-01-01
def test_a_negative_chest_ct_long_before_the_diagnosis_does_not_stage_it(scanned: str, m0: bool) -> None:
    """A CT for a suspected embolism months before the sarcoma appeared is no staging scan: 90 days at most."""
    summary = summary_of(ct_chest("ct", NEGATIVE, date=scanned))
    assert (summary.m is not None and summary.m.value == "M0") is m0
    assert any("before the sarcoma was diagnosed" in f.message for f in summary.findings) is not m0


@pytest.mark.parametrize(
    ("recorded", "resected", "timing"),
    [
        ("2024-10-10", None, MetastasisTiming.SYNCHRONOUS),  # diagnosed 3 weeks before the staging CT found them
        ("2024-07-25", None, MetastasisTiming.METACHRONOUS),  # recorded more than 3 months before: onset counts
        ("2024-10-10", "2024-10-20", MetastasisTiming.METACHRONOUS),  # resected before: a record of a transfer, say
        (None, None, MetastasisTiming.METACHRONOUS),
    ],
)
def test_metastases_found_soon_after_the_diagnosis_was_recorded_are_synchronous_though_the_onset_is_older(
    recorded: str | None, resected: str | None, timing: MetastasisTiming
) -> None:
    """Onset (a lump noticed) in 2023; the first lung metastasis on 2024-11-01."""
    tumour = primary(snomed="443719001", body_site="61685007", onset="2023-09-01")
    if recorded:
        tumour["recordedDate"] = recorded
    chart = [tumour, secondary("met", onset="2024-11-01")]
    if resected:
        chart.append(excision("wle", performed=resected, reason="Condition/primary"))
    summary = summarise(chart, today=TODAY)
    assert summary.metastasis_timing.value is timing
