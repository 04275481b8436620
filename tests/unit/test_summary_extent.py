"""Metastatic extent, organs, timing and local recurrence (S15-S20)."""

from __future__ import annotations

from datetime import date

import pytest
from fhir_builders import SNOMED, concept, condition, primary, secondary, tnm

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


def test_m1_without_organ_is_missing() -> None:
    summary = summary_of(tnm("m", "M1"))
    assert summary.extent is None
    assert any(f.kind is FindingKind.MISSING and f.about == "extent" for f in summary.findings)


def test_metastasis_without_coded_organ_is_missing_unless_two_organs_known() -> None:
    assert summary_of(secondary("lung"), secondary("nos", snomed="128462008")).extent is None
    both = summary_of(secondary("lung"), secondary("liver", snomed="94381002"), secondary("nos", snomed="128462008"))
    assert both.extent.value is Extent.DISSEMINATED


def test_secondary_organ_from_body_site() -> None:
    met = secondary("nos", snomed="128462008", body_site=[concept(SNOMED, "10200004")])
    assert summary_of(met).metastatic_organs.value == ("liver",)


def test_synchronous_within_threshold() -> None:
    summary = summary_of(secondary("lung", onset="2020-03-15"))
    assert summary.metastasis_timing.value is MetastasisTiming.SYNCHRONOUS
    assert summary.disease_free_interval_months is None


def test_metachronous_with_disease_free_interval() -> None:
    summary = summary_of(secondary("lung", onset="2021-07-01"))
    assert summary.metastasis_timing.value is MetastasisTiming.METACHRONOUS
    assert summary.disease_free_interval_months.value == pytest.approx(18.0, abs=0.1)


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
