"""Systemic therapy: exposures, ingredient roll-up, setting and lines (S28, S38-S43, G5, G6)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from fhir_builders import (
    LOINC,
    MCODE,
    SNOMED,
    concept,
    condition,
    disease_status,
    drug_text,
    ecog,
    med_administration,
    med_request,
    med_statement,
    observation,
    patient,
    primary,
    rxnorm,
    secondary,
)

from cds_service.knowledge import KnowledgeBase, load_knowledge, match
from cds_service.summary import summarise
from cds_service.summary.model import FindingKind

TODAY = date(2025, 1, 1)
PRIMARY = primary(snomed="443719001", body_site="61685007", onset="2020-01-01")
METASTASIS = secondary("lung", onset="2021-01-01")
DOXORUBICIN = rxnorm("1790099", "10 ML doxorubicin hydrochloride 2 MG/ML Injection")
IFOSFAMIDE = rxnorm("1791593", "ifosfamide 1000 MG Injection")
CARDS = Path(__file__).resolve().parents[2] / "cards"


def summary_of(*resources):
    return summarise([PRIMARY, *resources], today=TODAY)


@pytest.mark.parametrize(
    "record",
    [
        med_statement("ms", DOXORUBICIN, start="2021-02-01"),
        med_request("mr", DOXORUBICIN, start="2021-02-01", end="2021-06-01"),
        med_request("mr", DOXORUBICIN, start=None, authored="2021-02-01"),
        med_administration("ma", DOXORUBICIN, start="2021-02-01"),
    ],
)
def test_each_medication_resource_type_is_an_exposure(record) -> None:
    summary = summary_of(METASTASIS, record)
    (exposure,) = summary.therapies
    assert exposure.ingredient == "doxorubicin" and exposure.rxnorm == "3639"
    assert exposure.start == date(2021, 2, 1) and exposure.setting == "advanced" and exposure.line == 1
    assert summary.prior_anthracycline.value is True
    assert summary.lines_of_therapy.value == 1


@pytest.mark.parametrize(
    "record,start,end",
    [
        (med_request("r", DOXORUBICIN, start="2021-02-01", end="2021-06-01"), "2021-02-01", "2021-06-01"),
        (med_request("r", DOXORUBICIN, start="2021-02-01"), "2021-02-01", "2021-02-01"),
        (med_request("r", DOXORUBICIN, start=None, authored="2021-02-01"), "2021-02-01", "2021-02-01"),
        (med_request("r", DOXORUBICIN, start="2021-02-01", authored="2021-01-15"), "2021-02-01", "2021-02-01"),
        (
            med_request("r", DOXORUBICIN, start=None, authored="2021-02-01", dosageInstruction=[{"text": "q21d"}]),
            "2021-02-01",
            "2021-02-01",
        ),
        (
            med_request(
                "r",
                DOXORUBICIN,
                start=None,
                authored="2021-02-01",
                dosageInstruction=[{"timing": {"code": {"text": "Q3W"}}}],
            ),
            "2021-02-01",
            "2021-02-01",
        ),
        (med_statement("s", DOXORUBICIN, start="2021-02-01", end="2021-06-01"), "2021-02-01", "2021-06-01"),
        (med_statement("s", DOXORUBICIN, start="2021-02-01"), "2021-02-01", "2021-02-01"),
        (med_administration("a", DOXORUBICIN, start="2021-02-01"), "2021-02-01", "2021-02-01"),
    ],
)
def test_a_course_runs_from_its_first_to_its_last_recorded_date(record: dict, start: str, end: str) -> None:
    (exposure,) = summary_of(METASTASIS, record).therapies
    assert (exposure.start, exposure.end) == (date.fromisoformat(start), date.fromisoformat(end))


@pytest.mark.parametrize(
    "drug,ingredient",
    [
        (rxnorm("1790099"), "doxorubicin"),
        (rxnorm("3639"), "doxorubicin"),
        (rxnorm("1790129"), "doxorubicin"),
        (rxnorm("999999999", "DOXOrubicin"), "doxorubicin"),
        (drug_text("doxorubicin hydrochloride liposomal 2 mg/mL"), "doxorubicin"),
        (drug_text("Yondelis 1 mg powder"), "trabectedin"),
        (drug_text("Lartruvo (olaratumab) 500 mg"), "olaratumab"),
        (rxnorm("349472"), "gefitinib"),
    ],
)
def test_ingredient_roll_up_and_display_fallback(drug, ingredient: str) -> None:
    assert summary_of(med_statement("m", drug)).prior_drugs.value == frozenset({ingredient})


@pytest.mark.parametrize(
    "text,ingredient",
    [
        ("nab-sirolimus 100 mg", "nab-sirolimus"),
        ("Sirolimus protein-bound particles 100 mg", "nab-sirolimus"),
        ("Sirolimus 2 mg", "sirolimus"),
    ],
)
def test_a_drug_name_inside_a_longer_name_of_another_drug_is_not_that_drug(text: str, ingredient: str) -> None:
    summary = summary_of(METASTASIS, med_administration("m", drug_text(text), start="2021-02-01"))
    assert [t.ingredient for t in summary.therapies] == [ingredient]


def test_combination_product_yields_both_ingredients() -> None:
    summary = summary_of(med_statement("m", rxnorm("352384", "ifosfamide / mesna")))
    assert {(e.ingredient, e.purpose) for e in summary.therapies} == {
        ("ifosfamide", "anticancer"),
        ("mesna", "supportive"),
    }
    assert summary.prior_drugs.value == frozenset({"ifosfamide"})  # mesna is supportive care


def test_unknown_drug_is_not_an_exposure() -> None:
    assert summary_of(med_statement("m", drug_text("lisinopril 10 mg"))).therapies == ()


@pytest.mark.parametrize(
    "record",
    [
        med_statement("m", DOXORUBICIN, status="entered-in-error"),
        med_statement("m", DOXORUBICIN, status="not-taken"),
        med_request("m", DOXORUBICIN, status="cancelled"),
        med_request("m", DOXORUBICIN, status="draft"),
        med_administration("m", DOXORUBICIN, status="not-done"),
        med_administration("m", DOXORUBICIN, status="entered-in-error"),
        med_statement("m", DOXORUBICIN, status="intended"),
        med_request("m", DOXORUBICIN, status="entered-in-error"),
        med_request("m", DOXORUBICIN, status="active", intent="proposal"),
    ],
)
def test_records_that_are_not_exposures_are_excluded(record) -> None:
    summary = summary_of(record)
    assert summary.therapies == () and summary.prior_anthracycline.value is False
    later = med_statement("z", IFOSFAMIDE, start="2021-03-01")  # read after it: still counted
    assert [t.ingredient for t in summary_of(record, later).therapies] == ["ifosfamide"]


@pytest.mark.parametrize(("intent", "status"), [("order", "active"), ("plan", "active"), ("plan", "completed")])
def test_an_order_or_a_plan_is_an_exposure(intent: str, status: str) -> None:
    """A plan already under way is read as given: a drug that may be given must not be offered as new (G6)."""
    summary = summary_of(med_request("m", DOXORUBICIN, status=status, intent=intent))
    assert [t.ingredient for t in summary.therapies] == ["doxorubicin"]


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
    assert any(
        f.kind is FindingKind.INCOMPLETE and f.about == "lines_of_therapy" and f.sources == ("MedicationRequest/m",)
        for f in summary.findings
    )
    assert {f.message for f in summary.findings if f.about == "lines_of_therapy"} == {
        "a medication is referenced but neither its code nor its name is in the record; this may rest on partial data."
    }


def test_included_medication_resource_is_resolved() -> None:
    record = med_request("m", DOXORUBICIN)
    del record["medicationCodeableConcept"]
    record["medicationReference"] = {"reference": "Medication/dox"}
    medication = {"resourceType": "Medication", "id": "dox", "code": DOXORUBICIN}
    assert summary_of(record, medication).prior_drugs.value == frozenset({"doxorubicin"})


def test_a_medication_written_by_its_ingredients_is_resolved() -> None:
    """A regimen kept as one Medication without a code: its ingredients name the drugs."""
    record = med_request("m", DOXORUBICIN)
    del record["medicationCodeableConcept"]
    record["medicationReference"] = {"reference": "Medication/ai"}
    items = [{"itemCodeableConcept": DOXORUBICIN}, {"itemCodeableConcept": IFOSFAMIDE}]
    medication = {"resourceType": "Medication", "id": "ai", "ingredient": items}
    assert summary_of(record, medication).prior_drugs.value == frozenset({"doxorubicin", "ifosfamide"})


def test_a_referenced_medication_without_code_or_ingredients_leaves_therapy_incomplete() -> None:
    """Never "no prior therapy" (G6) for a drug the record does not name."""
    record = med_request("m", DOXORUBICIN)
    del record["medicationCodeableConcept"]
    record["medicationReference"] = {"reference": "Medication/blank"}
    summary = summary_of(record, {"resourceType": "Medication", "id": "blank", "status": "active"})
    assert summary.therapies == ()
    assert any(
        f.kind is FindingKind.INCOMPLETE and f.about == "lines_of_therapy" and f.sources == ("MedicationRequest/m",)
        for f in summary.findings
    )


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
    cycles = [
        med_administration(f"c{i}", DOXORUBICIN, start=day)
        for i, day in enumerate(["2021-02-01", "2021-02-22", "2021-03-15", "2021-04-05"])
    ]
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
    assert lines == {
        "doxorubicin": 1,
        "ifosfamide": 1,
        "mesna": None,
        "pegfilgrastim": None,
        "gemcitabine": 2,
        "docetaxel": 2,
        "pazopanib": 3,
    }
    assert summary.lines_of_therapy.value == 3


def test_future_start_is_not_an_exposure() -> None:
    summary = summary_of(med_request("plan", DOXORUBICIN, start="2025-06-01"))
    assert summary.therapies == ()
    noted = [
        (f.kind, f.about, f.message, f.sources) for f in summary.findings if f.sources == ("MedicationRequest/plan",)
    ]
    assert noted == [
        (FindingKind.INFO, "prior_drugs", "planned, not yet started; not counted", ("MedicationRequest/plan",))
    ]
    planned = summary.planned_drugs
    assert planned is not None and planned.value == frozenset({"doxorubicin"}) and planned.when == date(2025, 6, 1)
    assert summary.lines_of_therapy.value == 0 and summary.prior_drugs.value == frozenset()


def test_a_drug_started_today_is_given_not_planned() -> None:
    summary = summary_of(METASTASIS, med_request("plan", DOXORUBICIN, start=TODAY.isoformat()))
    assert summary.planned_drugs is None and summary.prior_drugs.value == frozenset({"doxorubicin"})


def test_stop_reason_is_kept() -> None:
    summary = summary_of(
        METASTASIS, med_request("m", DOXORUBICIN, start="2021-02-01", status="stopped", stop_reason="266721009")
    )
    assert summary.therapies[0].stop_reason == "266721009" and summary.therapies[0].status == "stopped"


@pytest.mark.parametrize(
    "first,second,kept",
    [
        ("266721009", "182992009", "182992009"),  # the later record's reason is the course's
        ("182992009", "266721009", "266721009"),
        ("266721009", None, "266721009"),  # a reason on an earlier record still stands
        (None, "266721009", "266721009"),
    ],
)
def test_a_course_keeps_the_stop_reason_of_its_latest_record_that_gives_one(
    first: str | None, second: str | None, kept: str
) -> None:
    cycles = [
        med_request("c1", DOXORUBICIN, start="2021-02-01", status="stopped", stop_reason=first),
        med_request("c2", DOXORUBICIN, start="2021-02-22", status="stopped", stop_reason=second),
    ]
    (course,) = summary_of(METASTASIS, *cycles).therapies
    assert course.stop_reason == kept and course.sources == ("MedicationRequest/c1", "MedicationRequest/c2")


def test_no_therapy_facts() -> None:
    summary = summary_of()
    assert summary.prior_drugs.value == frozenset() and summary.lines_of_therapy.value == 0
    assert summary.prior_anthracycline.value is False


# --- R4: what counts as anticancer treatment of this sarcoma ------------------------------------


def kinds(summary, about: str) -> set[FindingKind]:
    return {f.kind for f in summary.findings if f.about == about}


def given(text: str, start: str = "2021-02-01", **fields) -> dict:
    return med_administration(f"m-{abs(hash((text, start))) % 10**8}", drug_text(text), start=start, **fields)


@pytest.mark.parametrize(
    "text,ingredient",
    [
        ("Adriamycin 50 mg", "doxorubicin"),
        ("Doxil 40 mg", "doxorubicin"),
        ("Caelyx 2 mg/mL", "doxorubicin"),
        ("Ifex 1 g", "ifosfamide"),
        ("Yondelis 1 mg", "trabectedin"),
        ("Votrient 400 mg", "pazopanib"),
        ("Halaven 0.44 mg/mL", "eribulin"),
        ("Gemzar 1 g", "gemcitabine"),
        ("Taxotere 80 mg", "docetaxel"),
        ("DTIC 1 g", "dacarbazine"),
        ("Fyarro 100 mg", "nab-sirolimus"),
    ],
)
def test_brand_names_are_read_through_the_drug_table(text: str, ingredient: str) -> None:
    summary = summary_of(METASTASIS, given(text))
    assert summary.prior_drugs.value == frozenset({ingredient}) and summary.lines_of_therapy.value == 1


@pytest.mark.parametrize(
    "text,drugs",
    [
        ("AIM cycle 2", {"doxorubicin", "ifosfamide"}),
        ("MAID", {"doxorubicin", "ifosfamide", "dacarbazine"}),
        ("Gem/Tax day 8", {"gemcitabine", "docetaxel"}),
        ("GemTax", {"gemcitabine", "docetaxel"}),
        ("gem + tax", {"gemcitabine", "docetaxel"}),
        ("Doxo/Ifo", {"doxorubicin", "ifosfamide"}),
        ("AI regimen", {"doxorubicin", "ifosfamide"}),
        ("Doxo/DTIC", {"doxorubicin", "dacarbazine"}),
        ("AC x4 then weekly paclitaxel x12", {"doxorubicin", "cyclophosphamide", "paclitaxel"}),
        ("EC x4", {"epirubicin", "cyclophosphamide"}),
    ],
)
def test_regimen_abbreviations_are_read_into_their_drugs(text: str, drugs: set[str]) -> None:
    summary = summary_of(METASTASIS, given(text))
    assert summary.prior_drugs.value == frozenset(drugs) and summary.lines_of_therapy.value == 1


@pytest.mark.parametrize(
    "text", ["Aimovig 70 mg", "gemfibrozil 600 mg", "Maidenhair extract", "tax relief", "Steroid injection, AC joint"]
)
def test_regimen_abbreviations_match_whole_words_only(text: str) -> None:
    assert summary_of(METASTASIS, given(text)).therapies == ()


@pytest.mark.parametrize(
    "text",
    [
        "mesna 400 mg",
        "filgrastim 30 MU",
        "ondansetron 8 mg",
        "dexrazoxane 500 mg",
        "tacrolimus 1 mg",
        "mycophenolate mofetil 500 mg",
        "ciclosporin 100 mg",
        "azathioprine 50 mg",
        "sirolimus 2 mg",
        "zoledronic acid 4 mg",
        "denosumab 120 mg (Xgeva)",
        "pamidronate 90 mg",
    ],
)
def test_supportive_drugs_and_immunosuppressants_never_make_a_line(text: str) -> None:
    summary = summary_of(METASTASIS, given(text))
    assert summary.lines_of_therapy.value == 0 and summary.prior_drugs.value == frozenset()
    assert summary.therapies and summary.therapies[0].line is None


def test_sirolimus_given_for_the_sarcoma_is_anticancer_treatment() -> None:
    summary = summary_of(METASTASIS, given("sirolimus 2 mg", reasonReference=[{"reference": "Condition/primary"}]))
    assert summary.lines_of_therapy.value == 1 and summary.prior_drugs.value == frozenset({"sirolimus"})


@pytest.mark.parametrize(
    ("reason", "other"),
    [
        ("Fertility preservation before gonadotoxic chemotherapy (oocyte cryopreservation)", True),
        ("Kidney transplantation", True),
        ("Plaque psoriasis", True),
        ("Synovial sarcoma, lung metastases", False),
    ],
)
def test_a_referenced_condition_naming_another_indication_makes_the_drug_no_line(reason: str, other: bool) -> None:
    """Letrozole during ovarian stimulation before chemotherapy is not hormone therapy of the sarcoma."""
    letrozole = rxnorm("72965", "letrozole")
    record = med_request("let", letrozole, start="2021-02-01", reasonReference=[{"reference": "Condition/why"}])
    summary = summary_of(METASTASIS, condition("why", {"text": reason}), record)
    assert summary.lines_of_therapy.value == int(not other)


@pytest.mark.parametrize(("reason_codes", "unknown"), [([{"text": "Fertility preservation"}], False), ([], True)])
def test_an_unread_drug_given_also_for_another_indication_leaves_the_lines_known(
    reason_codes: list, unknown: bool
) -> None:
    """Zoladex (not in the tables) for ovarian protection, its record also naming the sarcoma: no gap."""
    zoladex = med_request(
        "z",
        drug_text("Zoladex 3.6 mg implant"),
        start="2021-02-01",
        reasonReference=[{"reference": "Condition/primary"}],
    )
    summary = summary_of(METASTASIS, {**zoladex, "reasonCode": reason_codes} if reason_codes else zoladex)
    assert (FindingKind.INCOMPLETE in kinds(summary, "lines_of_therapy")) is unknown


def test_a_drug_given_for_a_transplant_is_no_line() -> None:
    transplant = {"text": "Kidney transplant recipient"}
    summary = summary_of(METASTASIS, given("everolimus 0.75 mg", reasonCode=[transplant]))
    assert summary.lines_of_therapy.value == 0 and summary.therapies[0].purpose == "other-indication"
    kidney = condition("ktx", {"text": "Kidney transplant status"})
    by_reference = given("everolimus 0.75 mg", reasonReference=[{"reference": "Condition/ktx"}])
    summary = summary_of(METASTASIS, kidney, by_reference)
    assert summary.lines_of_therapy.value == 0


BREAST = condition(
    "breast", concept("http://hl7.org/fhir/sid/icd-10-cm", "C50.911"), onset="2015-01-01", clinical="remission"
)


@pytest.mark.parametrize(
    "reason",
    [
        {"reasonReference": [{"reference": "Condition/breast"}]},
        {"reasonCode": [concept("http://hl7.org/fhir/sid/icd-10-cm", "C50.911")]},
    ],
)
def test_a_drug_for_another_cancer_is_no_line_but_counts_as_anthracycline_exposure(reason: dict) -> None:
    summary = summary_of(METASTASIS, BREAST, med_administration("dox", DOXORUBICIN, start="2021-02-01", **reason))
    assert summary.lines_of_therapy.value == 0 and summary.prior_drugs.value == frozenset()
    assert summary.prior_anthracycline.value is True and summary.anthracycline_pretreated.value is False
    assert summary.therapies[0].purpose == "other-cancer"


@pytest.mark.parametrize(
    ("reason", "others", "line"),
    [
        ("ER+ metastatic breast cancer", (BREAST,), 0),
        ("breast ca", (BREAST,), 0),
        ("metastatic disease", (BREAST,), 1),  # names no other cancer: the sarcoma's metastases
        ("metastatic leiomyosarcoma", (BREAST,), 1),
        ("ER+ metastatic breast cancer", (), 1),  # "metastatic" read as the sarcoma's own without another on record
    ],
)
def test_a_reason_in_words_naming_another_cancer_on_record_is_no_sarcoma_line(
    reason: str, others: tuple[dict, ...], line: int
) -> None:
    record = med_administration("dox", DOXORUBICIN, start="2021-02-01", reasonCode=[{"text": reason}])
    assert summary_of(METASTASIS, *others, record).lines_of_therapy.value == line


def test_a_drug_for_a_metastasis_of_another_cancer_is_no_line() -> None:
    bone = secondary("bone", snomed="94222008", onset="2020-06-01", of="Condition/breast")
    record = med_administration(
        "dox", DOXORUBICIN, start="2021-02-01", reasonReference=[{"reference": "Condition/bone"}]
    )
    summary = summary_of(METASTASIS, BREAST, bone, record)
    assert summary.lines_of_therapy.value == 0 and summary.therapies[0].purpose == "other-cancer"


def test_a_drug_whose_reason_names_the_sarcoma_or_its_metastasis_is_a_line() -> None:
    for reason in ("Condition/primary", "Condition/lung"):
        record = med_administration("dox", DOXORUBICIN, start="2021-02-01", reasonReference=[{"reference": reason}])
        assert summary_of(METASTASIS, BREAST, record).lines_of_therapy.value == 1


@pytest.mark.parametrize(
    "record",
    [
        med_administration("x", drug_text("Chemotherapy cycle 3"), start="2021-02-01"),
        med_administration("x", drug_text("Trial drug ABX-101"), start="2021-02-01"),
        med_administration(
            "x", drug_text("ABX-101"), start="2021-02-01", reasonReference=[{"reference": "Condition/primary"}]
        ),
        med_administration(
            "x",
            drug_text("ABX-101"),
            start="2021-02-01",
            meta={"profile": [MCODE + "mcode-cancer-related-medication-administration"]},
        ),
    ],
)
def test_an_oncology_medication_the_tables_cannot_read_leaves_the_line_count_unknown(record: dict) -> None:
    summary = summary_of(METASTASIS, record)
    for fact in ("lines_of_therapy", "prior_drugs", "anthracycline_pretreated", "line_ongoing"):
        assert FindingKind.INCOMPLETE in kinds(summary, fact), fact
    (finding,) = [f for f in summary.findings if f.about == "lines_of_therapy"]
    assert finding.sources == ("MedicationAdministration/x",)
    named = record["medicationCodeableConcept"]["text"]
    assert finding.message == (
        f"a cancer medication ('{named}') could not be identified from its code or name: "
        "the lines of therapy are unknown."
    )


@pytest.mark.parametrize(("reason", "known"), [("Condition/breast", True), ("Condition/primary", False), (None, False)])
def test_an_unreadable_cancer_drug_given_for_another_cancer_leaves_the_sarcoma_line_count_known(
    reason: str | None, known: bool
) -> None:
    fields = {"reasonReference": [{"reference": reason}]} if reason else {}
    record = med_administration("x", drug_text("ABX-101 chemotherapy cycle 2"), start="2021-02-10", **fields)
    summary = summary_of(METASTASIS, BREAST, record)
    assert (FindingKind.INCOMPLETE not in kinds(summary, "lines_of_therapy")) is known
    if known:
        assert summary.lines_of_therapy.value == 0


@pytest.mark.parametrize(
    ("drug", "reason", "lines"),
    [
        ("letrozole 2.5 mg", "Condition/primary", 1),
        ("Verzenio 150 mg", "Condition/breast", 0),
        ("Verzenio 150 mg", "Condition/primary", 1),
    ],
)
def test_endocrine_and_cdk_inhibitor_drugs_are_read_and_count_only_for_the_sarcoma(
    drug: str, reason: str, lines: int
) -> None:
    record = med_administration("x", drug_text(drug), start="2021-06-01", reasonReference=[{"reference": reason}])
    summary = summary_of(METASTASIS, BREAST, record)
    assert not kinds(summary, "lines_of_therapy") - {FindingKind.INFO}
    assert summary.lines_of_therapy.value == lines


def test_an_unreadable_medication_that_does_not_look_like_cancer_treatment_is_ignored() -> None:
    summary = summary_of(METASTASIS, med_administration("x", drug_text("Lisinopril 10 mg"), start="2021-02-01"))
    assert not kinds(summary, "lines_of_therapy")


# --- R4: one line = the drugs given together and continued with the usual delays -----------------


def cycles(drug: dict, *days: str, prefix: str = "c", **fields) -> list[dict]:
    return [med_administration(f"{prefix}{i}", drug, start=day, **fields) for i, day in enumerate(days)]


def line_of(summary) -> dict[str, set[int | None]]:
    out: dict[str, set[int | None]] = {}
    for e in summary.therapies:
        out.setdefault(e.ingredient, set()).add(e.line)
    return out


def test_a_cycle_delayed_beyond_the_course_gap_stays_in_its_line() -> None:
    summary = summary_of(METASTASIS, *cycles(DOXORUBICIN, "2021-02-01", "2021-02-22", "2021-03-15", "2021-05-10"))
    assert len(summary.therapies) == 2 and summary.lines_of_therapy.value == 1  # two courses, one line


@pytest.mark.parametrize("second,courses", [("2021-03-15", 1), ("2021-03-16", 2)])  # 42 and 43 days
def test_course_gap_threshold(second: str, courses: int) -> None:
    summary = summary_of(METASTASIS, *cycles(DOXORUBICIN, "2021-02-01", second))
    assert len(summary.therapies) == courses and summary.lines_of_therapy.value == 1


def test_progression_between_cycles_of_the_same_drug_starts_a_new_line() -> None:
    summary = summary_of(
        METASTASIS,
        *cycles(DOXORUBICIN, "2021-02-01", "2021-02-22", "2021-05-10"),
        disease_status("ds", "worsened", date="2021-04-01"),
    )
    assert line_of(summary) == {"doxorubicin": {1, 2}} and summary.lines_of_therapy.value == 2


@pytest.mark.parametrize("added,lines", [("2021-02-21", 1), ("2021-02-22", 1), ("2021-02-23", 2)])  # 20/21/22 days
def test_a_drug_added_within_the_line_window_joins_the_line(added: str, lines: int) -> None:
    """Doxorubicin's last dose is on day 21: a drug started after it is a switch, not an addition."""
    summary = summary_of(
        METASTASIS,
        *cycles(DOXORUBICIN, "2021-02-01", "2021-02-22"),
        med_administration("ifo", IFOSFAMIDE, start=added),
    )
    assert summary.lines_of_therapy.value == lines


@pytest.mark.parametrize("added,lines", [("2021-03-01", 1), ("2021-03-15", 1), ("2021-03-16", 2)])  # 28/42/43 days
def test_a_drug_added_to_a_line_still_given_joins_it_within_the_course_gap(added: str, lines: int) -> None:
    """Ifosfamide held at cycle 1 and given from cycle 2 while doxorubicin goes on: one line."""
    summary = summary_of(
        METASTASIS,
        *cycles(DOXORUBICIN, "2021-02-01", "2021-03-01", "2021-03-22", "2021-04-12"),
        med_administration("ifo", IFOSFAMIDE, start=added),
    )
    assert summary.lines_of_therapy.value == lines


def test_a_new_drug_after_the_line_window_is_a_new_line_even_without_progression() -> None:
    summary = summary_of(
        METASTASIS,
        *cycles(DOXORUBICIN, "2021-02-01", "2021-02-22"),
        med_statement("paz", drug_text("pazopanib 800 mg"), start="2021-06-01"),
    )
    assert line_of(summary) == {"doxorubicin": {1}, "pazopanib": {2}}


# --- R4: the line in progress --------------------------------------------------------------------


@pytest.mark.parametrize("last,ongoing", [("2024-11-21", True), ("2024-11-20", True), ("2024-11-19", False)])
def test_a_line_is_in_progress_while_its_last_dose_is_within_the_course_gap(last: str, ongoing: bool) -> None:
    """Last dose 41, 42 and 43 days before today (course gap 42 days), all records completed."""
    summary = summary_of(METASTASIS, *cycles(DOXORUBICIN, "2024-10-08", "2024-10-29", last))
    assert summary.line_ongoing.value is ongoing
    assert (summary.current_line.value if summary.current_line else None) == (1 if ongoing else None)


def test_the_current_line_says_which_line_and_when_it_started() -> None:
    summary = summary_of(
        METASTASIS,
        *cycles(DOXORUBICIN, "2021-02-01", "2021-02-22"),
        disease_status("ds", "worsened", date="2021-06-01"),
        med_request("gem", rxnorm("1719003"), start="2024-11-01", status="active"),
    )
    assert summary.current_line.value == 2 and summary.current_line.when == date(2024, 11, 1)
    assert "line 2 (gemcitabine) since 2024-11-01" in summary.current_line.basis
    assert summary.line_ongoing.value is True


def test_a_line_with_progression_since_it_began_is_not_ongoing() -> None:
    summary = summary_of(
        METASTASIS,
        med_request("gem", rxnorm("1719003"), start="2024-11-01", status="active"),
        disease_status("ds", "worsened", date="2024-12-15"),
    )
    assert summary.line_ongoing.value is False and summary.current_line is None
    stopped = summary_of(
        METASTASIS,
        med_request(
            "gem", rxnorm("1719003"), start="2024-11-01", end="2024-12-20", status="stopped", stop_reason="266721009"
        ),
    )
    assert stopped.line_ongoing.value is False


def test_no_line_is_no_line_in_progress() -> None:
    summary = summary_of()
    assert summary.line_ongoing.value is False and summary.current_line is None


# --- R4: perioperative chemotherapy and anthracycline pretreatment --------------------------------


def periop_then_relapse(relapse: str) -> object:
    return summary_of(secondary("lung", onset=relapse), *cycles(DOXORUBICIN, "2020-02-01", "2020-02-22", "2020-03-15"))


@pytest.mark.parametrize("relapse,pretreated", [("2021-03-14", True), ("2021-03-15", True), ("2021-03-16", False)])
def test_relapse_within_12_months_of_perioperative_anthracycline_is_anthracycline_pretreated(
    relapse: str, pretreated: bool
) -> None:
    summary = periop_then_relapse(relapse)
    assert summary.lines_of_therapy.value == 0 and summary.therapies[0].setting == "perioperative"
    assert summary.anthracycline_pretreated.value is pretreated


def test_an_anthracycline_in_a_line_for_advanced_disease_is_pretreatment() -> None:
    summary = summary_of(METASTASIS, med_administration("dox", DOXORUBICIN, start="2021-02-01"))
    assert summary.anthracycline_pretreated.value is True


def test_no_anthracycline_is_no_pretreatment() -> None:
    summary = summary_of(METASTASIS, med_administration("gem", rxnorm("1719003"), start="2021-02-01"))
    assert summary.anthracycline_pretreated.value is False


def test_perioperative_anthracycline_with_an_undated_metastasis_leaves_pretreatment_unknown() -> None:
    summary = summary_of(secondary("lung", onset=None), med_administration("dox", DOXORUBICIN, start="2020-02-01"))
    assert summary.anthracycline_pretreated is None


def test_an_undated_anthracycline_leaves_pretreatment_unknown() -> None:
    undated = med_statement("dox", DOXORUBICIN)
    del undated["effectiveDateTime"]
    assert summary_of(METASTASIS, undated).anthracycline_pretreated is None


# --- the cards (R4) ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge(CARDS)


def shown(kb: KnowledgeBase, *resources, relapse: str = "2021-01-01") -> set[str]:
    summary = summarise(
        [
            patient(birthDate="1965-01-01"),
            PRIMARY,
            secondary("liver", snomed="94381002", onset=relapse),
            ecog("e", 1, date="2024-12-01"),
            *resources,
        ],
        today=TODAY,
    )
    return {m.statement.id for m in match(summary, kb)}


def test_relapse_soon_after_perioperative_anthracycline_gets_pazopanib_not_doxorubicin_again(kb) -> None:
    soon = shown(kb, *cycles(DOXORUBICIN, "2020-02-01", "2020-02-22"))
    assert "S42" in soon and not {"S28", "S29", "S30", "S31", "S32"} & soon
    late = shown(kb, *cycles(DOXORUBICIN, "2020-02-01", "2020-02-22"), relapse="2021-06-01")
    assert "S28" in late and "S42" not in late


def test_later_line_options_wait_while_a_line_is_in_progress(kb) -> None:
    first = cycles(DOXORUBICIN, "2021-02-01", "2021-02-22", prefix="d")
    ongoing = shown(
        kb,
        *first,
        disease_status("ds", "worsened", date="2021-06-01"),
        med_request("gem", rxnorm("1719003"), start="2024-11-01", status="active"),
    )
    assert not {"S38", "S39", "S40", "S41", "S42", "S43"} & ongoing
    progressed = shown(
        kb,
        *first,
        disease_status("ds", "worsened", date="2021-06-01"),
        med_request("gem", rxnorm("1719003"), start="2024-06-01", end="2024-09-01", status="completed"),
        disease_status("ds2", "worsened", date="2024-10-01"),
    )
    assert {"S38", "S39", "S40", "S42"} <= progressed


# --- the drug tables are data, checked at load ---------------------------------------------------


def test_the_drug_tables_refuse_unknown_keys_and_drugs_without_an_ingredient_entry() -> None:
    import yaml
    from pydantic import ValidationError

    from cds_service.summary.drugs import DrugTables

    text = (Path(__file__).resolve().parents[2] / "cds_service/summary/drugs.yaml").read_text()
    good = yaml.safe_load(text)
    DrugTables.model_validate(good)
    with pytest.raises(ValidationError, match="dosis"):
        DrugTables.model_validate({**good, "dosis": 1})
    with pytest.raises(ValidationError, match="regimens: unobtainium"):
        DrugTables.model_validate({**good, "regimens": [{"names": ["X"], "drugs": ["unobtainium"]}]})
    with pytest.raises(ValidationError, match="class"):
        DrugTables.model_validate({**good, "ingredients": {"x": {"class": "miracle", "names": ["x"]}}})


# --- progression and the line boundaries, to the day -------------------------------------------------


def test_progression_on_the_day_a_line_starts_belongs_to_the_line_before() -> None:
    """The worsening that led to line 2 does not also split line 2 when a drug joins it."""
    summary = summary_of(
        METASTASIS,
        med_administration("dox", DOXORUBICIN, start="2021-02-01"),
        disease_status("ds", "worsened", date="2021-06-01"),
        med_administration("gem", rxnorm("1719003"), start="2021-06-01"),
        med_administration("doc", drug_text("docetaxel 100 mg"), start="2021-06-10"),
    )
    assert line_of(summary) == {"doxorubicin": {1}, "gemcitabine": {2}, "docetaxel": {2}}


def test_a_course_of_the_same_drug_starting_on_the_day_of_progression_is_a_new_line() -> None:
    summary = summary_of(
        METASTASIS,
        med_administration("d1", DOXORUBICIN, start="2021-02-01"),
        disease_status("ds", "worsened", date="2021-05-01"),
        med_administration("d2", DOXORUBICIN, start="2021-05-01"),
    )
    assert line_of(summary) == {"doxorubicin": {1, 2}}


def test_only_a_worsened_status_is_progression() -> None:
    dose = med_request("gem", rxnorm("1719003"), start="2024-11-01", status="active")
    stable = summary_of(METASTASIS, dose, disease_status("ds", "stable", date="2024-12-15"))
    assert stable.line_ongoing.value is True and stable.current_line.value == 1
    unreadable = disease_status("ds", "stable", date="2024-12-15")
    unreadable["valueCodeableConcept"] = concept("http://snomed.info/sct", "123456")
    assert summary_of(METASTASIS, dose, unreadable).line_ongoing.value is True


def test_a_line_stopped_for_no_response_is_dated_by_its_last_record() -> None:
    stopped = med_statement("gem", rxnorm("1719003"), start="2024-11-01", status="stopped", stop_reason="266721009")
    summary = summary_of(METASTASIS, stopped)
    assert summary.line_ongoing.value is False
    assert summary.line_ongoing.basis == "progression recorded on line 1 (gemcitabine) on 2024-11-01"
    assert summary.line_ongoing.sources == ("MedicationStatement/gem",)


def test_a_line_stopped_for_no_response_is_dated_by_the_end_of_its_record() -> None:
    stopped = med_request(
        "gem", rxnorm("1719003"), start="2024-11-01", end="2024-12-20", status="stopped", stop_reason="266721009"
    )
    summary = summary_of(METASTASIS, stopped)
    assert summary.line_ongoing.basis == "progression recorded on line 1 (gemcitabine) on 2024-12-20"


def test_the_line_in_progress_in_full() -> None:
    summary = summary_of(
        METASTASIS,
        med_request("dox", DOXORUBICIN, start="2024-11-01", status="active"),
        med_request("ifo", IFOSFAMIDE, start="2024-11-02", status="active"),
    )
    basis = "line 1 (doxorubicin, ifosfamide) since 2024-11-01, no progression recorded since"
    refs = ("MedicationRequest/dox", "MedicationRequest/ifo")
    current, ongoing = summary.current_line, summary.line_ongoing
    assert (current.value, current.sources, current.basis, current.when) == (1, refs, basis, date(2024, 11, 1))
    assert (ongoing.value, ongoing.sources, ongoing.basis, ongoing.when) == (True, refs, basis, date(2024, 11, 1))


def test_no_line_in_full() -> None:
    ongoing = summary_of(METASTASIS).line_ongoing
    assert (ongoing.value, ongoing.sources, ongoing.basis) == (False, (), "no line of therapy for advanced disease")


def test_a_finished_line_says_when_it_was_last_given() -> None:
    summary = summary_of(METASTASIS, med_statement("gem", rxnorm("1719003"), start="2024-06-01", end="2024-08-15"))
    ongoing = summary.line_ongoing
    assert (ongoing.value, ongoing.sources, ongoing.basis) == (
        False,
        ("MedicationStatement/gem",),
        "line 1 (gemcitabine) last given 2024-08-15; no progression recorded since",
    )


def test_the_worsening_that_led_to_a_line_does_not_stop_it() -> None:
    summary = summary_of(
        METASTASIS,
        med_administration("dox", DOXORUBICIN, start="2021-02-01"),
        disease_status("ds", "worsened", date="2024-11-01"),
        med_request("gem", rxnorm("1719003"), start="2024-11-01", status="active"),
    )
    assert summary.current_line.value == 2 and summary.line_ongoing.value is True


def test_progression_during_a_line_is_cited_with_the_line() -> None:
    summary = summary_of(
        METASTASIS,
        med_request("gem", rxnorm("1719003"), start="2024-11-01", status="active"),
        disease_status("ds", "worsened", date="2024-12-15"),
    )
    assert summary.line_ongoing.sources == ("MedicationRequest/gem", "Observation/ds")
    assert summary.line_ongoing.basis == "progression recorded on line 1 (gemcitabine) on 2024-12-15"


def test_a_delayed_course_of_a_drug_added_to_the_line_stays_in_the_line() -> None:
    summary = summary_of(
        METASTASIS,
        med_administration("dox", DOXORUBICIN, start="2021-02-01"),
        med_administration("ifo1", IFOSFAMIDE, start="2021-02-10"),
        med_administration("ifo2", IFOSFAMIDE, start="2021-05-01"),  # 80 days later: a new course, same line
    )
    assert line_of(summary) == {"doxorubicin": {1}, "ifosfamide": {1}} and summary.lines_of_therapy.value == 1


def palliative(record: dict, code: str = "363676003") -> dict:
    """The record with an mCODE treatment intent (363676003 palliative, 373808002 curative)."""
    intent = {
        "url": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-procedure-intent",
        "valueCodeableConcept": concept(SNOMED, code),
    }
    return {**record, "extension": [intent]}


def test_a_palliative_course_before_metastases_is_a_line_of_therapy() -> None:
    given = med_statement("ms", DOXORUBICIN, start="2020-03-01", end="2020-06-01")
    counted = summary_of(METASTASIS, palliative(given))
    assert counted.therapies[0].setting == "advanced" and counted.lines_of_therapy.value == 1
    assert counted.anthracycline_pretreated.value is True
    curative = summary_of(METASTASIS, palliative(given, "373808002"))
    assert curative.therapies[0].setting == "perioperative" and curative.lines_of_therapy.value == 0


@pytest.mark.parametrize("days,progressed", [(42, False), (43, True)])
def test_a_metastasis_well_after_a_line_began_is_progression_on_it(days: int, progressed: bool) -> None:
    start = date(2021, 1, 4)
    onset = date.fromordinal(start.toordinal() + days).isoformat()
    first = secondary("lung", onset="2020-12-01")
    later = secondary("liver", snomed="94381002", onset=onset)
    summary = summary_of(first, later, med_statement("ms", DOXORUBICIN, start=start.isoformat(), end="2021-03-01"))
    assert (summary.progression is not None and summary.progression.value is True) is progressed


# --- R4: the reason a record gives, coded or in words ---------------------------------------------

ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"


@pytest.mark.parametrize(
    "reason,doxorubicin,sirolimus_is_a_line",
    [
        # this sarcoma (a leiomyosarcoma of the thigh), its metastases and recurrences: a line
        (concept(SNOMED, "94391008"), "anticancer", True),  # secondary malignant neoplasm of lung
        (concept(ICD10_CM, "C78.01"), "anticancer", True),
        (concept(ICD10_CM, "C77.4"), "anticancer", True),  # inguinal nodes
        (concept(SNOMED, "25173007"), "anticancer", True),  # local recurrence
        (concept(SNOMED, "443719001"), "anticancer", True),  # leiomyosarcoma
        (concept(SNOMED, "424413001"), "anticancer", True),  # sarcoma, no subtype
        (concept(ICD10_CM, "C49.22"), "anticancer", True),  # soft tissue of the thigh
        (concept(ICD10_CM, "C48.0"), "anticancer", True),  # retroperitoneum
        ({"text": "Local recurrence of the thigh tumour"}, "anticancer", True),
        ({"text": "Lung metastases"}, "anticancer", True),
        ({"text": "Leiomyosarcoma of the thigh"}, "anticancer", True),
        ({"text": "Sarcoma"}, "anticancer", True),
        # another cancer: no line
        (concept(SNOMED, "420120006"), "other-cancer", False),  # GIST
        (concept(ICD10_CM, "C49.A0"), "other-cancer", False),  # GIST
        (concept(SNOMED, "363346000"), "other-cancer", False),  # malignant neoplastic disease
        (concept(ICD10_CM, "C50.911"), "other-cancer", False),  # breast
        ({"text": "Gastrointestinal stromal tumour"}, "other-cancer", False),
        ({"text": "Breast carcinoma"}, "other-cancer", False),
        # another indication: no line; a reason naming nothing reads as this sarcoma for doxorubicin only
        ({"text": "Kidney transplant"}, "other-indication", False),
        ({"text": "Pain"}, "anticancer", False),
        (concept(SNOMED, "22298006"), "anticancer", False),  # myocardial infarction
    ],
)
def test_a_coded_or_written_reason_decides_whether_a_course_is_a_line_for_the_sarcoma(
    reason: dict, doxorubicin: str, sirolimus_is_a_line: bool
) -> None:
    dox = summary_of(METASTASIS, med_administration("dox", DOXORUBICIN, start="2021-02-01", reasonCode=[reason]))
    assert dox.therapies[0].purpose == doxorubicin
    assert dox.lines_of_therapy.value == int(doxorubicin == "anticancer")
    sirolimus = summary_of(METASTASIS, given("sirolimus 2 mg", reasonCode=[reason]))
    assert sirolimus.lines_of_therapy.value == int(sirolimus_is_a_line)


@pytest.mark.parametrize(
    "reason,is_a_line",
    [
        (concept(SNOMED, "94391008"), True),  # the sarcoma's lung metastasis
        (concept(ICD10_CM, "C78.01"), True),
        ({"text": "Lung metastases"}, True),
        (concept(SNOMED, "22298006"), False),  # naming no cancer
        ({"text": "Pain"}, False),
    ],
)
def test_a_drug_given_for_another_cancer_and_for_the_sarcoma_is_a_line(reason: dict, is_a_line: bool) -> None:
    both = {"reasonReference": [{"reference": "Condition/breast"}], "reasonCode": [reason]}
    summary = summary_of(METASTASIS, BREAST, med_administration("dox", DOXORUBICIN, start="2021-02-01", **both))
    assert summary.lines_of_therapy.value == int(is_a_line)


def test_undated_records_of_one_drug_are_courses_of_their_own() -> None:
    undated = [med_statement("a", DOXORUBICIN, start=None), med_statement("b", DOXORUBICIN, start=None)]
    summary = summary_of(*undated)
    assert [(t.ingredient, t.sources) for t in summary.therapies] == [
        ("doxorubicin", ("MedicationStatement/a",)),
        ("doxorubicin", ("MedicationStatement/b",)),
    ]


def test_therapy_of_a_metastatic_patient_whose_first_metastasis_is_undated_cannot_be_placed() -> None:
    summary = summary_of(secondary("lung", onset=None), med_statement("d", DOXORUBICIN, start="2021-02-01"))
    assert [(f.kind, f.message, f.sources) for f in summary.findings if f.about == "lines_of_therapy"] == [
        (
            FindingKind.INCOMPLETE,
            "the date the disease spread or recurred is not recorded: whether the drugs were perioperative or "
            "for advanced disease cannot be told",
            ("MedicationStatement/d",),
        )
    ]


def test_chemotherapy_for_a_metastasis_since_resected_was_a_line_for_advanced_disease() -> None:
    """Doxorubicin given for a lung metastasis (resected, resolved since); a new metastasis now: one line
    given, anthracycline-pretreated, not "first line" again."""
    resolved = secondary("met-1", of="Condition/primary", onset="2022-01-10", clinical="resolved")
    new = secondary("met-2", of="Condition/primary", onset="2024-10-01")
    dox = med_statement("dox", DOXORUBICIN, start="2022-02-01", end="2022-06-15")
    summary = summary_of(resolved, dox, new)
    assert summary.lines_of_therapy.value == 1 and summary.anthracycline_pretreated.value is True
    assert [t.setting for t in summary.therapies] == ["advanced"]
    before = summary_of(dox, new)  # no metastasis before it: perioperative, more than 12 months before relapse
    assert before.lines_of_therapy.value == 0 and [t.setting for t in before.therapies] == ["perioperative"]


@pytest.mark.parametrize(("last_dose", "given"), [("2024-11-20", True), ("2024-11-19", False)])
def test_a_perioperative_course_is_in_progress_until_its_next_cycle_is_overdue(last_dose: str, given: bool) -> None:
    """No metastasis: doxorubicin and ifosfamide before surgery, the last dose 42 days before today or
    one day more (the line-grouping window)."""
    ifosfamide = rxnorm("5657", "ifosfamide")
    summary = summary_of(
        med_statement("dox", DOXORUBICIN, start="2024-10-01", end=last_dose),
        med_statement("ifo", ifosfamide, start="2024-10-01", end=last_dose),
    )
    fact = summary.perioperative_in_progress
    if not given:
        assert fact is None
        return
    assert (fact.value, fact.sources, fact.when) == (
        frozenset({"doxorubicin", "ifosfamide"}),
        ("MedicationStatement/dox", "MedicationStatement/ifo"),
        date(2024, 10, 1),
    )


def test_a_course_for_metastatic_disease_is_a_line_not_a_perioperative_course() -> None:
    summary = summary_of(
        secondary("lung", onset="2024-09-01"), med_statement("dox", DOXORUBICIN, start="2024-10-01", status="active")
    )
    assert summary.perioperative_in_progress is None and summary.line_ongoing.value is True


@pytest.mark.parametrize(
    "reference",
    ["Medication/m1", "Medication/m1/_history/2", "https://ehr.example/fhir/Medication/m1"],
)
def test_a_referenced_medication_is_found_however_the_reference_is_written(reference: str) -> None:
    medication = {"resourceType": "Medication", "id": "m1", "code": rxnorm("3639", "doxorubicin")}
    given = med_statement("s", rxnorm("3639"), start="2021-02-01", end="2021-05-01")
    given.pop("medicationCodeableConcept")
    given["medicationReference"] = {"reference": reference}
    summary = summarise([PRIMARY, secondary("lung", onset="2021-01-01"), medication, given], today=TODAY)
    assert summary.prior_drugs.value == frozenset({"doxorubicin"}) and summary.lines_of_therapy.value == 1


@pytest.mark.parametrize(
    ("coding", "drugs_read"),
    [
        ({"system": "http://www.whocc.no/atc", "code": "L01DB01"}, {"doxorubicin"}),
        ({"system": "http://www.whocc.no/atc", "code": "L01AA06"}, {"ifosfamide"}),
        ({"system": "http://www.whocc.no/atc", "code": "L01XE99"}, set()),  # an antineoplastic not listed
    ],
)
def test_a_drug_coded_in_atc_is_read(coding: dict, drugs_read: set[str]) -> None:
    given = med_statement("a", {"coding": [coding]}, start="2021-02-01", end="2021-05-01")
    summary = summarise([PRIMARY, secondary("lung", onset="2021-01-01"), given], today=TODAY)
    assert summary.prior_drugs.value == frozenset(drugs_read)
    unreadable = any(f.kind is FindingKind.INCOMPLETE and f.about == "lines_of_therapy" for f in summary.findings)
    assert unreadable is not bool(drugs_read)  # an unlisted L01 code leaves the line count unknown, never "none"


def _stopped_order(reason: str) -> dict:
    order = med_request("o", DOXORUBICIN, start="2021-02-01", authored="2021-01-25", status="stopped")
    return {**order, "statusReason": {"text": reason}}


@pytest.mark.parametrize(
    "reason",
    ["Cancelled before C1D1: admitted with PE", "Discontinued prior to first administration - admitted with SBO"],
)
def test_an_order_stopped_before_it_was_given_is_no_line_and_is_named(reason: str) -> None:
    summary = summarise([PRIMARY, METASTASIS, _stopped_order(reason)], today=TODAY)
    assert summary.prior_drugs.value == frozenset() and summary.lines_of_therapy.value == 0
    named = summary.drugs_not_given
    assert named is not None and named.value == frozenset({"doxorubicin"}) and named.sources == ("MedicationRequest/o",)


@pytest.mark.parametrize(
    "reason",
    ["Discontinued before first dose", "Stopped after cycle 3: cardiotoxicity", "Cycle 4 not given: neutropenia"],
)
def test_beside_doses_given_a_stopped_order_changes_nothing(reason: str) -> None:
    given = med_administration("a", DOXORUBICIN, start="2021-02-01")
    summary = summarise([PRIMARY, METASTASIS, given, _stopped_order(reason)], today=TODAY)
    assert summary.prior_drugs.value == frozenset({"doxorubicin"}) and summary.lines_of_therapy.value == 1
    assert summary.drugs_not_given is None


@pytest.mark.parametrize("reason", ["Stopped after cycle 3: cardiotoxicity", "Cycle 4 not given: neutropenia"])
def test_an_order_stopped_for_another_reason_is_a_line_given(reason: str) -> None:
    summary = summarise([PRIMARY, METASTASIS, _stopped_order(reason)], today=TODAY)
    assert summary.prior_drugs.value == frozenset({"doxorubicin"}) and summary.lines_of_therapy.value == 1
    assert summary.drugs_not_given is None


@pytest.mark.parametrize(
    ("note", "given"),
    [("C1 deferred: performance status deteriorated.", False), ("Cycle 4 on hold for neutropenia.", True)],
)
def test_an_order_on_hold_whose_note_says_the_first_cycle_was_deferred_is_no_line(note: str, given: bool) -> None:
    order = med_request("o", DOXORUBICIN, start="2021-02-01", authored="2021-01-25", status="on-hold")
    summary = summarise([PRIMARY, METASTASIS, {**order, "note": [{"text": note}]}], today=TODAY)
    assert summary.lines_of_therapy.value == int(given)
    assert (summary.drugs_not_given is None) is given


@pytest.mark.parametrize(("later_order", "held"), [(None, True), ("active", False)])
def test_a_line_whose_latest_order_is_on_hold_is_held(later_order: str | None, held: bool) -> None:
    """A cycle deferred after doses were given: the line goes on, and the card says its order is on hold;
    an older order left on hold before a newer active one is not."""
    given = med_administration("a1", DOXORUBICIN, start="2021-02-01")
    hold = {**med_request("o1", DOXORUBICIN, start="2021-01-25", status="on-hold"), "note": [{"text": "C3 deferred"}]}
    newer = [med_request("o2", DOXORUBICIN, start="2021-03-01", status=later_order)] if later_order else []
    summary = summarise([PRIMARY, METASTASIS, given, hold, *newer], today=date(2021, 3, 15))
    assert summary.lines_of_therapy.value == 1 and summary.line_ongoing.value is True
    assert [t.held for t in summary.therapies] == [held]


@pytest.mark.parametrize(("status", "ongoing"), [("stopped", False), ("active", True), ("completed", True)])
def test_a_line_whose_order_was_stopped_is_no_longer_in_progress(status: str, ongoing: bool) -> None:
    """Doxorubicin stopped for cardiotoxicity 20 days after the last dose: not "on 1st line". A completed
    order (each cycle's order completes once given) leaves the recent dose to say the line goes on."""
    given = med_administration("a1", DOXORUBICIN, start="2021-02-24")
    order = med_request("o1", DOXORUBICIN, start="2021-02-01", status=status, stop_reason="407563006")
    summary = summarise([PRIMARY, METASTASIS, given, order], today=date(2021, 3, 15))
    assert summary.lines_of_therapy.value == 1 and summary.line_ongoing.value is ongoing


def _dispensed(id: str, on: str, *, order: str | None = None) -> dict:
    """Pazopanib handed over by the pharmacy on ``on``, carrying out ``order`` if named."""
    dispense = {
        "resourceType": "MedicationDispense",
        "id": id,
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": rxnorm("714438", "pazopanib"),
        "whenHandedOver": on,
    }
    return {**dispense, "authorizingPrescription": [{"reference": order}]} if order else dispense


@pytest.mark.parametrize(("status", "lines"), [("completed", 1), ("in-progress", 1), ("cancelled", 0), ("declined", 0)])
def test_a_pharmacys_dispenses_of_an_oral_drug_are_a_line_once_handed_over(status: str, lines: int) -> None:
    records = [{**_dispensed(f"d{i}", on), "status": status} for i, on in enumerate(("2021-02-01", "2021-03-01"))]
    assert summary_of(METASTASIS, *records).lines_of_therapy.value == lines


@pytest.mark.parametrize(("reason", "lines"), [("Condition/breast", 0), ("Condition/primary", 1)])
def test_a_dispense_takes_its_reason_from_the_prescription_it_carries_out(reason: str, lines: int) -> None:
    order = med_request("rx", rxnorm("714438", "pazopanib"), start="2021-02-01", status="active")
    order["reasonReference"] = [{"reference": reason}]
    dispenses = [
        _dispensed(f"d{i}", on, order="MedicationRequest/rx") for i, on in enumerate(("2021-02-01", "2021-03-01"))
    ]
    summary = summary_of(METASTASIS, BREAST, order, *dispenses)
    assert summary.lines_of_therapy.value == lines


@pytest.mark.parametrize(
    ("text", "high_dose"),
    [
        ("HD-IFO (ifosfamide 14 g/m2 continuous infusion over 14 days) q28d", {"ifosfamide"}),
        ("High-dose ifosfamide", {"ifosfamide"}),
        ("Ifosfamide 3 g/m2 days 1-3", set()),
        ("ifosfamide 12 g/m2 over 6 days", {"ifosfamide"}),  # the threshold: high dose
        ("ifosfamide 11.9 g/m2 over 6 days", set()),  # just under the threshold
        ("ifosfamide 10 g/m2 over 5 days", set()),
        ("Ifosfamide 1 g/m2/day CIV days 1-14 q28d", {"ifosfamide"}),  # 14 g/m² a cycle
        ("Ifosfamide 2 g/m2 daily x 5 days", set()),  # 10 g/m² a cycle
        ("Ifosfamide 3 g/m2/day", set()),  # days not written: read as written
    ],
)
def test_a_drug_named_as_given_at_high_dose_is_read(text: str, high_dose: set[str]) -> None:
    record = med_administration("ifo", drug_text(text), start="2021-02-01")
    summary = summary_of(METASTASIS, record)
    assert summary.prior_drugs.value == {"ifosfamide"} and summary.high_dose_drugs.value == high_dose


def _chemotherapy_procedure(text: str, *, start: str = "2021-02-01", **fields) -> dict:
    """Chemotherapy recorded as a Procedure only ("given at another hospital")."""
    return {
        "resourceType": "Procedure",
        "id": "chemo",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SNOMED, "code": "367336001", "display": "Chemotherapy"}], "text": text},
        "performedPeriod": {"start": start, "end": "2021-05-01"},
        **fields,
    }


@pytest.mark.parametrize(
    ("records", "known"),
    [
        ([_chemotherapy_procedure("Palliative chemotherapy - doxorubicin q3w x 6 (other hospital)")], False),
        # the drugs given over the same months are on record: the procedure adds nothing
        ([_chemotherapy_procedure("Chemotherapy"), med_administration("d", DOXORUBICIN, start="2021-02-01")], True),
        # an order still active, authored months before the cycle recorded as a procedure: its drugs
        (
            [
                _chemotherapy_procedure("Chemotherapy", start="2021-04-01"),
                med_request("d", DOXORUBICIN, start=None, authored="2021-01-05", status="active"),
            ],
            True,
        ),
        # the drugs on record ended more than the course gap (42 days) before it began: not these drugs
        (
            [
                _chemotherapy_procedure("Chemotherapy", start="2021-03-16"),
                med_statement("d", DOXORUBICIN, start="2021-02-01"),
            ],
            False,
        ),
        (
            [
                _chemotherapy_procedure("Chemotherapy", start="2021-03-15"),
                med_statement("d", DOXORUBICIN, start="2021-02-01"),
            ],
            True,
        ),
        (
            [
                {
                    **_chemotherapy_procedure("Insertion of port for chemotherapy"),
                    "code": {"text": "Insertion of port for chemotherapy"},
                }
            ],
            True,
        ),
        ([{**_chemotherapy_procedure("x"), "code": {"text": "Wide excision after neoadjuvant chemotherapy"}}], True),
        ([BREAST, _chemotherapy_procedure("Chemotherapy", reasonReference=[{"reference": "Condition/breast"}])], True),
    ],
)
def test_chemotherapy_recorded_only_as_a_procedure_leaves_the_lines_unknown(records: list, known: bool) -> None:
    summary = summary_of(METASTASIS, *records)
    assert (FindingKind.INCOMPLETE not in kinds(summary, "lines_of_therapy")) is known


EPIRUBICIN = rxnorm("3995", "epirubicin")
GEMCITABINE = rxnorm("12574", "gemcitabine")


@pytest.mark.parametrize(
    ("earlier", "now", "again"),
    [
        # epirubicin for a breast cancer in 2009, doxorubicin for the sarcoma now: each cycle adds to the dose
        (
            [med_statement("fec", EPIRUBICIN, start="2009-03-01", reasonReference=[{"reference": "Condition/breast"}])],
            DOXORUBICIN,
            True,
        ),
        # its own earlier cycles, split from the latest by a 7-week delay, are the same course
        ([med_administration("c1", DOXORUBICIN, start="2020-12-01")], DOXORUBICIN, False),
        # gemcitabine now after the breast cancer's epirubicin: no anthracycline is being given
        (
            [med_statement("fec", EPIRUBICIN, start="2009-03-01", reasonReference=[{"reference": "Condition/breast"}])],
            GEMCITABINE,
            False,
        ),
    ],
)
def test_an_anthracycline_given_now_after_an_earlier_one_is_named_for_the_dose_caution(
    earlier: list, now: dict, again: bool
) -> None:
    current = med_administration("now", now, start="2021-01-20")
    summary = summarise(
        [PRIMARY, secondary("lung", onset="2020-11-01"), BREAST, *earlier, current], today=date(2021, 2, 1)
    )
    assert summary.anthracycline_again.value is again


@pytest.mark.parametrize(
    ("text", "unknown"),
    [
        ("Transferred: stable disease after 4 cycles of doxorubicin given at Regional Hospital.", True),
        ("Plan: doxorubicin 75 mg/m2 from next week.", False),  # planned, not given
    ],
)
def test_a_drug_a_note_says_was_given_but_the_record_does_not_hold_leaves_the_lines_unknown(
    text: str, unknown: bool
) -> None:
    note = observation("pn", concept(LOINC, "11506-3"), value={"valueString": text}, date="2021-06-01")
    summary = summary_of(METASTASIS, note)
    assert (FindingKind.INCOMPLETE in kinds(summary, "lines_of_therapy")) is unknown
