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
    assert set(kb.statements) == {f"S{i:02d}" for i in range(1, 48)} | {f"G{i}" for i in range(1, 8)}
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
    fails(kb_dir, "S05.yaml", "strength", "unknown field")


def test_unknown_condition_key(kb_dir: Path) -> None:
    edit(kb_dir, "S07.yaml", "stage: {in: [IA, IB]}", "stage_group: {in: [IA, IB]}")
    fails(kb_dir, "S07.yaml", "when.stage_group", "unknown condition key")


def test_unknown_operator(kb_dir: Path) -> None:
    edit(kb_dir, "S29.yaml", "ecog: {max: 1}", "ecog: {at_most: 1}")
    fails(kb_dir, "S29.yaml", "when.ecog", "unknown operator 'at_most'")


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
    fails(kb_dir, "S28.yaml", "citation.sources", "quoted text")


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
    fails(kb_dir, "S07.yaml", "-", "not valid YAML")


def test_unknown_group_indicator(kb_dir: Path) -> None:
    edit(kb_dir, "groups.yaml", "indicator: warning", "indicator: urgent")
    fails(kb_dir, "groups.yaml", "groups[0].indicator", "unknown indicator")


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
    edit(kb_dir, "S28.yaml", "lines_of_therapy: {max: 0}", "lines_of_therapy: {max: 1}")
    fails(kb_dir, "S28.yaml", "when.lines_of_therapy", "{max: 0}")


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
    fails(kb_dir, "G7.yaml", "data_quality.facts", "unknown fact key 'histotype'")


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match="does not exist"):
        load_knowledge(tmp_path / "nowhere")


def test_not_expected_names_only_watched_facts(kb_dir: Path) -> None:
    edit(kb_dir, "G7.yaml", "    stage: {site: {in: [head-and-neck, visceral]}}", "    ecog: {site: {in: [visceral]}}")
    fails(kb_dir, "G7.yaml", "data_quality.not_expected", "'ecog' is not one of the watched facts")
