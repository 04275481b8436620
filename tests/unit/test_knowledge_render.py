"""Rendering matches into CDS Hooks cards, checked on the serialised JSON a client receives.

Builder verbs: ``patient(**facts)`` builds an STS summary whose facts carry FHIR references
(``None`` drops a fact); ``cards(summary)`` runs ``evaluate`` and serialises with ``to_json``.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cds_service.knowledge import KnowledgeBase, evaluate, load_knowledge, match, render
from cds_service.knowledge.render import _first_fitting
from cds_service.protocol.cards import OVERRIDE_REASONS, SUMMARY_MAX, to_json
from cds_service.summary.model import (
    Diagnosis,
    Extent,
    Fact,
    Finding,
    FindingKind,
    Histology,
    LesionCount,
    Margin,
    MetastasisTiming,
    PatientSummary,
    Resectability,
    SiteClass,
    StageGroup,
    TherapyExposure,
)

CARDS = Path(__file__).resolve().parents[2] / "cards"
BASE_URL = "https://cds.example.org/"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge(CARDS)


def patient(findings: tuple[Finding, ...] = (), **values: Any) -> PatientSummary:
    facts: dict[str, Any] = {
        "diagnosis": Fact(Diagnosis.STS, ("Condition/primary",), "SNOMED disorder code"),
        "histology": Fact(Histology.LEIOMYOSARCOMA, ("Condition/primary",), "ICD-O-3 8890/3"),
        "site": Fact(SiteClass.TRUNK, ("Condition/primary",), "ICD-10 C49.6"),
        "stage": Fact(
            StageGroup.IV,
            ("Observation/tnm-t", "Observation/tnm-m", "Observation/grade"),
            "computed from T2 N0 M1 G3 (trunk/extremity table)",
        ),
        "extent": Fact(Extent.LUNG_ONLY, ("Condition/met-lung",), "one organ: lung"),
        "metastatic_organs": Fact(("lung",), ("Condition/met-lung",), "organs of active secondary cancer Conditions"),
        "metastasis_timing": Fact(MetastasisTiming.SYNCHRONOUS, ("Condition/met-lung",), "within 3 months"),
        "ecog": Fact(0, ("Observation/ecog",), "recorded"),
        "age": Fact(58, ("Patient/p1",), "from the birth date"),
        "lines_of_therapy": Fact(0, (), "no systemic therapy recorded"),
        "prior_drugs": Fact(frozenset(), (), "no systemic therapy recorded"),
        "prior_anthracycline": Fact(False, (), "no anthracycline recorded"),
        "anthracycline_pretreated": Fact(False, (), "no anthracycline for this tumour"),
        "line_ongoing": Fact(False, (), "no line of therapy for advanced disease"),
        "performance_status_recent": Fact(True, ("Observation/ecog",), "recorded 10 days ago"),
        "primary_resected": Fact(False, (), "no resection recorded"),
        "local_recurrence": Fact(False, ("Condition/primary",), "no local recurrence recorded"),
        "radiotherapy_given": Fact(False, (), "no radiotherapy recorded"),
    }
    facts.update({k: v for k, v in values.items()})
    return PatientSummary(patient="Patient/p1", findings=findings, **{k: v for k, v in facts.items() if v is not None})


def cards(kb: KnowledgeBase, summary: PatientSummary) -> list[dict[str, Any]]:
    return [to_json(card) for card in evaluate(summary, kb, base_url=BASE_URL)]


def by_statement(cards_json: list[dict[str, Any]], statement_id: str) -> dict[str, Any]:
    return next(c for c in cards_json if statement_id in c["extension"]["org.sarcoma-cds.statements"])


def plan(cards_json: list[dict[str, Any]]) -> dict[str, Any]:
    return cards_json[-1]


def test_at_most_a_data_quality_a_safety_and_a_plan_card_each_within_the_spec(kb: KnowledgeBase) -> None:
    olaratumab = Fact(frozenset({"doxorubicin", "olaratumab"}), ("MedicationStatement/m1",), "recorded")
    contradiction = Finding(FindingKind.CONTRADICTION, "stage", "Recorded IIIA, computed IV.", ("Observation/stage",))
    for summary in (patient(), patient(prior_drugs=olaratumab, findings=(contradiction,))):
        result = cards(kb, summary)
        assert 1 <= len(result) <= 3
        for card in result:
            assert 1 <= len(card["summary"]) <= SUMMARY_MAX
            assert card["indicator"] in {"info", "warning", "critical"}
            assert card["source"]["label"] and card["source"]["url"].startswith("https://")
            assert card["links"] and all(link["type"] == "absolute" for link in card["links"])
            assert card["extension"]["org.sarcoma-cds.knowledge-version"] == kb.version


def test_plan_card_names_the_options_first_histology_specific_in_its_summary(kb: KnowledgeBase) -> None:
    card = plan(cards(kb, patient()))
    assert card["summary"].startswith("LMS trunk, lung-only metastases, 1st line, ECOG 0")
    options = card["summary"].split(": ", 1)[1].split("; ")
    assert options.index("doxorubicin + dacarbazine") < options.index("doxorubicin")
    assert {"S28", "S32"} <= set(card["extension"]["org.sarcoma-cds.statements"])


def test_plan_card_cites_evidence_once_and_takes_the_principal_option_source(kb: KnowledgeBase) -> None:
    card = plan(cards(kb, patient()))
    s32 = kb.statements["S32"]
    assert card["source"] == {"label": kb.primary_source(s32).label, "url": kb.primary_source(s32).url}
    assert {"statement": "S32", "level": "[V, B]", "reported_by": "004", "text": s32.citation.evidence.text} in card[
        "extension"
    ]["org.sarcoma-cds.evidence"]
    assert "https://cds.example.org/statements/S32" in [link["url"] for link in card["links"]]
    assert card["overrideReasons"] == [to_json(reason) for reason in OVERRIDE_REASONS]
    assert "\\[V, B\\]\\*" in card["detail"]
    assert card["detail"].count("ESMO grading as quoted by Dr.Oracle") == 1


def test_why_lists_the_facts_and_the_records_they_come_from(kb: KnowledgeBase) -> None:
    why = plan(cards(kb, patient()))["detail"].split("Based on: ", 1)[1]
    assert "histology leiomyosarcoma" in why and "extent distant metastases in the lungs only" in why
    assert "Condition/primary" in why and "Condition/met-lung" in why


def test_stage_why_names_every_reference(kb: KnowledgeBase) -> None:
    summary = patient(
        stage=Fact(StageGroup.IA, ("Observation/tnm-t", "Observation/grade"), "computed from T1 N0 M0 G1"),
        grade=Fact("G1", ("Observation/grade",), "recorded"),  # "surgery is usually enough" needs G1 (S07)
        extent=Fact(Extent.NONE, ("Observation/tnm-m",), "M0"),
        metastasis_timing=None,
    )
    detail = plan(cards(kb, summary))["detail"]
    assert "stage (AJCC 8) IA" in detail
    assert all(ref in detail for ref in ("Observation/tnm-t", "Observation/grade", "Observation/tnm-m"))


def test_a_single_safety_statement_uses_its_own_summary(kb: KnowledgeBase) -> None:
    olaratumab = Fact(frozenset({"doxorubicin", "olaratumab"}), ("MedicationStatement/m1",), "recorded")
    card = by_statement(cards(kb, patient(prior_drugs=olaratumab)), "G5")
    assert card["summary"] == kb.statements["G5"].summary and card["indicator"] == "warning"
    assert "overrideReasons" not in card


def test_supportive_care_comes_first_at_ecog_3_with_its_referral(kb: KnowledgeBase) -> None:
    card = plan(cards(kb, patient(ecog=Fact(3, ("Observation/ecog",), "recorded"))))
    assert card["summary"].split(": ", 1)[1].startswith("supportive and palliative care")
    assert card["selectionBehavior"] == "any"
    action = card["suggestions"][0]["actions"][0]
    assert action["type"] == "create" and action["resource"]["resourceType"] == "ServiceRequest"
    assert action["resource"]["subject"] == {"reference": "Patient/p1"}


def test_data_quality_card_names_what_is_missing_first(kb: KnowledgeBase) -> None:
    missing = Finding(FindingKind.MISSING, "histology", "No histology in the record.", ("Condition/primary",))
    result = cards(kb, patient(histology=None, findings=(missing,)))
    first = result[0]
    assert first["indicator"] == "warning"
    assert first["extension"]["org.sarcoma-cds.statements"] == ["G7"]
    assert "histology" in first["summary"]
    assert "- Histology: not known. No histology in the record. (Condition/primary)" in first["detail"]
    assert first["links"][0]["url"] == "https://cds.example.org/statements/G7"
    assert not any("S28" in c["extension"]["org.sarcoma-cds.statements"] for c in result)


def test_out_of_scope_card_cites_its_guardrail(kb: KnowledgeBase) -> None:
    summary = patient(diagnosis=Fact(Diagnosis.GIST, ("Condition/primary",), "ICD-O-3 8936/3"), histology=None)
    result = cards(kb, summary)
    assert len(result) == 1
    card = result[0]
    assert card["indicator"] == "info"
    assert card["extension"]["org.sarcoma-cds.statements"] == ["G1"]
    assert card["source"]["label"] == kb.sources["esmo-2021"].label
    assert "overrideReasons" not in card


def test_cards_come_data_quality_then_safety_then_the_plan(kb: KnowledgeBase) -> None:
    olaratumab = Fact(frozenset({"doxorubicin", "olaratumab"}), ("MedicationStatement/m1",), "recorded")
    contradiction = Finding(FindingKind.CONTRADICTION, "stage", "Recorded IIIA, computed IV.", ("Observation/stage",))
    result = cards(kb, patient(prior_drugs=olaratumab, findings=(contradiction,)))
    first_ids = [c["extension"]["org.sarcoma-cds.statements"][0] for c in result]
    assert first_ids[:2] == ["G7", "G5"] and first_ids[2].startswith("S")


def test_record_text_is_not_markup(kb: KnowledgeBase) -> None:
    finding = Finding(FindingKind.MISSING, "stage", "Grade <b>unknown</b> *see* [link](x)", ())
    card = cards(kb, patient(stage=None, findings=(finding,)))[0]
    assert "<b>" not in card["detail"] and "[link](x)" not in card["detail"]


def test_long_title_is_cut_to_the_card_limit(kb: KnowledgeBase) -> None:
    detail = "x" * 200
    summary = patient(histology=Fact(Histology.MPNST, (), ""), histology_detail=Fact(detail, (), ""))
    for card in cards(kb, summary):
        assert len(card["summary"]) <= SUMMARY_MAX


def test_render_without_matches_gives_no_cards(kb: KnowledgeBase) -> None:
    summary = PatientSummary(diagnosis=Fact(Diagnosis.OTHER_CANCER))
    assert match(summary, kb) == []
    assert render([], summary, base_url=BASE_URL, knowledge=kb) == []


@pytest.mark.parametrize(
    "text",
    ["C49.22 www.evil-phish.example/login", "line\n\n## Stop all treatment\n\nhttps://evil.example", "a@b.org"],
)
def test_record_text_cannot_add_markup_or_links_to_a_card(text):
    from cds_service.knowledge.render import _md

    shown = _md(text)
    assert "\n" not in shown and "## " not in shown.replace("\\#\\#", "")
    assert not re.search(r"www\.|https?:|(?<!\\)@", shown)  # every autolink start is escaped


LOCALISED = {
    "stage": Fact(StageGroup.IIIA, ("Observation/tnm-t",), "computed from T2 N0 M0 G3"),
    "extent": Fact(Extent.NONE, ("Observation/tnm-m",), "M0"),
    "m": Fact("M0", ("Observation/tnm-m",), "recorded"),
    "metastasis_timing": None,
}
UNFIT = Fact(False, ("Condition/primary",), "per note on Condition/primary, 2026-01-20: 'Unfit for surgery.'")


def test_a_patient_unfit_for_surgery_is_offered_radiotherapy_and_the_note_is_quoted(kb: KnowledgeBase) -> None:
    card = plan(cards(kb, patient(**LOCALISED, fit_for_surgery=UNFIT)))
    assert "S14" in card["extension"]["org.sarcoma-cds.statements"] and "radiotherapy" in card["summary"]
    assert "S05" not in card["extension"]["org.sarcoma-cds.statements"]
    assert "fit for surgery no (per note on Condition/primary" in card["detail"]
    fit = plan(cards(kb, patient(**LOCALISED, fit_for_surgery=Fact(True, ("Condition/primary",), "note"))))
    assert "S14" not in fit["extension"]["org.sarcoma-cds.statements"]  # a fit patient: excision, not S14


def test_extent_reads_no_metastasis_recorded_when_m_is_not_known(kb: KnowledgeBase) -> None:
    unstaged = {**LOCALISED, "m": None, "stage": None}
    assert "no metastasis recorded" in plan(cards(kb, patient(**unstaged)))["summary"]
    assert "no metastasis recorded" not in plan(cards(kb, patient(**LOCALISED)))["detail"]


def test_the_line_after_relapse_soon_after_perioperative_anthracycline_says_so(kb: KnowledgeBase) -> None:
    pretreated = Fact(True, ("MedicationStatement/dox",), "perioperative, ended 4 months before relapse")
    assert (
        "after perioperative anthracycline" in plan(cards(kb, patient(anthracycline_pretreated=pretreated)))["summary"]
    )
    assert "1st line" in plan(cards(kb, patient()))["summary"]


def test_the_data_quality_headline_agrees_with_the_number_of_gaps(kb: KnowledgeBase) -> None:
    one = Finding(FindingKind.MISSING, "histology", "No histology in the record.", ("Condition/primary",))
    two = Finding(FindingKind.MISSING, "extent", "No M category in the record.", ("Condition/primary",))
    single = cards(kb, patient(histology=None, findings=(one,)))[0]["summary"]
    double = cards(kb, patient(histology=None, extent=None, stage=None, findings=(one, two)))[0]["summary"]
    assert "depend on it are withheld" in single and "depend on them are withheld" in double


def _option_order(card: dict[str, Any]) -> list[str]:
    return [sid for sid in card["extension"]["org.sarcoma-cds.statements"] if sid in {"S16", "S18", "S28"}]


@pytest.mark.parametrize(
    ("extent", "timing", "lesions", "interval", "local_first"),
    [
        (Extent.LUNG_ONLY, MetastasisTiming.METACHRONOUS, None, 20.0, True),
        (Extent.LIMITED, MetastasisTiming.METACHRONOUS, LesionCount.FEW, 20.0, True),
        (Extent.LUNG_ONLY, MetastasisTiming.METACHRONOUS, None, None, False),  # primary never treated: systemic first
        (Extent.LUNG_ONLY, MetastasisTiming.METACHRONOUS, None, 3.0, True),  # 3 months disease-free
        (Extent.LUNG_ONLY, MetastasisTiming.METACHRONOUS, None, 2.9, False),  # soon after resection: systemic first
        (Extent.LUNG_ONLY, MetastasisTiming.SYNCHRONOUS, None, None, False),
        (Extent.LUNG_ONLY, None, None, None, False),  # timing unknown: systemic first
    ],
)
def test_local_treatment_leads_for_a_few_metachronous_metastases_in_one_organ(
    kb: KnowledgeBase,
    extent: Extent,
    timing: MetastasisTiming | None,
    lesions: LesionCount | None,
    interval: float | None,
    local_first: bool,
) -> None:
    summary = patient(
        extent=Fact(extent, ("Condition/met",), "one organ"),
        metastasis_timing=Fact(timing, ("Condition/met",), "months after diagnosis") if timing else None,
        metastatic_lesions=Fact(lesions, ("Condition/met",), "counted") if lesions else None,
        disease_free_interval_months=Fact(interval, ("Procedure/wle",), "after resection") if interval else None,
    )
    order = _option_order(plan(cards(kb, summary)))
    assert order == (["S16", "S18", "S28"] if local_first else ["S28", "S16", "S18"])


@pytest.mark.parametrize(
    ("never_controlled", "unresectable", "first"),
    [(False, False, "S16"), (True, False, "S28"), (False, True, "S28")],
)
def test_local_treatment_does_not_lead_for_metastases_of_a_primary_never_controlled_or_unresectable_disease(
    kb: KnowledgeBase, never_controlled: bool, unresectable: bool, first: str
) -> None:
    """Local-first is the frame of curative treatment of metastases: without it (S16, S18 withheld),
    palliative radiotherapy does not lead before first-line chemotherapy."""
    judged = Fact(Resectability.UNRESECTABLE, ("Condition/primary",), "judged unresectable")
    summary = patient(
        extent=Fact(Extent.LUNG_ONLY, ("Condition/met",), "one organ"),
        metastasis_timing=Fact(MetastasisTiming.METACHRONOUS, ("Condition/met",), "months after diagnosis"),
        disease_free_interval_months=Fact(20.0, ("Condition/met",), "after treatment"),
        primary_unresectable=Fact(never_controlled, ("Condition/primary",), "judged unresectable"),
        resectability=judged if unresectable else None,
    )
    statements = plan(cards(kb, summary))["extension"]["org.sarcoma-cds.statements"]
    assert [sid for sid in statements if sid in {"S16", "S25", "S28"}][0] == first


def _after_doxorubicin(histology: Histology, detail: str, *also: str) -> PatientSummary:
    """Metastatic, progressed on first-line doxorubicin (with ``also``): the second line is the decision."""
    given = ("MedicationAdministration/dox",)
    return patient(
        histology=Fact(histology, ("Condition/primary",), detail),
        lines_of_therapy=Fact(1, given, "one line for advanced disease"),
        prior_drugs=Fact(frozenset({"doxorubicin", *also}), given, "recorded"),
        prior_anthracycline=Fact(True, given, "doxorubicin"),
        anthracycline_pretreated=Fact(True, given, "doxorubicin"),
        progression=Fact(True, ("Observation/status",), "worsened"),
    )


@pytest.mark.parametrize(
    ("histology", "detail", "trabectedin_first"),
    [
        (Histology.LEIOMYOSARCOMA, "ICD-O-3 8890/3", True),  # "particularly effective" there (G4)
        (Histology.LIPOSARCOMA, "ICD-O-3 8858/3", True),
        (Histology.SYNOVIAL, "ICD-O-3 9040/3", False),  # generic: ifosfamide by its place
    ],
)
def test_trabectedin_is_the_histology_specific_option_only_for_lms_and_lps(
    kb: KnowledgeBase, histology: Histology, detail: str, trabectedin_first: bool
) -> None:
    shown = plan(cards(kb, _after_doxorubicin(histology, detail)))["extension"]["org.sarcoma-cds.statements"]
    assert {"S39", "S40"} <= set(shown)
    assert (shown.index("S40") < shown.index("S39")) is trabectedin_first


@pytest.mark.parametrize(("also", "ifosfamide_last"), [((), False), (("ifosfamide",), True)])
def test_after_ifosfamide_only_its_high_dose_form_is_left_and_it_follows_the_other_later_lines(
    kb: KnowledgeBase, also: tuple[str, ...], ifosfamide_last: bool
) -> None:
    summary = _after_doxorubicin(Histology.SYNOVIAL, "ICD-O-3 9040/3", *also)
    shown = plan(cards(kb, summary))["extension"]["org.sarcoma-cds.statements"]
    later = [sid for sid in shown if sid in {"S39", "S40"}]  # generic for synovial sarcoma: S39 by its place
    assert later == (["S40", "S39"] if ifosfamide_last else ["S39", "S40"])


def test_a_line_in_progress_is_named_by_its_drugs_in_the_headline(kb: KnowledgeBase) -> None:
    given = ("MedicationAdministration/trab",)
    start = date(2025, 7, 1)
    trabectedin = TherapyExposure("trabectedin", None, start, None, "in-progress", None, "advanced", 2, given)
    on_line = patient(
        therapies=(trabectedin,),
        lines_of_therapy=Fact(2, given, "two lines"),
        current_line=Fact(2, given, "in progress", when=start),
        line_ongoing=Fact(True, given, "no progression since it began"),
        prior_drugs=Fact(frozenset({"doxorubicin", "trabectedin"}), given, "recorded"),
        anthracycline_pretreated=Fact(True, given, "doxorubicin"),
    )
    assert "on 2nd line (trabectedin)" in plan(cards(kb, on_line))["summary"]
    assert "(trabectedin)" not in plan(cards(kb, _after_doxorubicin(Histology.LEIOMYOSARCOMA, "8890/3")))["summary"]


@pytest.mark.parametrize(("ecog", "asked"), [(2, True), (3, False)])
def test_open_questions_on_resection_and_growth_are_not_asked_when_supportive_care_leads(
    kb: KnowledgeBase, ecog: int, asked: bool
) -> None:
    open_questions = Fact(frozenset({"resectability", "growth rate"}), (), "not in the record")
    card = plan(cards(kb, patient(ecog=Fact(ecog, ("Observation/ecog",), "recorded"), open_questions=open_questions)))
    assert ("Open questions for the sarcoma MDT" in card["detail"]) is asked


@pytest.mark.parametrize(("recurred", "said"), [(True, "stage IIIB at diagnosis"), (False, "stage IIIB")])
def test_the_stage_is_said_to_be_at_diagnosis_once_the_sarcoma_has_recurred(
    kb: KnowledgeBase, recurred: bool, said: str
) -> None:
    summary = patient(
        stage=Fact(StageGroup.IIIB, ("Observation/stage",), "recorded"),
        extent=Fact(Extent.NONE, ("Observation/tnm-m",), "cM0"),
        metastatic_organs=None,
        metastasis_timing=None,
        local_recurrence=Fact(recurred, ("Condition/primary",), "recorded"),
    )
    headline = plan(cards(kb, summary))["summary"]
    assert f"{said}," in headline or headline.endswith(said)
    assert ("at diagnosis" in headline) is recurred


@pytest.mark.parametrize(
    ("months", "said"),
    [
        (20.5, "disease-free interval 20.5 months;"),
        (23.9, "disease-free interval 23.9 months;"),
        (24.0, "disease-free interval 24 months (about 2 years)"),
        (145.6, "disease-free interval 145.6 months (about 12 years)"),
    ],
)
def test_a_number_in_based_on_carries_its_unit_after_it(kb: KnowledgeBase, months: float, said: str) -> None:
    interval = Fact(months, ("Procedure/wle",), "after resection")
    summary = patient(
        metastasis_timing=Fact(MetastasisTiming.METACHRONOUS, ("Condition/met",), "months after diagnosis"),
        disease_free_interval_months=interval,
    )
    detail = plan(cards(kb, summary))["detail"]
    assert said in detail and "(months)" not in detail, detail


@pytest.mark.parametrize(("site", "said"), [(SiteClass.HEAD_AND_NECK, True), (SiteClass.TRUNK, False)])
def test_at_a_site_without_stage_groups_the_card_gives_the_categories_and_says_so(
    kb: KnowledgeBase, site: SiteClass, said: bool
) -> None:
    recorded = ("Observation/tnm",)
    summary = patient(
        site=Fact(site, ("Condition/primary",), "ICD-10"),
        stage=None if said else Fact(StageGroup.II, recorded, "computed"),
        extent=Fact(Extent.NONE, recorded, "cM0"),
        metastatic_organs=None,
        metastasis_timing=None,
        t=Fact("T2", recorded, "recorded"),
        n=Fact("N0", recorded, "recorded"),
        m=Fact("M0", recorded, "recorded"),
        grade=Fact("G3", recorded, "recorded"),
    )
    detail = plan(cards(kb, summary))["detail"]
    assert ("T2 N0 M0 G3 (AJCC 8 has no stage group for this site)" in detail) is said


@pytest.mark.parametrize(
    ("coded", "noted", "said"),
    [("R0", None, "resected on 2025-12-22, R0;"), (None, Margin.R1, "resected on 2025-12-22, R1 (per note);")],
)
def test_the_resection_is_named_with_its_margin_coded_or_from_a_note(
    kb: KnowledgeBase, coded: str | None, noted: Margin | None, said: str
) -> None:
    cut = ("Procedure/wle",)
    summary = patient(
        primary_resected=Fact(True, cut, "recorded", when=date(2025, 12, 22)),
        resection_margin=Fact(coded, cut, "coded") if coded else None,
        margin_from_note=Fact(noted, cut, "per note on Procedure/wle, 2025-12-22: 'R1.'") if noted else None,
    )
    assert said in plan(cards(kb, summary))["detail"]


@pytest.mark.parametrize("name", [None, "Endometrial stromal sarcoma, low grade"])
def test_a_subtype_these_guidelines_do_not_name_is_named_as_recorded(kb: KnowledgeBase, name: str | None) -> None:
    unnamed = Fact(name, ("Condition/primary",), "morphology code") if name else None
    card = plan(cards(kb, patient(histology=None, histology_unnamed=unnamed)))
    lead = "Endometrial stromal sarcoma, low grade, " if name else "Sarcoma, subtype not known, "
    assert card["summary"].startswith(lead), card["summary"]
    assert ("(a subtype these guidelines do not name)" in card["detail"]) is bool(name)


@pytest.mark.parametrize("uterine", [True, False])
def test_a_uterine_sarcoma_is_said_to_be_staged_by_figo(kb: KnowledgeBase, uterine: bool) -> None:
    recorded = ("Observation/tnm",)
    summary = patient(
        site=Fact(SiteClass.VISCERAL, ("Condition/primary",), "bodySite"),
        site_figo=Fact(True, ("Condition/primary",), "uterine primary") if uterine else None,
        stage=None,
        stage_recorded=Fact("IVB", ("Observation/figo",), "recorded"),
        n=Fact("N0", recorded, "recorded"),
        m=Fact("M1", recorded, "recorded"),
    )
    detail = plan(cards(kb, summary))["detail"]
    said = "Leiomyosarcoma, uterus; N0 M1 (staged by FIGO, not AJCC 8; recorded stage IVB)"
    assert (said in detail) is uterine, detail
    assert ("visceral (organ) primary; N0 M1 (AJCC 8 has no stage group for this site)" in detail) is not uterine


def test_a_stage_iv_from_the_metastases_present_now_is_not_said_to_be_at_diagnosis(kb: KnowledgeBase) -> None:
    summary = patient(local_recurrence=Fact(True, ("Condition/lr",), "recorded"))  # stage IV, lung metastases
    detail = plan(cards(kb, summary))["detail"]
    assert "stage IV (AJCC 8)" in detail and "at diagnosis" not in detail, detail


@pytest.mark.parametrize(
    ("operated", "irradiated", "said"),
    [
        (True, True, "local recurrence recorded on 2024-11-02 after resection and radiotherapy;"),
        (True, False, "local recurrence recorded on 2024-11-02 after resection;"),
        (False, False, "local recurrence recorded on 2024-11-02;"),
    ],
)
def test_a_local_recurrence_names_the_local_treatment_it_came_back_after(
    kb: KnowledgeBase, operated: bool, irradiated: bool, said: str
) -> None:
    surgery = ("Procedure/wle",) if operated else ()
    summary = patient(
        local_recurrence=Fact(True, ("Condition/rec",), "recurrence Condition", date(2024, 11, 2)),
        primary_resected=Fact(False, surgery, "local recurrence after the last resection", date(2024, 11, 2)),
        radiotherapy_given=Fact(irradiated, ("Procedure/rt",) if irradiated else (), "radiotherapy"),
    )
    assert said in plan(cards(kb, summary))["detail"]


@pytest.mark.parametrize(
    ("lesions", "said"),
    [(LesionCount.MANY, "metastatic (liver, lung; many)"), (None, "metastatic (liver, lung),")],
)
def test_the_headline_names_the_organs_and_many_metastases_in_one_bracket(
    kb: KnowledgeBase, lesions: LesionCount | None, said: str
) -> None:
    summary = patient(
        extent=Fact(Extent.DISSEMINATED, ("Condition/met",), "two organs"),
        metastatic_organs=Fact(("liver", "lung"), ("Condition/met",), "organs"),
        metastatic_lesions=Fact(lesions, ("Condition/met",), "counted") if lesions else None,
    )
    assert said in plan(cards(kb, summary))["summary"]


def test_a_summary_takes_the_first_wording_that_fits_and_is_cut_only_when_none_does() -> None:
    long, short = "x" * (SUMMARY_MAX + 1), "y" * SUMMARY_MAX
    assert _first_fitting(long, short) == short
    assert _first_fitting(long, long).endswith("…") and len(_first_fitting(long, long)) == SUMMARY_MAX
