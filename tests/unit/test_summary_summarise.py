"""``summarise`` as a whole: a full STS chart, order independence, duplicates, bad data, linear cost."""

from __future__ import annotations

import cProfile
import pstats
import random
from datetime import date

from fhir_builders import (
    disease_status,
    ecog,
    grade,
    med_administration,
    med_request,
    patient,
    primary,
    rxnorm,
    secondary,
    size,
    stage_group,
    tnm,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.summary import summarise
from cds_service.summary.model import Diagnosis, Extent, FindingKind, Histology, MetastasisTiming, SiteClass, StageGroup

TODAY = date(2025, 1, 1)


def sts_chart() -> list[dict]:
    """Extremity leiomyosarcoma, resected, lung metastases 18 months later, two lines, progressing."""
    return [
        patient("p1"),
        primary("lms", snomed="443719001", body_site="61685007", onset="2020-01-10"),
        tnm("pt", "T2", pathological=True, date="2020-02-01"),
        tnm("cn", "N0", date="2020-01-20"),
        tnm("cm", "M0", date="2020-01-20"),
        grade("g", "G3", date="2020-02-01"),
        size("s", 8.0, date="2020-02-01"),
        secondary("lung1", onset="2021-07-10"),
        secondary("lung2", onset="2021-08-01"),
        med_administration("dox1", rxnorm("1790099"), start="2021-08-01"),
        med_administration("dox2", rxnorm("1790099"), start="2021-08-22"),
        med_request("gem", rxnorm("1719003"), start="2022-03-01", end="2022-06-01"),
        med_request("doc", {"text": "DOCEtaxel 20 mg/mL"}, start="2022-03-08"),
        ecog("e", 1, date="2022-02-20"),
        disease_status("ds", "worsened", date="2022-07-01"),
    ]


def test_full_sts_chart() -> None:
    summary = summarise(sts_chart(), today=TODAY)
    assert summary.patient == "Patient/p1"
    assert summary.diagnosis.value is Diagnosis.STS and summary.histology.value is Histology.LEIOMYOSARCOMA
    assert summary.site.value is SiteClass.EXTREMITY
    assert (summary.t.value, summary.n.value, summary.m.value, summary.grade.value) == ("T2", "N0", "M1", "G3")
    assert summary.stage.value is StageGroup.IV and summary.stage_computed.value is StageGroup.IV
    assert summary.extent.value is Extent.LUNG_ONLY
    assert summary.metastasis_timing.value is MetastasisTiming.METACHRONOUS
    assert summary.disease_free_interval_months is None  # no curative treatment recorded before the metastasis
    assert summary.lines_of_therapy.value == 2
    assert summary.prior_drugs.value == frozenset({"doxorubicin", "gemcitabine", "docetaxel"})
    assert summary.prior_anthracycline.value is True and summary.ecog.value == 1
    assert summary.progression.value is True
    assert set(summary.facts()) >= {"diagnosis", "stage", "extent", "lines_of_therapy"}
    for name, fact in summary.facts().items():
        assert fact.basis, name


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_result_does_not_depend_on_order(rng: random.Random) -> None:
    resources = sts_chart() + [stage_group("sg", "IIIB", date="2020-02-01"), ecog("bad", 9)]
    expected = summarise(resources, today=TODAY)
    shuffled = list(resources)
    rng.shuffle(shuffled)
    assert summarise(shuffled, today=TODAY) == expected


def test_duplicates_are_kept_once() -> None:
    chart = sts_chart()
    summary = summarise(chart + chart, today=TODAY)
    assert summary == summarise(chart, today=TODAY)


def test_conflicting_duplicates_resolve_the_same_way_in_any_order() -> None:
    a, b = ecog("e", 1), ecog("e", 2)
    assert summarise([a, b], today=TODAY) == summarise([b, a], today=TODAY)


def test_invalid_resource_is_a_finding_not_a_crash() -> None:
    broken = primary("broken", snomed="443719001")
    broken["onsetDateTime"] = "2020-99-99"
    summary = summarise([broken, {"resourceType": "Observation"}, "junk"], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.UNREADABLE
    assert summary.diagnosis.sources == ("Condition/broken",)
    assert {f.kind for f in summary.findings} == {FindingKind.INVALID, FindingKind.INCOMPLETE}
    assert any(f.about == "diagnosis" for f in summary.findings)
    incomplete = {f.about for f in summary.findings if f.kind is FindingKind.INCOMPLETE}
    assert {"diagnosis", "histology", "stage", "extent"} <= incomplete


def test_an_unreadable_non_condition_leaves_the_diagnosis_none() -> None:
    summary = summarise([{"resourceType": "Observation", "status": 42}], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.NONE


def test_empty_chart() -> None:
    summary = summarise([], today=TODAY)
    assert summary.diagnosis.value is Diagnosis.NONE and summary.findings == ()


def test_future_dated_records_are_set_aside() -> None:
    summary = summarise([primary(snomed="443719001"), ecog("e", 3, date="2030-01-01")], today=TODAY)
    assert summary.ecog is None
    assert any(f.kind is FindingKind.INVALID and f.sources == ("Observation/e",) for f in summary.findings)


def _calls(count: int) -> int:
    """Python function calls made by one summary (deterministic, unlike time)."""
    resources = (
        [primary(snomed="443719001")]
        + [ecog(f"e{i}", i % 5, date=f"20{10 + i % 10}-0{1 + i % 9}-1{i % 10}") for i in range(count)]
        + [grade(f"g{i}", "G2", date=f"20{10 + i % 10}-0{1 + i % 9}-1{i % 10}") for i in range(count)]
    )
    profile = cProfile.Profile()
    profile.runcall(summarise, resources, today=TODAY)
    return pstats.Stats(profile).total_calls


def test_work_grows_linearly_with_observations() -> None:
    small, large = _calls(500), _calls(5000)
    assert large / small < 12, (small, large)  # quadratic work would give ~100


ODD_VALUES = st.sampled_from([None, "", "x", 0, -1, 3.5, [], {}, [{}], {"coding": [{}]}, "2020-13-01", "2999-01-01"])


def _mutate(resource: object, path: list[int], value: object) -> None:
    """Replace (or delete, for None) the element that ``path`` picks, walking dicts and lists."""
    node = resource
    for step in path:
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        if not children:
            return
        key, child = children[step % len(children)]
        if not isinstance(child, (dict, list)) or not child or step == path[-1]:
            if value is None and isinstance(node, dict):
                del node[key]
            else:
                node[key] = value
            return
        node = child


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 100), st.lists(st.integers(0, 50), min_size=1, max_size=4), ODD_VALUES)
def test_never_raises_on_damaged_resources(which: int, path: list[int], value: object) -> None:
    resources = sts_chart() + [stage_group("sg", "IIIB")]
    _mutate(resources[which % len(resources)], path, value)
    summary = summarise(resources, today=TODAY)
    assert summary.diagnosis is not None


def test_a_primary_in_remission_is_followed_up_not_treated() -> None:
    ned = summarise([primary(morphology="8890/3", clinical="remission")], today=TODAY)
    assert ned.diagnosis.value is Diagnosis.STS
    assert ned.in_remission.value is True and ned.in_remission.sources == ("Condition/primary",)
    active = summarise([primary(morphology="8890/3")], today=TODAY)
    assert active.in_remission.value is False
