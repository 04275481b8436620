"""The `when:` vocabulary: compiling conditions and evaluating them on summary facts."""

from __future__ import annotations

from dataclasses import fields

import pytest

from cds_service.knowledge.conditions import ConditionError, compile_when
from cds_service.summary.model import FACT_KEYS, Extent, Fact, Histology, PatientSummary


def facts(**values: object) -> dict[str, Fact]:
    return {key: Fact(value) for key, value in values.items()}


def test_every_fact_of_the_summary_is_declared_for_cards() -> None:
    holding_facts = {f.name for f in fields(PatientSummary) if str(f.type).startswith("Fact[")}
    assert holding_facts == set(FACT_KEYS)


def test_a_value_outside_a_declared_code_set_is_refused() -> None:
    with pytest.raises(ConditionError, match="unknown value 'M2'"):
        compile_when({"m": "M2"})


def test_scalar_means_equality_and_enum_values_compare_by_value() -> None:
    when = compile_when({"extent": "lung-only", "histology": {"in": ["liposarcoma"]}})
    assert when.holds(facts(extent=Extent.LUNG_ONLY, histology=Histology.LIPOSARCOMA))
    assert not when.holds(facts(extent=Extent.LIMITED, histology=Histology.LIPOSARCOMA))


def test_not_in_min_max() -> None:
    when = compile_when({"histology": {"not_in": ["liposarcoma"]}, "ecog": {"min": 0, "max": 1}})
    assert when.holds(facts(histology=Histology.LEIOMYOSARCOMA, ecog=1))
    assert not when.holds(facts(histology=Histology.LEIOMYOSARCOMA, ecog=2))
    assert not when.holds(facts(histology=Histology.LIPOSARCOMA, ecog=0))


def test_includes_and_excludes_on_sets() -> None:
    when = compile_when({"prior_drugs": {"includes": ["doxorubicin"], "excludes": ["pazopanib"]}})
    assert when.holds(facts(prior_drugs=frozenset({"doxorubicin", "ifosfamide"})))
    assert not when.holds(facts(prior_drugs=frozenset({"doxorubicin", "pazopanib"})))
    assert not when.holds(facts(prior_drugs=frozenset()))


def test_condition_on_unknown_fact_is_false_unless_or_missing() -> None:
    strict = compile_when({"prior_drugs": {"excludes": ["imatinib"]}})
    lenient = compile_when({"prior_drugs": {"excludes": ["imatinib"], "or_missing": True}})
    assert not strict.holds({})
    assert lenient.holds({})
    assert not lenient.holds(facts(prior_drugs=frozenset({"imatinib"})))


def test_missing_true_and_false() -> None:
    unknown = compile_when({"stage": {"missing": True}})
    known = compile_when({"stage": {"missing": False}})
    assert unknown.holds({}) and not unknown.holds(facts(stage="IV"))
    assert known.holds(facts(stage="IV")) and not known.holds({})


def test_any_of_needs_one_branch() -> None:
    when = compile_when({"diagnosis": "sts", "any_of": [{"local_recurrence": True}, {"lines_of_therapy": {"min": 1}}]})
    assert when.holds(facts(diagnosis="sts", local_recurrence=False, lines_of_therapy=2))
    assert not when.holds(facts(diagnosis="sts", local_recurrence=False, lines_of_therapy=0))
    assert when.keys() == {"diagnosis", "local_recurrence", "lines_of_therapy"}


def test_all_of_holds_two_any_of_in_one_block() -> None:
    when = compile_when(
        {
            "all_of": [
                {"any_of": [{"extent": "lung-only"}, {"local_recurrence": True}]},
                {"any_of": [{"ecog": {"max": 1}}, {"lines_of_therapy": {"max": 0}}]},
            ]
        }
    )
    assert when.holds(facts(extent=Extent.LUNG_ONLY, ecog=2, lines_of_therapy=0))
    assert not when.holds(facts(extent=Extent.LUNG_ONLY, ecog=2, lines_of_therapy=1))
    assert not when.holds(facts(extent=Extent.LIMITED, local_recurrence=False, ecog=0))


@pytest.mark.parametrize(
    ("when", "field", "words"),
    [
        ({"stage_group": "IV"}, "when.stage_group", "unknown condition key"),
        ({"extent": "lung_only"}, "when.extent.equals", "unknown value 'lung_only'"),
        ({"extent": {"in": ["lung_only"]}}, "when.extent.in", "unknown value"),
        ({"ecog": {"above": 2}}, "when.ecog", "unknown operator 'above'"),
        ({"histology": {"min": 1}}, "when.histology", "unknown operator 'min'"),
        ({"ecog": {"max": 7}}, "when.ecog.max", "outside"),
        ({"local_recurrence": "yes"}, "when.local_recurrence.equals", "true or false"),
        ({"stage": {"missing": True, "in": ["IV"]}}, "when.stage.missing", "stand alone"),
        ({"stage": {"or_missing": True}}, "when.stage", "needs another operator"),
        ({"any_of": [{"stage": "IV"}]}, "when.any_of", "at least two"),
        ({"any_of": [{"stage": "IV"}, {"n": "N2"}]}, "when.any_of[1].n.equals", "unknown value 'N2'"),
        ({"all_of": [{"stage": "IV"}]}, "when.all_of", "at least two"),
        ({"all_of": [{"stage": "IV"}, {"m": "M2"}]}, "when.all_of[1].m.equals", "unknown value 'M2'"),
        ({"prior_drugs": {"excludes": ["Doxorubicin"]}}, "when.prior_drugs.excludes", "lower-case"),
        ({}, "when", "non-empty mapping"),
    ],
)
def test_vocabulary_errors_name_the_field(when: dict, field: str, words: str) -> None:
    with pytest.raises(ConditionError) as caught:
        compile_when(when)
    assert caught.value.field == field
    assert words in caught.value.message


def test_an_any_of_names_the_facts_of_its_first_alternative_that_holds() -> None:
    """One reason is enough under "Based on": the first alternative that holds gives it."""
    when = compile_when({"any_of": [{"primary_resected": True}, {"radiotherapy_given": True}]})
    both = {"primary_resected": Fact(True, ("Procedure/x",)), "radiotherapy_given": Fact(True, ("Procedure/rt",))}
    assert when.used(both) == frozenset({"primary_resected"})
    only_rt = {**both, "primary_resected": Fact(False, ())}
    assert when.used(only_rt) == frozenset({"radiotherapy_given"})
