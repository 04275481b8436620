"""What earlier curative treatment means for advanced disease (R4): anthracycline pretreatment and the
disease-free interval from the end of curative treatment, each fact with its sources and wording."""

from __future__ import annotations

from datetime import date

import pytest
from fhir_builders import (
    condition,
    excision,
    med_administration,
    med_statement,
    primary,
    radiotherapy,
    rxnorm,
    secondary,
    tnm,
)

from cds_service.summary import summarise

TODAY = date(2025, 1, 1)
PRIMARY = primary(snomed="443719001", body_site="61685007", onset="2020-01-01")
DOXORUBICIN = rxnorm("3639", "doxorubicin")
GEMCITABINE = rxnorm("1719003")


def summary_of(*resources):
    return summarise([PRIMARY, *resources], today=TODAY)


def provenance(fact) -> tuple:
    return (fact.value, fact.sources, fact.basis, fact.when)


def test_no_anthracycline_for_this_tumour() -> None:
    summary = summary_of(secondary("lung", onset="2021-01-01"))
    assert provenance(summary.anthracycline_pretreated) == (False, (), "no anthracycline for this tumour", None)


def test_an_anthracycline_in_a_later_line_names_the_line() -> None:
    summary = summary_of(
        secondary("lung", onset="2021-01-01"),
        med_administration("gem", GEMCITABINE, start="2021-02-01"),
        med_administration("dox", DOXORUBICIN, start="2021-09-01"),
    )
    assert provenance(summary.anthracycline_pretreated) == (
        True,
        ("MedicationAdministration/dox",),
        "doxorubicin in line 2 for advanced disease",
        None,
    )


def test_perioperative_anthracycline_without_relapse_is_no_pretreatment() -> None:
    summary = summary_of(med_administration("dox", DOXORUBICIN, start="2020-03-15"), tnm("m", "M0"))
    assert provenance(summary.anthracycline_pretreated) == (
        False,
        ("MedicationAdministration/dox",),
        "perioperative anthracycline; no relapse recorded",
        None,
    )


@pytest.mark.parametrize(
    "relapse,pretreated,how",
    [("2021-03-15", True, "12 months or less later"), ("2021-03-16", False, "more than 12 months later")],
)
def test_relapse_after_perioperative_anthracycline_says_when_each_happened(
    relapse: str, pretreated: bool, how: str
) -> None:
    summary = summary_of(med_administration("dox", DOXORUBICIN, start="2020-03-15"), secondary("lung", onset=relapse))
    assert provenance(summary.anthracycline_pretreated) == (
        pretreated,
        ("MedicationAdministration/dox",),
        f"perioperative doxorubicin, last dose 2020-03-15; disease back on {relapse}, {how}",
        date.fromisoformat(relapse),
    )


def test_the_disease_free_interval_runs_from_the_resection_in_months_to_a_tenth() -> None:
    """365 days are 11.99 months: written 12.0."""
    summary = summary_of(
        excision("x", performed="2020-03-01", reason="Condition/primary"), secondary("lung", onset="2021-03-01")
    )
    assert provenance(summary.disease_free_interval_months) == (
        12.0,
        ("Condition/lung", "Procedure/x"),
        "from the end of curative treatment (last resection of the primary on 2020-03-01) to the first distant "
        "metastasis",
        date(2021, 3, 1),
    )


def test_the_disease_free_interval_runs_from_the_last_curative_treatment() -> None:
    """Adjuvant doxorubicin after the resection: the interval starts at its last dose."""
    summary = summary_of(
        excision("x", performed="2020-02-15", reason="Condition/primary"),
        med_statement("dox", DOXORUBICIN, start="2020-03-01", end="2020-06-01"),
        secondary("lung", onset="2021-06-01"),
    )
    assert provenance(summary.disease_free_interval_months) == (
        12.0,
        ("Condition/lung", "MedicationStatement/dox", "Procedure/x"),
        "from the end of curative treatment (last perioperative anticancer drug on 2020-06-01) to the first "
        "distant metastasis",
        date(2021, 6, 1),
    )


def test_a_resection_on_the_day_metastases_are_found_ends_curative_treatment_that_day() -> None:
    summary = summary_of(
        excision("x", performed="2021-06-01", reason="Condition/primary"), secondary("lung", onset="2021-06-01")
    )
    assert provenance(summary.disease_free_interval_months) == (
        0.0,
        ("Condition/lung", "Procedure/x"),
        "from the end of curative treatment (last resection of the primary on 2021-06-01) to the first distant "
        "metastasis",
        date(2021, 6, 1),
    )


def test_without_curative_treatment_before_the_metastasis_there_is_no_disease_free_interval() -> None:
    """Never known to be disease-free: no interval, not one counted from diagnosis."""
    assert summary_of(secondary("lung", onset="2021-01-01")).disease_free_interval_months is None
    late = excision("x", performed="2021-02-01", reason="Condition/primary")  # resected after the metastasis
    assert summary_of(secondary("lung", onset="2021-01-01"), late).disease_free_interval_months is None


def test_each_anthracycline_is_named() -> None:
    epirubicin = rxnorm("3995", "epirubicin")
    advanced = summary_of(
        secondary("lung", onset="2021-01-01"),
        med_administration("dox", DOXORUBICIN, start="2021-02-01"),
        med_administration("gem", GEMCITABINE, start="2021-06-01"),
        med_administration("epi", epirubicin, start="2021-10-01"),
    )
    assert advanced.anthracycline_pretreated.basis == "doxorubicin, epirubicin in line 1 for advanced disease"
    perioperative = summary_of(
        med_administration("dox", DOXORUBICIN, start="2020-02-01"),
        med_administration("epi", epirubicin, start="2020-03-15"),
        secondary("lung", onset="2021-01-01"),
    )
    assert perioperative.anthracycline_pretreated.basis == (
        "perioperative doxorubicin, epirubicin, last dose 2020-03-15; "
        "disease back on 2021-01-01, 12 months or less later"
    )


def test_the_disease_free_interval_is_kept_to_a_tenth_of_a_month() -> None:
    summary = summary_of(
        excision("x", performed="2020-03-01", reason="Condition/primary"), secondary("lung", onset="2021-08-20")
    )
    assert summary.disease_free_interval_months.value == 17.6  # 537 days


def test_radiotherapy_after_the_first_metastasis_leaves_the_earlier_resection_as_the_end() -> None:
    """Resection in 2020-03, lung metastasis in 2021-03, then radiotherapy to the primary bed: the
    interval still runs from the resection, not from diagnosis."""
    summary = summary_of(
        excision("x", performed="2020-03-01", reason="Condition/primary"),
        radiotherapy("rt", start="2021-04-01", end="2021-05-10", reason="Condition/primary"),
        secondary("lung", onset="2021-03-01"),
    )
    assert provenance(summary.disease_free_interval_months) == (
        12.0,
        ("Condition/lung", "Procedure/x"),
        "from the end of curative treatment (last resection of the primary on 2020-03-01) to the first distant "
        "metastasis",
        date(2021, 3, 1),
    )


RECURRENCE = condition(
    "lr",
    {"coding": [{"system": "http://snomed.info/sct", "code": "25173007"}], "text": "Local recurrence"},
    onset="2021-05-01",
)
RE_EXCISION = excision("rex", performed="2021-06-01", reason="Condition/lr")


def _adjuvant(id: str, day: str, words: str = "doxorubicin 60 mg/m2 IV d1 (adjuvant)") -> dict:
    return med_administration(id, DOXORUBICIN, start=day, dosage={"text": words})


@pytest.mark.parametrize(
    ("words", "metastasis", "lines", "pretreated"),
    [
        # named adjuvant, after the re-excision of a local recurrence: curative treatment, not a line;
        # the disease came back when it spread, more than 12 months after the last dose
        ("doxorubicin 60 mg/m2 IV d1 (adjuvant)", "2022-08-02", 0, False),
        # the spread 12 months or less after the last dose: pretreated (first-line doxorubicin not again)
        ("doxorubicin 60 mg/m2 IV d1 (adjuvant)", "2022-08-01", 0, True),
        # not named perioperative: treatment of recurrent (advanced) disease, a line
        ("doxorubicin 60 mg/m2 IV d1", "2022-08-02", 1, True),
    ],
)
def test_adjuvant_chemotherapy_after_a_re_excised_local_recurrence_is_no_line(
    words: str, metastasis: str, lines: int, pretreated: bool
) -> None:
    courses = [_adjuvant("c1", "2021-07-01", words), _adjuvant("c2", "2021-08-01", words)]
    summary = summary_of(RECURRENCE, RE_EXCISION, *courses, secondary("lung", onset=metastasis))
    assert summary.lines_of_therapy.value == lines
    assert summary.anthracycline_pretreated.value is pretreated
