"""Patients written independently of the fixtures (tests/data/independent-patients/): each shows what it
must, nothing it must not, and exactly the statements recorded for it; safety comes first and other
tumours' scope cards come after the plan card (R6)."""

from __future__ import annotations

import json
import re
from datetime import date
from functools import cache
from pathlib import Path

import pytest
import yaml

from cds_service.engine import cards_for
from cds_service.knowledge import KnowledgeBase, load_knowledge
from cds_service.protocol.cards import Card

FOLDER = Path(__file__).resolve().parents[1] / "data" / "independent-patients"
EXPECTED = yaml.safe_load((FOLDER / "expected.yaml").read_text("utf-8"))
TODAY = date(2026, 3, 1)
STATEMENTS = "org.sarcoma-cds.statements"


@cache
def knowledge() -> KnowledgeBase:
    return load_knowledge(Path(__file__).resolve().parents[2] / "cards")


@cache
def cards(name: str) -> tuple[Card, ...]:
    bundle = json.loads((FOLDER / f"{name}.json").read_text("utf-8"))
    resources = [entry["resource"] for entry in bundle.get("entry", [])]
    return tuple(cards_for(resources, knowledge=knowledge(), base_url="http://cds.test", today=TODAY))


def ids(card: Card) -> list[str]:
    return list((card.extension or {}).get(STATEMENTS, []))


def test_every_patient_file_has_its_expectations() -> None:
    assert sorted(p.stem for p in FOLDER.glob("*.json")) == sorted(EXPECTED)


def test_every_resource_id_is_a_fhir_id() -> None:
    """At most 64 letters, digits, "-" and "." (FHIR R4 ``id``): a FHIR server stores them as written."""
    too_long = [
        entry["resource"].get("id")
        for path in FOLDER.glob("*.json")
        for entry in json.loads(path.read_text("utf-8")).get("entry", [])
        if not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", str(entry["resource"].get("id")))
    ]
    assert not too_long


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_patient_shows_what_it_must_and_exactly_its_statements(name: str) -> None:
    shown = {sid for card in cards(name) for sid in ids(card)}
    expected = EXPECTED[name]
    assert not set(expected.get("must", [])) - shown, f"{name}: missing {set(expected['must']) - shown}"
    assert not set(expected.get("must_not", [])) & shown, f"{name}: must not show {set(expected['must_not']) & shown}"
    assert sorted(shown) == expected["shows"], f"{name}: shows {sorted(shown)}"


def test_a_withdrawn_drug_warning_leads_and_other_tumours_come_after_the_plan() -> None:
    first, *_, last = cards("r6-lms-many-cards")
    assert ids(first) == ["G5"] and first.indicator.value == "warning"
    assert set(ids(last)) == {"G1", "G2", "G3"}


@pytest.mark.parametrize("name", ["r5-lms-mets-plus-desmoid", "r4-lms-with-gist-on-imatinib"])
def test_the_plan_card_comes_before_the_scope_card_of_another_tumour(name: str) -> None:
    shown = cards(name)
    plan = next(i for i, card in enumerate(shown) if any(sid.startswith("S") for sid in ids(card)))
    scope = next(i for i, card in enumerate(shown) if set(ids(card)) <= {"G1", "G2", "G3"})
    assert plan < scope


def test_after_an_r2_resection_re_resection_leads_the_plan() -> None:
    plan = next(card for card in cards("r6-19-lms-r2-margin") if "S12" in ids(card))
    assert ids(plan)[0] == "S12" and plan.summary.split(": ", 1)[1].startswith("re-resection")


def test_a_c78_6_metastasis_is_named_retroperitoneum_and_peritoneum() -> None:
    """ICD-10-CM C78.6 does not say which of the two it is; the card names both."""
    assert any(
        "retroperitoneum and peritoneum" in (card.detail or "") for card in cards("r6-27b-mlps-extrapulmonary-icd-c786")
    )


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("r9-lms-local-recurrence-after-old-line", "S15"),  # no distant metastasis now: local treatment leads
        ("r9-lms-local-recurrence-and-new-lung-met", "S40"),  # metastatic again: the next line leads
        ("r2-dfsp-locally-recurrent", "S34"),  # imatinib takes the place of a local option for DFSP
    ],
)
def test_without_distant_metastasis_local_treatment_leads_the_plan(name: str, first: str) -> None:
    plan = next(card for card in cards(name) if first in ids(card))
    assert ids(plan)[0] == first


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("r6-07-wdlps-rp-20cm", "WDLPS retroperitoneum"),
        ("r8-34-ddlps-rp-mets-76y", "DDLPS retroperitoneum"),
        ("r6-01-icd10-only-mlps-thigh", "Myxoid LPS limb"),
        ("r6-35-icd-text-pleomorphic-lps-2nd", "Pleomorphic LPS limb"),
        ("c4922-lps-differential", "Sarcoma"),  # not a liposarcoma subtype
    ],
)
def test_the_plan_card_names_the_liposarcoma_subtype(name: str, named: str) -> None:
    plan = next(card for card in cards(name) if any(sid.startswith("S") for sid in ids(card)))
    assert plan.summary.startswith(named)


def test_a_second_primary_is_named_without_saying_options_wait_on_it() -> None:
    """Nothing depends on the number of primaries: the data-quality card names it, withholds nothing."""
    check = next(card for card in cards("r15-16-two-ups-primaries-both-localised") if ids(card) == ["G7"])
    assert check.summary == "Check the record: more than one primary sarcoma; each needs its own review"
    assert "right thigh; left upper arm" in (check.detail or "") and "wait until" not in (check.detail or "")


def test_a_death_written_only_in_a_note_is_a_warning_quoting_it_that_comes_first() -> None:
    first, *rest = cards("r15-03-lms-death-in-condition-note")
    assert ids(first) == ["G12"] and first.indicator.value == "warning"
    assert "Patient died peacefully" in (first.detail or "") and rest  # the options still follow


@pytest.mark.parametrize(
    ("name", "named", "absent"),
    [
        (
            "r33a-09-lms-mets-line0-caelyx-for-ovarian-gist-on-imatinib",
            "doxorubicin 2019-04-02 to 2019-09-10, for another cancer",
            "",
        ),
        ("r33b-01-lms-lung-liver-death-coded-as-ed-diagnosis", "a diagnosis records the patient's death", "note on"),
    ],
)
def test_a_safety_card_says_what_it_rests_on_and_its_records(name: str, named: str, absent: str) -> None:
    """The earlier anthracycline by drug, dates and cancer; the death by the record that gives it."""
    first = cards(name)[0]
    assert ids(first)[0] in ("G10", "G12")
    assert named in (first.detail or "") and "Records: " in (first.detail or "")
    assert not absent or absent not in (first.detail or "")


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("r15-18-lms-future-trabectedin-request", "trabectedin ordered from 2026-03-09"),
        (
            "r17-22-ups-dox-order-stopped-never-given",
            "doxorubicin ordered from 2026-01-26, no dose given",
        ),
    ],
)
def test_orders_that_count_as_no_line_are_named_on_the_plan_card(name: str, named: str) -> None:
    """Drugs ordered to start later, or stopped before a dose was given, are no line; the clinician sees them."""
    plan = next(card for card in cards(name) if any(sid.startswith("S") for sid in ids(card)))
    assert named in (plan.detail or "")


def test_a_later_note_disputing_a_coded_progression_is_named_on_the_plan_card() -> None:
    """The coded progression stands (free text closes no option); the clinician is asked to confirm."""
    plan = next(card for card in cards("r19-20-lms-coded-pd-then-note-stable") if "S41" in ids(card))
    assert "2nd line (a later note, 2026-02-22, says no progression: confirm)" in (plan.detail or "")


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("r19-24-mlps-resection-undated", "primary resected (date not recorded)"),
        ("r18-40-lms-thigh-r0-9mo-surveillance", "primary resected on 2025-05-20, R0"),
        ("r24-14-dfsp-fs-lung-met", "primary resected, last on 2024-09-10;"),  # the 2024 resection was of a recurrence
    ],
)
def test_the_plan_card_says_the_primary_was_resected(name: str, named: str) -> None:
    plan = next(card for card in cards(name) if any(sid.startswith("S") for sid in ids(card)))
    assert named in (plan.detail or "")


def test_a_line_whose_next_cycle_is_deferred_is_named_as_held() -> None:
    """The orders are on hold after two cycles given: still the first line, and the card says it is held."""
    plan = next(card for card in cards("r28-03-lms-onhold-after-c2") if "S25" in ids(card))
    assert "on 1st line: dacarbazine, doxorubicin since 2026-01-05 (order on hold)," in (plan.detail or "")


def test_a_local_recurrence_re_excised_years_ago_is_history_not_the_headline() -> None:
    """The recurrence Condition was left active after its R0 re-excision in 2019; the situation now is
    the metastatic relapse of 2026: the headline does not name the recurrence, the detail still does."""
    plan = next(card for card in cards("r29a-01-ups-lr-adjuvant-ai-late-mets") if "S28" in ids(card))
    assert "local recurrence" not in plan.summary
    assert "local recurrence recorded on 2019-05-20 after resection and radiotherapy" in (plan.detail or "")
