"""Loading ``cards/``: the real knowledge base validates, and each kind of fault stops start-up.

Builder verbs: ``kb_dir`` copies the real ``cards/`` into a temporary folder; ``edit`` replaces text
in one of its files; ``write`` adds or overwrites a file.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cds_service.knowledge import KnowledgeError, load_knowledge
from cds_service.knowledge.model import CLINICIAN_TEXT, INTERNAL_LANGUAGE
from cds_service.protocol.cards import SUMMARY_MAX

CARDS = Path(__file__).resolve().parents[2] / "cards"


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    target = tmp_path / "cards"
    shutil.copytree(CARDS, target)
    return target


def edit(folder: Path, name: str, old: str, new: str) -> None:
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


def fails(folder: Path, file: str, field: str, words: str) -> KnowledgeError:
    with pytest.raises(KnowledgeError) as caught:
        load_knowledge(folder)
    error = caught.value
    assert (error.file, error.field) == (file, field), str(error)
    assert words in error.message
    assert file in str(error) and field in str(error)
    return error


def test_real_cards_load_with_every_statement_and_guardrail() -> None:
    kb = load_knowledge(CARDS)
    assert set(kb.statements) == {f"S{i:02d}" for i in range(1, 48)} | {f"G{i}" for i in range(1, 13)}
    assert all(len(s.summary) <= SUMMARY_MAX for s in kb.statements.values())
    assert set(kb.sources) >= {"000", "001", "002", "003", "004"}
    assert kb.sources["004"].file == "004_6a1ec949adfd3eb7.txt"


def test_real_cards_keep_informational_and_rule_statements_off_cards() -> None:
    kb = load_knowledge(CARDS)
    shown = {s.id for s in kb.matchable()}
    assert {"S02", "S37", "G4", "G6"}.isdisjoint(shown)
    assert kb.statements["S02"].role == "rationale"


def test_no_card_offers_doxorubicin_with_trabectedin() -> None:
    """F3: LMS-04 is not in the sources, so no statement may offer the combination."""
    combination = re.compile(r"doxorubicin\s*(\+|plus|and|with)\s*trabectedin", re.IGNORECASE)
    assert not [f.name for f in CARDS.glob("*.yaml") if combination.search(f.read_text(encoding="utf-8"))]


def test_unknown_top_level_field(kb_dir: Path) -> None:
    edit(kb_dir, "S05.yaml", "title:", "strength: high\ntitle:")
    error = fails(kb_dir, "S05.yaml", "strength", "unknown field; allowed: id, title, role,")
    assert "\n" not in str(error)


def test_unknown_condition_key(kb_dir: Path) -> None:
    edit(kb_dir, "S07.yaml", "stage: {in: [IA, IB]}", "stage_group: {in: [IA, IB]}")
    fails(kb_dir, "S07.yaml", "when.stage_group", "unknown condition key")


def test_unknown_operator(kb_dir: Path) -> None:
    edit(kb_dir, "S44.yaml", "ecog: {min: 3}", "ecog: {at_least: 3}")
    fails(kb_dir, "S44.yaml", "when.any_of[0].ecog", "unknown operator 'at_least'")


def test_unknown_enum_value(kb_dir: Path) -> None:
    edit(kb_dir, "S21.yaml", "extent: lung-only", "extent: lung_only")
    fails(kb_dir, "S21.yaml", "when.extent.equals", "unknown value 'lung_only'")


def test_unknown_group(kb_dir: Path) -> None:
    edit(kb_dir, "S28.yaml", "group: systemic", "group: systemics")
    fails(kb_dir, "S28.yaml", "group", "unknown group 'systemics'")


def test_unknown_source(kb_dir: Path) -> None:
    edit(kb_dir, "S28.yaml", 'sources: ["004", "002", "000"]', 'sources: ["004", "005"]')
    fails(kb_dir, "S28.yaml", "citation.sources", "unknown source id '005'")


def test_unquoted_source_id_is_rejected(kb_dir: Path) -> None:
    edit(kb_dir, "S28.yaml", 'sources: ["004", "002", "000"]', "sources: [004]")
    fails(kb_dir, "S28.yaml", "citation.sources[0]", "must be quoted text, not 4")


def test_dangling_override(kb_dir: Path) -> None:
    edit(kb_dir, "S32.yaml", "overrides: [S29]", "overrides: [S29, S99]")
    fails(kb_dir, "S32.yaml", "precedence.overrides", "unknown statement id 'S99'")


def test_override_cycle(kb_dir: Path) -> None:
    edit(kb_dir, "S29.yaml", "line: first", "line: first\nprecedence: {overrides: [S32]}")
    fails(kb_dir, "S29.yaml", "precedence.overrides", "cycle")


def test_missing_citation(kb_dir: Path) -> None:
    path = kb_dir / "S23.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("citation:")], encoding="utf-8")
    fails(kb_dir, "S23.yaml", "citation", "required field is missing")


def test_citation_without_any_source(kb_dir: Path) -> None:
    edit(kb_dir, "S23.yaml", 'sources: ["002", "001"]', "sources: []")
    fails(kb_dir, "S23.yaml", "citation.sources", "at least one source")


def test_evidence_must_be_stated_even_when_null(kb_dir: Path) -> None:
    edit(kb_dir, "S23.yaml", "  evidence: null\n", "")
    fails(kb_dir, "S23.yaml", "citation.evidence", "write null")


def test_malformed_evidence_level(kb_dir: Path) -> None:
    edit(kb_dir, "S28.yaml", 'level: "[I, A]"', 'level: "I-A"')
    fails(kb_dir, "S28.yaml", "citation.evidence.level", "ESMO level")


def test_summary_longer_than_a_card_allows(kb_dir: Path) -> None:
    edit(kb_dir, "S07.yaml", 'summary: "Stage I:', f'summary: "{"x" * SUMMARY_MAX} Stage I:')
    fails(kb_dir, "S07.yaml", "summary", f"at most {SUMMARY_MAX}")


def test_duplicate_ids(kb_dir: Path) -> None:
    shutil.copy(kb_dir / "S07.yaml", kb_dir / "S07.yml")
    fails(kb_dir, "S07.yml", "id", "duplicate id 'S07'")


def test_id_must_match_file_name(kb_dir: Path) -> None:
    edit(kb_dir, "S07.yaml", "id: S07", "id: S08")
    fails(kb_dir, "S07.yaml", "id", "does not match the file name")


def test_stray_file_is_not_a_statement(kb_dir: Path) -> None:
    write(kb_dir, "notes.yaml", "id: notes\n")
    fails(kb_dir, "notes.yaml", "id", "is not a statement")


def test_invalid_yaml(kb_dir: Path) -> None:
    write(kb_dir, "S07.yaml", "id: S07\nwhen: [unclosed\n")
    error = fails(kb_dir, "S07.yaml", "-", "not valid YAML (line ")
    assert "\n" not in str(error)


def test_unknown_group_indicator(kb_dir: Path) -> None:
    edit(kb_dir, "groups.yaml", "indicator: warning", "indicator: urgent")
    fails(
        kb_dir, "groups.yaml", "groups[0].indicator", "unknown value 'urgent'; expected 'info', 'warning' or 'critical'"
    )


def test_group_order_must_be_a_number(kb_dir: Path) -> None:
    edit(kb_dir, "groups.yaml", "order: 1", "order: first")
    fails(kb_dir, "groups.yaml", "groups[0].order", "valid integer")


def test_unknown_title_placeholder(kb_dir: Path) -> None:
    edit(kb_dir, "groups.yaml", "extent {extent}: plan", "extent {spread}: plan")
    fails(kb_dir, "groups.yaml", "groups[3].title", "unknown placeholder")


def test_treatment_statement_must_require_sts(kb_dir: Path) -> None:
    """G1-G3: a GIST or desmoid patient can never reach a treatment statement."""
    edit(kb_dir, "S28.yaml", "  diagnosis: sts\n", "")
    fails(kb_dir, "S28.yaml", "when.diagnosis", "require diagnosis: sts")


def test_statement_may_not_recommend_olaratumab(kb_dir: Path) -> None:
    """G5."""
    edit(kb_dir, "S39.yaml", 'summary: "Later line: ifosfamide', 'summary: "Later line: olaratumab or ifosfamide')
    fails(kb_dir, "S39.yaml", "summary", "must not recommend 'olaratumab' (G5)")


def test_suggestion_may_not_recommend_olaratumab(kb_dir: Path) -> None:
    edit(kb_dir, "S01.yaml", "text: Referral to a sarcoma", "text: Olaratumab and referral to a sarcoma")
    fails(kb_dir, "S01.yaml", "summary", "(G5)")


def test_first_line_statement_must_exclude_treated_patients(kb_dir: Path) -> None:
    """G6: a first-line card needs lines_of_therapy {max: 0}."""
    edit(kb_dir, "S29.yaml", "lines_of_therapy: {max: 0}", "lines_of_therapy: {max: 1}")
    fails(kb_dir, "S29.yaml", "when.lines_of_therapy", "{max: 0}")


def test_later_line_statement_must_require_a_prior_line(kb_dir: Path) -> None:
    """G6: a later-line card needs lines_of_therapy {min: 1}."""
    edit(kb_dir, "S39.yaml", "  lines_of_therapy: {min: 1}\n", "")
    fails(kb_dir, "S39.yaml", "when.lines_of_therapy", "must constrain it (G6)")


def test_rationale_statement_cannot_be_a_card(kb_dir: Path) -> None:
    edit(kb_dir, "S02.yaml", "role: rationale", "role: rationale\ngroup: situation")
    fails(kb_dir, "S02.yaml", "group", "never shown on its own")


def test_unquoted_rationale_is_unreachable(kb_dir: Path) -> None:
    edit(kb_dir, "groups.yaml", "rationale: [S37, S02]", "rationale: [S02]")
    fails(kb_dir, "S37.yaml", "role", "unreachable")


def test_data_quality_watches_known_facts(kb_dir: Path) -> None:
    edit(kb_dir, "G7.yaml", "facts: [stage, histology, extent,", "facts: [stage, histotype, extent,")
    fails(kb_dir, "G7.yaml", "data_quality.facts[1]", "unknown fact key 'histotype'")


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match="does not exist"):
        load_knowledge(tmp_path / "nowhere")


def test_not_expected_names_only_watched_facts(kb_dir: Path) -> None:
    edit(kb_dir, "G7.yaml", "  not_expected:\n    stage:", "  not_expected:\n    ecog:")
    fails(kb_dir, "G7.yaml", "data_quality.not_expected", "'ecog' is not one of the watched facts")


# --- citations and version (R6) ---------------------------------------------------------------

READER_LABELS = {
    "000": "Canadian Cancer Society: Treatments for soft tissue sarcoma",
    "001": "City of Hope (CTCA): Soft tissue sarcoma treatment by stage (2022)",
    "002": "Canadian Cancer Society: Treatments for stage 4 soft tissue sarcoma",
    "003": "Medscape: Treatment recommendations for metastatic soft tissue sarcoma (Gounder, 2019)",
    "004": "Dr.Oracle: summary of ESMO–EURACAN–GENTURIS 2021 guidance (AI-written, pending review, 2025)",
}
ORACLE_WORDING = "ESMO grading as quoted by Dr.Oracle; not verified against the ESMO guideline"


def test_sources_are_named_as_a_reader_would_cite_them() -> None:
    kb = load_knowledge(CARDS)
    assert {sid: kb.sources[sid].label for sid in READER_LABELS} == READER_LABELS


def test_evidence_is_worded_by_the_source_that_quotes_it() -> None:
    evidence = load_knowledge(CARDS).statements["S28"].citation.evidence
    assert evidence is not None and evidence.reported_by == "004"
    assert evidence.text == f"[I, A], {ORACLE_WORDING}"


def test_an_evidence_caveat_follows_the_wording() -> None:
    evidence = load_knowledge(CARDS).statements["S43"].citation.evidence
    assert evidence is not None
    assert evidence.text == f"[II, A], {ORACLE_WORDING}; a level II grading is unusual for a phase III trial"


def test_every_level_is_quoted_by_the_principal_source() -> None:
    """R6: the card's source is the source of its principal recommendation, which the level grades."""
    graded = [s for s in load_knowledge(CARDS).statements.values() if s.citation.evidence is not None]
    assert graded and all(s.citation.sources[0] == s.citation.evidence.reported_by for s in graded)


def test_systemic_drug_statements_cite_the_esmo_summary_first() -> None:
    kb = load_knowledge(CARDS)
    for sid in ("S28", "S29", "S32", "S33", "S34", "S39", "S40", "S41", "S42", "S43"):
        assert kb.statements[sid].citation.sources[0] == "004", sid


def test_evidence_reported_by_a_source_the_statement_does_not_cite(kb_dir: Path) -> None:
    edit(kb_dir, "S41.yaml", 'reported_by: "004"', 'reported_by: "003"')
    fails(kb_dir, "S41.yaml", "citation.evidence.reported_by", "one of this statement's sources")


def test_evidence_reported_by_an_unknown_source(kb_dir: Path) -> None:
    edit(kb_dir, "S41.yaml", 'sources: ["004"]', 'sources: ["004", "009"]')
    edit(kb_dir, "S41.yaml", 'reported_by: "004"', 'reported_by: "009"')
    fails(kb_dir, "S41.yaml", "citation.evidence.reported_by", "unknown source id '009'")


def test_evidence_reported_by_a_source_that_gives_no_levels(kb_dir: Path) -> None:
    edit(kb_dir, "S28.yaml", 'reported_by: "004"', 'reported_by: "002"')
    fails(kb_dir, "S28.yaml", "citation.evidence.reported_by", "no evidence_wording")


def test_evidence_free_text_is_refused(kb_dir: Path) -> None:
    edit(kb_dir, "S28.yaml", 'reported_by: "004"', 'reported_by: "seed 004 (004_6a1ec949adfd3eb7.txt)"')
    fails(kb_dir, "S28.yaml", "citation.evidence.reported_by", "one of this statement's sources")


def test_evidence_wording_must_place_the_level(kb_dir: Path) -> None:
    edit(kb_dir, "sources.yaml", 'evidence_wording: "{level}, ESMO', 'evidence_wording: "ESMO')
    fails(kb_dir, "sources.yaml", "sources[4].evidence_wording", "{level} exactly once")


@pytest.mark.parametrize(
    ("file", "field", "old", "new"),
    [
        ("S09.yaml", "detail", "it is still treated as regional disease here.", "treated as regional here (flag F1)."),
        ("S13.yaml", "detail", "The sources differ", "Seeds 000 and 003 differ"),
        ("S28.yaml", "summary", 'summary: "Single-agent doxorubicin:', 'summary: "Single-agent doxorubicin (V-TXT):'),
        ("S47.yaml", "detail", "The source's median", "The 004_6a1ec949adfd3eb7.txt median"),
        ("sources.yaml", "sources[0].label", 'Treatments for soft tissue sarcoma"', 'Treatments (URL inferred)"'),
    ],
)
def test_clinician_text_with_internal_language_stops_start_up(
    kb_dir: Path, file: str, field: str, old: str, new: str
) -> None:
    edit(kb_dir, file, old, new)
    fails(kb_dir, file, field, "internal language")


def test_clinician_text_of_the_real_cards_is_clean() -> None:
    kb = load_knowledge(CARDS)
    texts = [getattr(s, name) or "" for s in kb.statements.values() for name in CLINICIAN_TEXT]
    texts += [source.label for source in kb.sources.values()]
    assert not [t for t in texts if INTERNAL_LANGUAGE.search(t)]


def test_version_is_the_release_and_a_hash_of_the_cards() -> None:
    kb = load_knowledge(CARDS)
    release = (CARDS / "VERSION").read_text(encoding="utf-8").strip()
    assert re.fullmatch(re.escape(release) + r"\+[0-9a-f]{12}", kb.version)
    assert load_knowledge(CARDS).version == kb.version


def test_any_card_edit_changes_the_version(kb_dir: Path) -> None:
    before = load_knowledge(kb_dir).version
    edit(kb_dir, "S01.yaml", "Refer to, or discuss with,", "Refer to or discuss with")
    after = load_knowledge(kb_dir).version
    assert after != before and after.split("+")[0] == before.split("+")[0]


def test_missing_version_file(kb_dir: Path) -> None:
    (kb_dir / "VERSION").unlink()
    fails(kb_dir, "VERSION", "-", "file is missing")


def test_malformed_version(kb_dir: Path) -> None:
    write(kb_dir, "VERSION", "next\n")
    fails(kb_dir, "VERSION", "-", "not a release")


def test_release_needs_a_changelog_entry(kb_dir: Path) -> None:
    write(kb_dir, "VERSION", "9.9.9\n")
    fails(kb_dir, "CHANGELOG.md", "-", "no '## 9.9.9' entry")
