"""Matching hand-built patient summaries against the real ``cards/``: one test per clinical situation.

Builder verbs: ``patient(**facts)`` builds an STS summary (facts override a treatment-naive,
ECOG 1 UPS of the extremity; ``None`` drops a fact); ``localised(stage, t, grade)`` and
``metastatic(extent, organs)`` add the staging facts; ``ids(summary)`` runs the matcher.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cds_service.knowledge import KnowledgeBase, load_knowledge, match
from cds_service.summary.model import (
    Diagnosis,
    DiseaseStatus,
    Extent,
    Fact,
    Finding,
    FindingKind,
    Growth,
    Histology,
    Margin,
    MetastasisTiming,
    PatientSummary,
    SiteClass,
    StageGroup,
    TreatmentWish,
)

CARDS = Path(__file__).resolve().parents[2] / "cards"
SYSTEMIC = {f"S{i}" for i in range(26, 44)} | {"S46"}
TREATMENT = {f"S{i:02d}" for i in range(5, 17)} | {f"S{i}" for i in range(18, 44)} | {"S44", "S46"}


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge(CARDS)


_BASE: dict[str, Any] = {
    "diagnosis": Diagnosis.STS,
    "histology": Histology.UPS,
    "site": SiteClass.EXTREMITY,
    "lines_of_therapy": 0,
    "prior_drugs": frozenset(),
    "prior_anthracycline": False,
    "ecog": 1,
    "age": 60,
    "local_recurrence": False,
    "in_remission": False,
    "anthracycline_pretreated": False,
    "line_ongoing": False,
    "primary_resected": False,
    "radiotherapy_given": False,
}


def patient(findings: tuple[Finding, ...] = (), **values: Any) -> PatientSummary:
    merged = {**_BASE, **values}
    facts = {k: Fact(v, (f"Observation/{k}",), f"recorded {k}") for k, v in merged.items() if v is not None}
    return PatientSummary(patient="Patient/p1", findings=findings, **facts)


def localised(stage: StageGroup, t: str, grade: str, n: str = "N0", **values: Any) -> PatientSummary:
    extent = Extent.NONE if n == "N0" else Extent.NODAL
    return patient(stage=stage, t=t, n=n, m="M0", grade=grade, extent=extent, **values)


def metastatic(extent: Extent, organs: tuple[str, ...], **values: Any) -> PatientSummary:
    defaults = {"metastasis_timing": MetastasisTiming.SYNCHRONOUS, "t": "T3", "n": "N0", "grade": "G3"}
    return patient(stage=StageGroup.IV, m="M1", extent=extent, metastatic_organs=organs, **{**defaults, **values})


def after_doxorubicin(**values: Any) -> dict[str, Any]:
    """Facts of a patient who progressed on first-line doxorubicin for metastatic disease."""
    return {
        "lines_of_therapy": 1,
        "prior_drugs": frozenset({"doxorubicin"}),
        "prior_anthracycline": True,
        "prior_chemotherapy": True,
        "anthracycline_pretreated": True,
        "progression": True,
        **values,
    }


def ids(kb: KnowledgeBase, summary: PatientSummary) -> set[str]:
    return {m.statement.id for m in match(summary, kb)}


SITUATIONS: dict[str, tuple[PatientSummary, set[str], set[str]]] = {
    "stage IA": (
        localised(StageGroup.IA, "T1", "G1"),
        {"S01", "S05", "S06", "S07"},
        {"S04", "S08", "S09", "S10", "S12", "S13", "S14", "S17", "S28", "S45", "S03", "G7"},  # S14: R2
    ),
    "no evidence of disease after treatment": (
        localised(StageGroup.IIIB, "T3", "G2", in_remission=True, primary_resected=True),
        {"S01", "S04"},
        {f"S{i:02d}" for i in range(5, 15)} | {"S17", "S28", "S45", "G7"},
    ),
    "head and neck, where AJCC 8 has no stage group": (
        patient(site=SiteClass.HEAD_AND_NECK, t="T2", n="N0", m="M0", grade="G3", extent=Extent.NONE),
        {"S01", "S05"},
        {"G7", "S07", "S08", "S09"},
    ),
    "stage IB retroperitoneum": (  # no extremity-style radiotherapy wording for a retroperitoneal primary
        localised(StageGroup.IB, "T3", "G1", site=SiteClass.RETROPERITONEUM),
        {"S01", "S05"},
        {"S06", "S07", "S08"},
    ),
    "stage IB extremity": (
        localised(StageGroup.IB, "T3", "G1", site=SiteClass.EXTREMITY),
        {"S01", "S05", "S06", "S07"},
        {"S08"},
    ),
    "stage IIIA retroperitoneum": (
        localised(StageGroup.IIIA, "T2", "G2", site=SiteClass.RETROPERITONEUM),
        {"S05"},
        {"S06", "S07", "S08", "S09"},  # no radiotherapy wording for a retroperitoneal primary
    ),
    "stage II": (localised(StageGroup.II, "T1", "G3"), {"S05", "S08"}, {"S07", "S09", "S10"}),
    "stage IIIA": (localised(StageGroup.IIIA, "T2", "G2"), {"S08", "S09"}, {"S07", "S10", "S28"}),
    "stage IIIB": (localised(StageGroup.IIIB, "T4", "G3"), {"S08", "S09"}, {"S07", "S10"}),
    "nodal, trunk/extremity stage IV": (
        localised(StageGroup.IV, "T2", "G3", n="N1"),
        {"S03", "S05", "S09", "S10"},
        {"S08", "S17", "S24", "S28", "S45", "S04"},
    ),
    "stage IV disseminated": (
        metastatic(Extent.DISSEMINATED, ("lung", "liver")),
        {"S01", "S03", "S17", "S23", "S24", "S25", "S26", "S28", "S30", "S45", "S47"},
        {"S05", "S07", "S14", "S18", "S19", "S20", "S21", "S22", "S16", "S04"},
    ),
    "oligometastatic synchronous lung-only": (
        metastatic(Extent.LUNG_ONLY, ("lung",)),
        {"S16", "S18", "S20", "S28"},
        {"S19", "S21", "S22", "S24"},  # resectability not recorded (R2)
    ),
    "synchronous lung-only metastases responding to the first line": (  # "resection if there is a good response"
        metastatic(
            Extent.LUNG_ONLY, ("lung",), lines_of_therapy=1, disease_status=DiseaseStatus.IMPROVED, progression=False
        ),
        {"S16", "S18", "S20"},
        {"S21"},  # resectability not recorded (R2)
    ),
    "synchronous lung-only metastases stable after the first line": (
        metastatic(
            Extent.LUNG_ONLY, ("lung",), lines_of_therapy=1, disease_status=DiseaseStatus.STABLE, progression=False
        ),
        {"S16", "S18"},
        {"S20"},
    ),
    "oligometastatic lung-only, a note speaking of progression the record does not code": (
        metastatic(Extent.LUNG_ONLY, ("lung",), progression_noted=True),
        {"S28"},
        {"S16", "S18"},  # "limited" is in doubt until the clinician confirms the status (G7)
    ),
    "oligometastatic metachronous lung-only": (
        metastatic(Extent.LUNG_ONLY, ("lung",), metastasis_timing=MetastasisTiming.METACHRONOUS),
        {"S16", "S18", "S23"},
        {"S19", "S20", "S21", "S22", "S24"},  # resectability not recorded (R2)
    ),
    "resectable metachronous lung-only metastases": (
        metastatic(
            Extent.LUNG_ONLY,
            ("lung",),
            metastasis_timing=MetastasisTiming.METACHRONOUS,
            resectability="resectable",
            primary_resected=True,
            disease_free_interval_months=30.0,
            prior_chemotherapy=False,
        ),
        {"S16", "S18", "S19", "S21"},
        {"S14", "S22", "S23"},  # "surgery is uncommon" does not stand beside "excision is standard"
    ),
    "resectable lung-only metastases after a first line": (  # its response is known: no "test the response"
        metastatic(
            Extent.LUNG_ONLY,
            ("lung",),
            metastasis_timing=MetastasisTiming.METACHRONOUS,
            resectability="resectable",
            primary_resected=True,
            disease_free_interval_months=30.0,
            lines_of_therapy=1,
            prior_chemotherapy=True,
        ),
        {"S16", "S18"},
        {"S21"},
    ),
    "resectable metachronous lung-only metastases, primary untreated": (
        metastatic(
            Extent.LUNG_ONLY,
            ("lung",),
            metastasis_timing=MetastasisTiming.METACHRONOUS,
            resectability="resectable",
            primary_resected=False,
            radiotherapy_given=False,
            prior_chemotherapy=False,
        ),
        {"S16", "S18", "S21"},
        {"S19"},  # "complete excision is standard" presumes a treated primary
    ),
    "unresectable lung-only metastases": (
        metastatic(
            Extent.LUNG_ONLY,
            ("lung",),
            metastasis_timing=MetastasisTiming.METACHRONOUS,
            resectability="unresectable",
            primary_resected=True,
        ),
        {"S22", "S23"},
        {"S19", "S21", "S14"},  # S14 is for the primary or a local recurrence; metastases: S22
    ),
    "unresectable lung-only metastases, primary still in place": (
        metastatic(Extent.LUNG_ONLY, ("lung",), resectability="unresectable", primary_resected=False),
        {"S23"},
        {"S22", "S16", "S18"},  # ablation of a few metastases presupposes a controlled primary
    ),
    "lung-only metastases of a primary judged unresectable before it spread": (
        metastatic(Extent.LUNG_ONLY, ("lung",), primary_unresectable=True, primary_resected=False),
        {"S28"},
        {"S16", "S18", "S22"},  # curative treatment of metastases presupposes a controlled primary
    ),
    "lung-only metastases of a primary not judged unresectable": (
        metastatic(Extent.LUNG_ONLY, ("lung",), primary_resected=False),
        {"S16", "S18", "S28"},
        {"S22"},
    ),
    "unresectable localised tumour": (
        localised(StageGroup.IIIA, "T2", "G2", resectability="unresectable"),
        {"S14"},
        {"S05", "S11", "S15"},
    ),
    "localised tumour, resectability to be confirmed": (
        localised(StageGroup.IIIB, "T3", "G3", resectability="locally-advanced-to-confirm"),
        {"S05"},
        {"S14"},
    ),
    "limited, not lung": (
        metastatic(Extent.LIMITED, ("liver",)),
        {"S16", "S18", "S17"},
        {"S19", "S20", "S21", "S22", "S24"},  # S22 needs "not for surgery" in the record (R2)
    ),
    "first line, fit (ECOG 0)": (
        metastatic(Extent.DISSEMINATED, ("lung", "bone"), ecog=0),
        {"S28", "S29", "S30", "S31"},
        {"S38", "S39", "S40", "S42", "S44"},
    ),
    "first line, ECOG 2": (
        metastatic(Extent.DISSEMINATED, ("lung", "bone"), ecog=2),
        {"S28", "S30"},
        {"S29", "S31", "S44"},
    ),
    "first line, ECOG 3": (
        metastatic(Extent.DISSEMINATED, ("lung", "bone"), ecog=3),
        {"S44"},
        {"S29", "S31"},
    ),
    "first line, ECOG unknown": (
        metastatic(Extent.DISSEMINATED, ("lung", "bone"), ecog=None),
        {"S28"},
        {"S29", "S31", "S44"},
    ),
    "leiomyosarcoma first line": (
        metastatic(Extent.DISSEMINATED, ("lung", "liver"), histology=Histology.LEIOMYOSARCOMA, ecog=0),
        {"S28", "S30", "S32"},
        {"S29", "S40", "S41"},
    ),
    "angiosarcoma first line": (
        metastatic(Extent.LIMITED, ("liver",), histology=Histology.ANGIOSARCOMA),
        {"S33", "S28"},  # taxanes can be considered; doxorubicin stays an alternative
        {"S29", "S30", "S31"},
    ),
    "DFSP metastatic": (
        metastatic(Extent.LUNG_ONLY, ("lung",), histology=Histology.DFSP),
        {"S34"},
        {"S28", "S29", "S11"},
    ),
    "DFSP localised": (
        localised(StageGroup.IB, "T2", "G1", histology=Histology.DFSP),
        {"S11", "S05"},
        {"S28", "S34"},  # not recurrent, not locally advanced, not recorded as unresectable
    ),
    "DFSP locally advanced": (
        localised(StageGroup.IB, "T3", "G1", histology=Histology.DFSP, resectability="locally-advanced-to-confirm"),
        {"S05", "S34"},
        {"S14"},
    ),
    "DFSP local recurrence recorded as unresectable": (
        localised(
            StageGroup.IB, "T2", "G1", histology=Histology.DFSP, local_recurrence=True, resectability="unresectable"
        ),
        {"S34"},
        {"S05", "S11", "S14", "S15"},
    ),
    "DFSP after imatinib": (
        metastatic(
            Extent.LUNG_ONLY,
            ("lung",),
            histology=Histology.DFSP,
            lines_of_therapy=1,
            prior_drugs=frozenset({"imatinib"}),
        ),
        {"S28"},  # once imatinib has been given, DFSP is treated as other sarcomas
        {"S34"},
    ),
    "ASPS first line": (
        metastatic(Extent.DISSEMINATED, ("lung", "brain"), histology=Histology.ASPS),
        {"S35", "S46"},
        {"S28", "S29"},
    ),
    "liposarcoma first line": (
        metastatic(Extent.DISSEMINATED, ("lung", "liver"), histology=Histology.LIPOSARCOMA),
        {"S28", "S36"},
        {"S40", "S42", "S43"},
    ),
    "liposarcoma after anthracycline": (
        metastatic(Extent.DISSEMINATED, ("lung", "liver"), histology=Histology.LIPOSARCOMA, **after_doxorubicin()),
        {"S38", "S39", "S40", "S43"},
        {"S36", "S42", "S28", "S29", "S32", "S41"},  # S36's first line is behind; trabectedin and eribulin lead
    ),
    "UPS second line": (
        metastatic(Extent.DISSEMINATED, ("lung", "liver"), **after_doxorubicin()),
        {"S38", "S39", "S40", "S41", "S42"},
        {"S28", "S29", "S30", "S31", "S43", "S36"},
    ),
    "synovial sarcoma third line after trabectedin and pazopanib": (
        metastatic(
            Extent.DISSEMINATED,
            ("lung", "liver"),
            histology=Histology.SYNOVIAL,
            **after_doxorubicin(lines_of_therapy=2, prior_drugs=frozenset({"doxorubicin", "trabectedin", "pazopanib"})),
        ),
        {"S38", "S39"},
        {"S40", "S41", "S42", "S28"},
    ),
    "metastases within 12 months of neoadjuvant chemotherapy": (
        metastatic(
            Extent.DISSEMINATED,
            ("lung", "liver"),
            metastasis_timing=MetastasisTiming.METACHRONOUS,
            disease_free_interval_months=10.6,
            prior_drugs=frozenset({"doxorubicin", "ifosfamide"}),
            prior_anthracycline=True,
            anthracycline_pretreated=True,
        ),
        # anthracycline-pretreated (R4): pazopanib, trabectedin and gemcitabine ± docetaxel, not the first line again
        {"S42", "S40", "S41"},
        {"S28", "S29", "S30", "S31", "S38", "S39", "S43"},
    ),
    "metastases 20 months after neoadjuvant chemotherapy": (
        metastatic(
            Extent.DISSEMINATED,
            ("lung", "liver"),
            metastasis_timing=MetastasisTiming.METACHRONOUS,
            disease_free_interval_months=20.0,
            prior_drugs=frozenset({"doxorubicin", "ifosfamide"}),
            prior_anthracycline=True,
            anthracycline_pretreated=False,
        ),
        {"S28"},
        {"S42"},
    ),
    "liposarcoma within 12 months of neoadjuvant chemotherapy": (
        metastatic(
            Extent.DISSEMINATED,
            ("lung", "liver"),
            histology=Histology.LIPOSARCOMA,
            metastasis_timing=MetastasisTiming.METACHRONOUS,
            disease_free_interval_months=6.0,
            prior_drugs=frozenset({"doxorubicin"}),
            prior_anthracycline=True,
            anthracycline_pretreated=True,
        ),
        {"S40", "S43"},  # anthracycline-pretreated: trabectedin and eribulin, not the first line again (R4)
        {"S28", "S36", "S42"},
    ),
    "local recurrence": (
        localised(StageGroup.IIIA, "T2", "G3", local_recurrence=True),
        {"S03", "S15", "S16"},
        {"S04", "S18"},
    ),
    "local recurrence, retroperitoneum": (  # no "often combined with radiotherapy" for a retroperitoneal primary
        localised(StageGroup.IIIA, "T2", "G3", local_recurrence=True, site=SiteClass.RETROPERITONEUM),
        {"S03", "S16"},
        {"S04", "S15", "S18"},
    ),
    "slow asymptomatic metastatic disease": (
        metastatic(
            Extent.LUNG_ONLY,
            ("lung",),
            disease_status="stable",
            growth="not-growing",
            symptomatic=False,
            ecog=0,
            performance_status_recent=True,
            age=60,
        ),
        {"S27"},
        {"S29", "S31", "S44"},  # observation, not combination chemotherapy (R2)
    ),
    "stable metastatic disease, symptoms not recorded": (
        metastatic(
            Extent.LUNG_ONLY,
            ("lung",),
            disease_status="stable",
            growth="not-growing",
            ecog=0,
            performance_status_recent=True,
            age=60,
        ),
        {"S29", "S31"},
        {"S27"},
    ),
    "slow asymptomatic disease where a response is needed": (
        metastatic(
            Extent.LUNG_ONLY,
            ("lung",),
            growth="slow",
            symptomatic=False,
            response_needed=True,
            ecog=0,
            performance_status_recent=True,
            age=60,
        ),
        {"S29", "S31"},
        {"S27"},
    ),
    "worsening metastatic disease": (
        metastatic(Extent.LUNG_ONLY, ("lung",), disease_status="worsened"),
        set(),
        {"S27"},
    ),
}


@pytest.mark.parametrize("name", list(SITUATIONS))
def test_clinical_situation(kb: KnowledgeBase, name: str) -> None:
    summary, must, must_not = SITUATIONS[name]
    found = ids(kb, summary)
    assert must <= found, f"missing {sorted(must - found)}"
    assert not must_not & found, f"unexpected {sorted(must_not & found)}"


def test_stage_and_extent_statements_never_mix_localised_and_metastatic(kb: KnowledgeBase) -> None:
    found = ids(kb, localised(StageGroup.II, "T1", "G2"))
    assert not found & {"S17", "S18", "S23", "S24", "S25", "S26", "S45", "S47"}


@pytest.mark.parametrize("growth", [None, "growing", "not-growing", "rapid", "slow"])
@pytest.mark.parametrize("symptomatic", [None, True, False])
@pytest.mark.parametrize("response_needed", [None, True, False])
def test_observation_never_shows_beside_combination_chemotherapy(
    kb: KnowledgeBase, growth: str | None, symptomatic: bool | None, response_needed: bool | None
) -> None:
    found = ids(
        kb,
        metastatic(
            Extent.LUNG_ONLY,
            ("lung",),
            ecog=0,
            performance_status_recent=True,
            age=60,
            growth=growth,
            symptomatic=symptomatic,
            response_needed=response_needed,
        ),
    )
    assert not ("S27" in found and found & {"S29", "S31"})
    assert ("S27" in found) is (growth in ("not-growing", "slow") and symptomatic is False and not response_needed)


@pytest.mark.parametrize("resectability", [None, "resectable", "unresectable", "locally-advanced-to-confirm"])
def test_contradicting_surgery_statements_never_show_together(kb: KnowledgeBase, resectability: str | None) -> None:
    local = ids(kb, localised(StageGroup.IIIA, "T2", "G2", resectability=resectability))
    lungs = ids(
        kb,
        metastatic(
            Extent.LUNG_ONLY, ("lung",), metastasis_timing=MetastasisTiming.METACHRONOUS, resectability=resectability
        ),
    )
    assert not {"S05", "S14"} <= local
    assert not {"S19", "S23"} <= lungs


@pytest.mark.parametrize(
    ("diagnosis", "histology", "guardrail"),
    [
        (Diagnosis.GIST, Histology.GIST, "G1"),
        (Diagnosis.OUT_OF_SCOPE_SARCOMA, Histology.KAPOSI, "G2"),
        (Diagnosis.OUT_OF_SCOPE_SARCOMA, Histology.EMBRYONAL_RMS, "G2"),
        (Diagnosis.DESMOID, Histology.DESMOID, "G3"),
    ],
)
def test_out_of_scope_tumours_get_only_their_guardrail(
    kb: KnowledgeBase, diagnosis: Diagnosis, histology: Histology, guardrail: str
) -> None:
    """G1-G3: even with metastatic, treatment-naive facts, no STS statement fires."""
    summary = metastatic(Extent.DISSEMINATED, ("lung", "liver"), diagnosis=diagnosis, histology=histology)
    assert ids(kb, summary) == {guardrail}


@pytest.mark.parametrize("diagnosis", [Diagnosis.OTHER_CANCER, Diagnosis.NONE])
def test_no_sarcoma_means_no_statement(kb: KnowledgeBase, diagnosis: Diagnosis) -> None:
    summary = metastatic(Extent.DISSEMINATED, ("lung", "liver"), diagnosis=diagnosis, histology=None)
    assert ids(kb, summary) == set()


def test_pleomorphic_rhabdomyosarcoma_is_adult_type(kb: KnowledgeBase) -> None:
    """G2: pleomorphic RMS follows the STS guideline."""
    summary = metastatic(Extent.DISSEMINATED, ("lung", "liver"), histology=Histology.PLEOMORPHIC_RMS)
    assert {"S01", "S28"} <= ids(kb, summary)


def test_missing_histology_gives_data_quality_and_no_systemic_card(kb: KnowledgeBase) -> None:
    """G7: without histology no systemic option shows, not even the histology-agnostic ones."""
    finding = Finding(FindingKind.MISSING, "histology", "No histology recorded.", ("Condition/primary",))
    summary = metastatic(
        Extent.DISSEMINATED, ("lung", "liver"), histology=None, findings=(finding,), **after_doxorubicin()
    )
    matches = {m.statement.id: m for m in match(summary, kb)}
    assert "G7" in matches
    assert [g.key for g in matches["G7"].gaps] == ["histology"]
    assert matches["G7"].gaps[0].findings == (finding,)
    assert not SYSTEMIC & set(matches)
    assert {"S01", "S17", "S23"} <= set(matches)


def test_missing_stage_and_extent_withhold_every_statement_that_needs_them(kb: KnowledgeBase) -> None:
    summary = patient(stage=None, extent=None, t=None, m=None)
    matches = {m.statement.id: m for m in match(summary, kb)}
    assert {g.key for g in matches["G7"].gaps} == {"stage", "extent"}
    assert not TREATMENT & set(matches)
    assert "S01" in matches


def test_contradicted_extent_is_withheld(kb: KnowledgeBase) -> None:
    """G7: a contradiction makes a present fact unusable; extent-based statements do not fire."""
    finding = Finding(
        FindingKind.CONTRADICTION,
        "extent",
        "Lung metastasis recorded but M0 observed.",
        ("Condition/met-lung", "Observation/tnm-m"),
    )
    summary = metastatic(Extent.LUNG_ONLY, ("lung",), findings=(finding,))
    matches = {m.statement.id: m for m in match(summary, kb)}
    gap = matches["G7"].gaps[0]
    assert (gap.key, gap.fact.value if gap.fact else None) == ("extent", Extent.LUNG_ONLY)
    assert not {"S17", "S18", "S19", "S20", "S21", "S28"} & set(matches)


def test_info_finding_does_not_block(kb: KnowledgeBase) -> None:
    finding = Finding(FindingKind.INFO, "stage", "A 7th-edition stage was kept aside.")
    summary = metastatic(Extent.LUNG_ONLY, ("lung",), findings=(finding,))
    found = ids(kb, summary)
    assert "G7" not in found and "S28" in found


def test_complete_record_has_no_data_quality_card(kb: KnowledgeBase) -> None:
    assert "G7" not in ids(kb, metastatic(Extent.LUNG_ONLY, ("lung",)))


def test_line_statements_follow_the_line_of_therapy(kb: KnowledgeBase) -> None:
    """G6."""
    naive = ids(kb, metastatic(Extent.DISSEMINATED, ("lung", "liver")))
    treated = ids(kb, metastatic(Extent.DISSEMINATED, ("lung", "liver"), **after_doxorubicin()))
    first = {s.id for s in kb.statements.values() if s.line == "first"}
    later = {s.id for s in kb.statements.values() if s.line == "later"}
    assert not later & naive and first & naive
    assert not first & treated and later & treated


def test_unknown_line_shows_neither_first_nor_later_line(kb: KnowledgeBase) -> None:
    found = ids(kb, metastatic(Extent.DISSEMINATED, ("lung", "liver"), lines_of_therapy=None, prior_drugs=None))
    assert not {"S28", "S29", "S38", "S39", "S40", "S42"} & found


def test_pazopanib_never_for_liposarcoma_even_if_its_card_allowed_it(tmp_path: Path) -> None:
    """G4: the guardrail veto holds on its own, whatever S42 says."""
    folder = tmp_path / "cards"
    shutil.copytree(CARDS, folder)
    s42 = folder / "S42.yaml"
    s42.write_text(s42.read_text().replace("  histology: {not_in: [liposarcoma]}\n", ""))
    kb = load_knowledge(folder)
    lps = metastatic(Extent.DISSEMINATED, ("lung", "liver"), histology=Histology.LIPOSARCOMA, **after_doxorubicin())
    ups = metastatic(Extent.DISSEMINATED, ("lung", "liver"), **after_doxorubicin())
    assert "S42" not in ids(kb, lps)
    assert "S42" in ids(kb, ups)


def test_histology_specific_first_line_overrides_the_generic_one(kb: KnowledgeBase) -> None:
    """G4 / S37: S32 hides the ifosfamide combination (S29) for leiomyosarcoma; S33 hides S29 but
    leaves doxorubicin (S28) as the alternative its source names."""
    lms = ids(kb, metastatic(Extent.DISSEMINATED, ("lung", "liver"), histology=Histology.LEIOMYOSARCOMA, ecog=0))
    angio = ids(kb, metastatic(Extent.DISSEMINATED, ("lung", "liver"), histology=Histology.ANGIOSARCOMA, ecog=0))
    assert "S32" in lms and "S29" not in lms
    assert {"S33", "S28"} <= angio and "S29" not in angio


def test_olaratumab_on_record_shows_the_safety_guardrail(kb: KnowledgeBase) -> None:
    """G5."""
    summary = metastatic(
        Extent.DISSEMINATED,
        ("lung", "liver"),
        **after_doxorubicin(prior_drugs=frozenset({"doxorubicin", "olaratumab"})),
    )
    assert "G5" in ids(kb, summary)
    assert "G5" not in ids(kb, metastatic(Extent.DISSEMINATED, ("lung", "liver"), **after_doxorubicin()))


def test_match_records_the_facts_it_used(kb: KnowledgeBase) -> None:
    summary = metastatic(
        Extent.LUNG_ONLY,
        ("lung",),
        metastasis_timing=MetastasisTiming.METACHRONOUS,
        disease_free_interval_months=30.0,
        resectability="resectable",
        primary_resected=True,
    )
    s19 = next(m for m in match(summary, kb) if m.statement.id == "S19")
    assert set(s19.facts) == {
        "diagnosis",
        "extent",
        "metastasis_timing",
        "resectability",
        "disease_free_interval_months",
    }
    assert s19.facts["extent"].sources == ("Observation/extent",)


def _first_line(**values: Any) -> PatientSummary:
    """Metastatic UPS, chemotherapy-naive, ECOG 1 recorded recently, aged 60, unless overridden."""
    return metastatic(Extent.LUNG_ONLY, ("lung",), **{"performance_status_recent": True, "age": 60, **values})


@pytest.mark.parametrize(
    "values,combination",
    [
        ({}, True),
        ({"ecog": 2}, False),
        ({"ecog": None, "performance_status_recent": None}, False),
        ({"performance_status_recent": False}, False),
        ({"age": 74}, True),
        ({"age": 75}, False),
    ],
)
def test_combination_chemotherapy_only_for_fit_recent_ecog_under_75(
    kb: KnowledgeBase, values: dict[str, Any], combination: bool
) -> None:
    shown = ids(kb, _first_line(**values))
    assert {"S28", "S30"} <= shown  # single-agent doxorubicin stays an option
    assert ({"S29", "S31"} <= shown) is combination
    assert not ({"S29", "S31"} & shown) or combination


@pytest.mark.parametrize("ecog", [3, 4])
def test_ecog_3_to_4_shows_supportive_care_and_no_active_treatment_lists(kb: KnowledgeBase, ecog: int) -> None:
    shown = ids(kb, _first_line(ecog=ecog))
    assert {"S44", "S25"} <= shown
    assert not shown & ({f"S{i}" for i in range(28, 44)} | {"S16", "S18", "S19", "S20", "S21", "S22"})


def test_ecog_2_keeps_active_treatment_without_supportive_care_first(kb: KnowledgeBase) -> None:
    shown = ids(kb, _first_line(ecog=2))
    assert "S28" in shown and "S44" not in shown


@pytest.mark.parametrize("values", [{"ecog": 5}, {"deceased": True}])
def test_no_card_after_death(kb: KnowledgeBase, values: dict[str, Any]) -> None:
    assert ids(kb, _first_line(**values)) == set()
    assert ids(kb, patient(**values)) == set()  # not even the data-quality card


def test_a_living_patient_gets_cards(kb: KnowledgeBase) -> None:
    assert "S28" in ids(kb, _first_line(deceased=False))


@pytest.mark.parametrize("values,caution", [({"pregnant": True}, True), ({"pregnant": False}, False), ({}, False)])
def test_a_recorded_pregnancy_gets_the_caution_beside_the_options(
    kb: KnowledgeBase, values: dict[str, Any], caution: bool
) -> None:
    shown = ids(kb, _first_line(**values))
    assert ("G11" in shown) is caution and "S28" in shown


@pytest.mark.parametrize("age,child", [(10, True), (17, True), (18, False)])
def test_under_18_gets_the_paediatric_caution_and_no_adult_systemic_or_adjuvant_options(
    kb: KnowledgeBase, age: int, child: bool
) -> None:
    metastatic_chart = ids(kb, _first_line(age=age))
    localised_chart = ids(kb, localised(StageGroup.IIIA, "T2", "G2", age=age))
    assert ("G9" in metastatic_chart) is child and ("G9" in localised_chart) is child
    assert bool(metastatic_chart & {"S28", "S29", "S30", "S31"}) is not child
    assert bool(localised_chart & {"S08", "S09"}) is not child


@pytest.mark.parametrize(
    ("other", "guardrail"),
    [
        (Diagnosis.GIST, "G1"),
        (Diagnosis.OUT_OF_SCOPE_SARCOMA, "G2"),
        (Diagnosis.DESMOID, "G3"),
    ],
)
def test_another_tumour_beside_an_sts_gets_its_own_scope_card_beside_the_sts_cards(
    kb: KnowledgeBase, other: Diagnosis, guardrail: str
) -> None:
    """R5: a coexisting GIST, Kaposi sarcoma or desmoid does not hide the STS cards."""
    shown = ids(kb, metastatic(Extent.LUNG_ONLY, ("lung",), other_primaries=(other,)))
    assert {guardrail, "S01", "S28"} <= shown


def test_an_sts_alone_gets_no_scope_card(kb: KnowledgeBase) -> None:
    shown = ids(kb, metastatic(Extent.LUNG_ONLY, ("lung",), other_primaries=()))
    assert not shown & {"G1", "G2", "G3"}


@pytest.mark.parametrize("values", [{"ecog": 3}, {"age": 15}, {}])
def test_a_tumour_recorded_unresectable_is_never_offered_excision(kb: KnowledgeBase, values: dict[str, Any]) -> None:
    shown = ids(kb, localised(StageGroup.IIIA, "T2", "G2", resectability="unresectable", **values))
    assert not shown & {"S05", "S06", "S11", "S15"}
    resectable = ids(kb, localised(StageGroup.IIIA, "T2", "G2", resectability="resectable", **values))
    assert ("S05" in resectable) is (values.get("ecog") != 3)  # at ECOG 3-4 no curative-intent surgery (R3)


@pytest.mark.parametrize("ecog", [2, 3])
def test_unfit_patients_get_no_high_dose_ifosfamide(kb: KnowledgeBase, ecog: int) -> None:
    later = metastatic(Extent.DISSEMINATED, ("lung", "liver"), **after_doxorubicin(ecog=ecog))
    assert "S39" not in ids(kb, later)
    assert "S39" in ids(kb, metastatic(Extent.DISSEMINATED, ("lung", "liver"), **after_doxorubicin(ecog=1)))


@pytest.mark.parametrize("progression,later", [(True, True), (False, False), (None, False)])
def test_later_line_options_wait_for_progression_after_a_finished_line(
    kb: KnowledgeBase, progression: bool | None, later: bool
) -> None:
    """R4: after a line that ended without progression, the next line is decided at progression."""
    finished = metastatic(Extent.DISSEMINATED, ("lung", "liver"), **after_doxorubicin(progression=progression))
    assert bool(ids(kb, finished) & {"S39", "S40", "S41", "S42"}) is later


def test_distant_metastasis_of_unrecorded_organs_gets_first_line_options_and_not_those_for_limited_disease() -> None:
    """M1 is certain, the organs are not: options for any metastatic disease show; those that need
    limited or disseminated disease wait, and the data-quality card says why."""
    from fhir_builders import primary, secondary, tnm

    from cds_service.engine import cards_for

    chart = [
        primary(snomed="443719001", body_site="61685007"),
        secondary("lung"),
        secondary("nos", snomed="128462008"),
        tnm("n", "N0"),
    ]
    shown = {
        sid
        for card in cards_for(
            chart, knowledge=load_knowledge(CARDS), base_url="http://cds.test", today=date(2025, 1, 1)
        )
        for sid in (card.extension or {}).get("org.sarcoma-cds.statements", [])
    }
    assert {"G7", "S28"} <= shown
    assert not shown & {"S16", "S18", "S19", "S20", "S21", "S22", "S24"}


@pytest.mark.parametrize(
    "values,follow_up",
    [
        ({"in_remission": True}, True),
        ({"in_remission": False, "resection_margin": Margin.R0}, True),  # problem list not updated
        ({"in_remission": False, "margin_from_note": Margin.R0}, True),
        ({"in_remission": False, "resection_margin": Margin.R1}, False),  # re-resection first (S12)
        ({"in_remission": False, "resection_margin": Margin.R1, "margin_from_note": Margin.R0}, False),
        ({"in_remission": False, "resection_margin": Margin.R0, "radiotherapy_given": False}, False),
        ({"in_remission": False}, False),  # margin not recorded
        ({"in_remission": False, "resection_margin": Margin.R0, "disease_status": DiseaseStatus.WORSENED}, False),
    ],
)
def test_follow_up_after_local_treatment_recorded_complete(
    kb: KnowledgeBase, values: dict[str, Any], follow_up: bool
) -> None:
    treated = {"primary_resected": True, "radiotherapy_given": True, "local_recurrence": False, **values}
    assert ("S04" in ids(kb, localised(StageGroup.II, "T1", "G3", **treated))) is follow_up


@pytest.mark.parametrize(("ongoing", "shown"), [(True, False), (False, True)])
def test_doxorubicin_is_not_offered_while_a_first_line_without_it_is_given_and_working(
    kb: KnowledgeBase, ongoing: bool, shown: bool
) -> None:
    """Weekly paclitaxel for angiosarcoma, no progression: no advice to switch; after it, doxorubicin."""
    summary = metastatic(
        Extent.LUNG_ONLY,
        ("lung",),
        histology=Histology.ANGIOSARCOMA,
        lines_of_therapy=1,
        prior_drugs=frozenset({"paclitaxel"}),
        line_ongoing=ongoing,
        current_line=1 if ongoing else None,
        progression=not ongoing,
    )
    assert ("S28" in ids(kb, summary)) is shown


@pytest.mark.parametrize(("lines", "shown"), [(0, True), (1, False)])
def test_chemotherapy_first_for_synchronous_lung_metastases_only_before_any_line(
    kb: KnowledgeBase, lines: int, shown: bool
) -> None:
    summary = metastatic(Extent.LUNG_ONLY, ("lung",), **(after_doxorubicin() if lines else {}))
    assert ("S20" in ids(kb, summary)) is shown


@pytest.mark.parametrize(
    ("grade", "detail", "months", "shown"),
    [
        ("G1", None, 2.0, False),
        ("G2", None, 2.0, True),
        ("G3", None, 2.0, True),
        ("G3", "well-differentiated", 2.0, False),
        ("G3", None, 6.0, True),
        ("G3", None, 6.1, False),  # surveillance: the adjuvant decision is past
        ("G3", None, None, False),  # when the resection was done is not recorded
    ],
)
def test_adjuvant_chemotherapy_is_an_option_only_after_resection_of_a_high_grade_tumour(
    kb: KnowledgeBase, grade: str, detail: str | None, months: float | None, shown: bool
) -> None:
    summary = localised(
        StageGroup.IIIA if grade != "G1" else StageGroup.IB,
        "T2",
        grade,
        primary_resected=True,
        months_since_resection=months,
        prior_drugs=frozenset(),
        histology_detail=detail,
    )
    assert ("S13" in ids(kb, summary)) is shown


@pytest.mark.parametrize(
    ("wish", "supportive"),
    [("no-chemotherapy", True), ("supportive-care-only", True), ("accepts-treatment", False), (None, False)],
)
def test_a_recorded_wish_for_no_chemotherapy_brings_supportive_care_and_no_systemic_options(
    kb: KnowledgeBase, wish: str | None, supportive: bool
) -> None:
    summary = metastatic(
        Extent.DISSEMINATED, ("bone", "lung"), ecog=2, treatment_wish=TreatmentWish(wish) if wish else None
    )
    shown = ids(kb, summary)
    assert ("S44" in shown) is supportive and ("S28" in shown) is not supportive


@pytest.mark.parametrize(
    ("wish", "surgery", "supportive"),
    [
        ("supportive-care-only", False, True),
        ("no-chemotherapy", True, False),
        ("no-adjuvant-chemotherapy", True, False),
    ],
)
def test_a_wish_for_supportive_care_only_also_withholds_curative_surgery(
    kb: KnowledgeBase, wish: str, surgery: bool, supportive: bool
) -> None:
    """Declining chemotherapy for a localised tumour leaves its surgery: no palliative-care card."""
    shown = ids(kb, localised(StageGroup.IIIA, "T2", "G3", ecog=1, treatment_wish=TreatmentWish(wish)))
    assert ("S05" in shown) is surgery and ("S44" in shown) is supportive


@pytest.mark.parametrize(("wish", "adjuvant"), [(None, True), ("no-adjuvant-chemotherapy", False)])
def test_adjuvant_chemotherapy_declined_is_not_offered_again(
    kb: KnowledgeBase, wish: str | None, adjuvant: bool
) -> None:
    summary = localised(
        StageGroup.IIIA,
        "T2",
        "G3",
        primary_resected=True,
        months_since_resection=2,
        prior_drugs=frozenset(),
        treatment_wish=TreatmentWish(wish) if wish else None,
    )
    shown = ids(kb, summary)
    assert ("S13" in shown) is adjuvant and "S44" not in shown


@pytest.mark.parametrize(("ecog", "surgery"), [(2, True), (3, False)])
def test_at_ecog_3_no_curative_surgery_of_the_primary_or_a_recurrence(
    kb: KnowledgeBase, ecog: int, surgery: bool
) -> None:
    primary_tumour = ids(kb, localised(StageGroup.IIIA, "T2", "G3", ecog=ecog))
    recurrence = ids(
        kb, localised(StageGroup.IIIA, "T2", "G3", ecog=ecog, local_recurrence=True, primary_resected=False)
    )
    assert bool({"S05", "S06"} & primary_tumour) is surgery and ("S15" in recurrence) is surgery


@pytest.mark.parametrize(("prior", "shown"), [(frozenset(), False), (frozenset({"imatinib"}), True)])
def test_dfsp_is_offered_doxorubicin_only_once_imatinib_has_been_given(
    kb: KnowledgeBase, prior: frozenset[str], shown: bool
) -> None:
    summary = metastatic(
        Extent.LUNG_ONLY,
        ("lung",),
        histology=Histology.DFSP,
        prior_drugs=prior,
        lines_of_therapy=len(prior),
        progression=bool(prior),
    )
    assert ("S28" in ids(kb, summary)) is shown
    assert ("S34" in ids(kb, summary)) is not shown  # imatinib itself first


@pytest.mark.parametrize(("growth", "shown"), [(Growth.SLOW, False), (Growth.RAPID, True)])
def test_combination_chemotherapy_patient_by_patient_is_not_shown_beside_observation(
    kb: KnowledgeBase, growth: Growth, shown: bool
) -> None:
    summary = metastatic(Extent.LUNG_ONLY, ("lung",), growth=growth, symptomatic=False)
    found = ids(kb, summary)
    assert ("S30" in found) is shown and ("S27" in found) is not shown


@pytest.mark.parametrize(("age", "shown"), [(17, False), (18, True)])
def test_the_adult_framing_of_metastatic_disease_is_not_shown_under_18(
    kb: KnowledgeBase, age: int, shown: bool
) -> None:
    assert ("S17" in ids(kb, metastatic(Extent.LUNG_ONLY, ("lung",), age=age))) is shown


@pytest.mark.parametrize(("oldest", "combination"), [(74, True), (75, False)])
def test_combination_chemotherapy_waits_when_the_patient_may_be_75(
    kb: KnowledgeBase, oldest: int, combination: bool
) -> None:
    """Born in 1951, birth year only: 74 or 75 today."""
    summary = metastatic(Extent.LUNG_ONLY, ("lung",), age=74, age_oldest=oldest)
    assert ("S29" in ids(kb, summary)) is combination


@pytest.mark.parametrize(("high_dose", "shown"), [(frozenset(), True), (frozenset({"ifosfamide"}), False)])
def test_ifosfamide_in_later_lines_is_not_offered_once_high_dose_ifosfamide_was_given(
    kb: KnowledgeBase, high_dose: frozenset[str], shown: bool
) -> None:
    prior = after_doxorubicin(
        ecog=1, prior_drugs=frozenset({"doxorubicin", "ifosfamide"}), high_dose_drugs=high_dose, lines_of_therapy=2
    )
    assert ("S39" in ids(kb, metastatic(Extent.DISSEMINATED, ("lung", "liver"), **prior))) is shown
