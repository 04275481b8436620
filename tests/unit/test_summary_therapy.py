"""Systemic therapy: exposures, ingredient roll-up, setting and lines (S28, S38-S43, G5, G6)."""

from __future__ import annotations

from datetime import date

import pytest
from fhir_builders import (SNOMED, concept, condition, drug_text, med_administration, med_request, med_statement,
                           primary, rxnorm, secondary)

from cds_service.summary import summarise
from cds_service.summary.model import FindingKind

TODAY = date(2025, 1, 1)
PRIMARY = primary(snomed="443719001", body_site="61685007", onset="2020-01-01")
METASTASIS = secondary("lung", onset="2021-01-01")
DOXORUBICIN = rxnorm("1790099", "10 ML doxorubicin hydrochloride 2 MG/ML Injection")
IFOSFAMIDE = rxnorm("1791593", "ifosfamide 1000 MG Injection")


def summary_of(*resources):
    return summarise([PRIMARY, *resources], today=TODAY)


@pytest.mark.parametrize("record", [
    med_statement("ms", DOXORUBICIN, start="2021-02-01"),
    med_request("mr", DOXORUBICIN, start="2021-02-01", end="2021-06-01"),
    med_request("mr", DOXORUBICIN, start=None, authored="2021-02-01"),
    med_administration("ma", DOXORUBICIN, start="2021-02-01"),
])
def test_each_medication_resource_type_is_an_exposure(record) -> None:
    summary = summary_of(METASTASIS, record)
    (exposure,) = summary.therapies
    assert exposure.ingredient == "doxorubicin" and exposure.rxnorm == "3639"
    assert exposure.start == date(2021, 2, 1) and exposure.setting == "advanced" and exposure.line == 1
    assert summary.prior_anthracycline.value is True
    assert summary.lines_of_therapy.value == 1


@pytest.mark.parametrize("drug,ingredient", [
    (rxnorm("1790099"), "doxorubicin"),
    (rxnorm("3639"), "doxorubicin"),
    (rxnorm("1790129"), "doxorubicin"),
    (rxnorm("999999999", "DOXOrubicin"), "doxorubicin"),
    (drug_text("doxorubicin hydrochloride liposomal 2 mg/mL"), "doxorubicin"),
    (drug_text("Yondelis 1 mg powder"), "trabectedin"),
    (drug_text("Lartruvo (olaratumab) 500 mg"), "olaratumab"),
    (rxnorm("349472"), "gefitinib"),
])
def test_ingredient_roll_up_and_display_fallback(drug, ingredient: str) -> None:
    assert summary_of(med_statement("m", drug)).prior_drugs.value == frozenset({ingredient})


def test_combination_product_yields_both_ingredients() -> None:
    summary = summary_of(med_statement("m", rxnorm("352384", "ifosfamide / mesna")))
    assert summary.prior_drugs.value == frozenset({"ifosfamide", "mesna"})


def test_unknown_drug_is_not_an_exposure() -> None:
    assert summary_of(med_statement("m", drug_text("lisinopril 10 mg"))).therapies == ()


@pytest.mark.parametrize("record", [
    med_statement("m", DOXORUBICIN, status="entered-in-error"),
    med_statement("m", DOXORUBICIN, status="not-taken"),
    med_request("m", DOXORUBICIN, status="cancelled"),
    med_request("m", DOXORUBICIN, status="draft"),
    med_administration("m", DOXORUBICIN, status="not-done"),
])
def test_records_that_are_not_exposures_are_excluded(record) -> None:
    summary = summary_of(record)
    assert summary.therapies == () and summary.prior_anthracycline.value is False


def test_contained_medication_is_resolved() -> None:
    record = med_request("m", DOXORUBICIN)
    del record["medicationCodeableConcept"]
    record["medicationReference"] = {"reference": "#med"}
    record["contained"] = [{"resourceType": "Medication", "id": "med", "code": DOXORUBICIN}]
    assert summary_of(record).prior_drugs.value == frozenset({"doxorubicin"})


def test_an_unreadable_medication_reference_leaves_therapy_incomplete() -> None:
    record = med_request("m", DOXORUBICIN)
    del record["medicationCodeableConcept"]
    record["medicationReference"] = {"reference": "Medication/elsewhere"}
    summary = summary_of(record)
    assert summary.therapies == ()
    assert any(f.kind is FindingKind.INCOMPLETE and f.about == "lines_of_therapy"
               and f.sources == ("MedicationRequest/m",) for f in summary.findings)


def test_included_medication_resource_is_resolved() -> None:
    record = med_request("m", DOXORUBICIN)
    del record["medicationCodeableConcept"]
    record["medicationReference"] = {"reference": "Medication/dox"}
    medication = {"resourceType": "Medication", "id": "dox", "code": DOXORUBICIN}
    assert summary_of(record, medication).prior_drugs.value == frozenset({"doxorubicin"})


def test_therapy_before_metastasis_is_perioperative() -> None:
    summary = summary_of(METASTASIS, med_administration("a", DOXORUBICIN, start="2020-02-01"))
    (exposure,) = summary.therapies
    assert exposure.setting == "perioperative" and exposure.line is None
    assert summary.lines_of_therapy.value == 0 and summary.prior_anthracycline.value is True


def test_therapy_after_local_recurrence_is_advanced() -> None:
    recurrence = condition("rec", concept(SNOMED, "25173007"), onset="2021-05-01")
    summary = summary_of(recurrence, med_administration("a", DOXORUBICIN, start="2021-06-01"))
    assert summary.therapies[0].setting == "advanced"


def test_cycles_of_one_drug_form_one_course() -> None:
    cycles = [med_administration(f"c{i}", DOXORUBICIN, start=day) for i, day in
              enumerate(["2021-02-01", "2021-02-22", "2021-03-15", "2021-04-05"])]
    summary = summary_of(METASTASIS, *cycles)
    (exposure,) = summary.therapies
    assert exposure.start == date(2021, 2, 1) and exposure.end == date(2021, 4, 5)
    assert len(exposure.sources) == 4 and summary.lines_of_therapy.value == 1


def test_lines_group_drugs_starting_within_21_days_and_skip_supportive() -> None:
    summary = summary_of(
        METASTASIS,
        med_administration("dox", DOXORUBICIN, start="2021-02-01"),
        med_administration("ifo", IFOSFAMIDE, start="2021-02-03"),
        med_administration("mesna", drug_text("mesna 400 mg"), start="2021-02-03"),
        med_administration("peg", drug_text("pegfilgrastim 6 mg"), start="2021-02-04"),
        med_administration("gem", drug_text("gemcitabine 1000 mg"), start="2021-09-01"),
        med_administration("doc", drug_text("docetaxel 75 mg"), start="2021-09-08"),
        med_statement("paz", drug_text("pazopanib 800 mg"), start="2022-03-01"),
    )
    lines = {e.ingredient: e.line for e in summary.therapies}
    assert lines == {"doxorubicin": 1, "ifosfamide": 1, "mesna": None, "pegfilgrastim": None,
                     "gemcitabine": 2, "docetaxel": 2, "pazopanib": 3}
    assert summary.lines_of_therapy.value == 3


def test_future_start_is_not_an_exposure() -> None:
    summary = summary_of(med_request("plan", DOXORUBICIN, start="2025-06-01"))
    assert summary.therapies == ()


def test_stop_reason_is_kept() -> None:
    summary = summary_of(METASTASIS, med_request("m", DOXORUBICIN, start="2021-02-01", status="stopped",
                                                 stop_reason="266721009"))
    assert summary.therapies[0].stop_reason == "266721009" and summary.therapies[0].status == "stopped"


def test_no_therapy_facts() -> None:
    summary = summary_of()
    assert summary.prior_drugs.value == frozenset() and summary.lines_of_therapy.value == 0
    assert summary.prior_anthracycline.value is False
