"""Validation, bucketing and de-duplication of raw FHIR JSON."""

from __future__ import annotations

from datetime import date

from fhir_builders import LOINC, concept, ecog, observation, patient, primary

from cds_service.summary import summarise
from cds_service.summary.context import Context
from cds_service.summary.model import FindingKind
from cds_service.summary.parse import Chart, precheck, read_chart
from cds_service.summary.validate import Prechecked

TODAY = date(2026, 1, 1)


def chart_of(resources: list) -> tuple[Chart, list]:
    ctx = Context(TODAY)
    return read_chart(resources, ctx), ctx.findings


def test_resources_are_bucketed_by_type_with_references() -> None:
    chart = read_chart([patient("p1"), primary("c1"), ecog("e1", 1)], Context(TODAY))
    assert chart.patient == "Patient/p1"
    assert [e.ref for e in chart.conditions] == ["Condition/c1"]
    assert [e.ref for e in chart.observations] == ["Observation/e1"]


def test_invalid_resource_becomes_a_finding_without_its_values() -> None:
    bad = primary("bad")
    bad["onsetDateTime"] = "not-a-date-SECRET"
    chart, findings = chart_of([bad])
    assert chart.conditions == ()
    (finding,) = findings
    assert finding.kind is FindingKind.INVALID and finding.sources == ("Condition/bad",)
    assert "onsetDateTime" in finding.message and "SECRET" not in finding.message


def test_an_invalid_observation_that_is_read_becomes_a_finding_without_its_values() -> None:
    bad = ecog("bad", 1)
    bad["effectiveDateTime"] = "not-a-date-SECRET"
    summary = summarise([bad], today=TODAY)
    assert summary.ecog is None
    (finding,) = [f for f in summary.findings if f.kind is FindingKind.INVALID]
    assert finding.sources == ("Observation/bad",)
    assert "effectiveDateTime" in finding.message and "SECRET" not in finding.message
    gaps = {(f.about, f.sources) for f in summary.findings if f.kind is FindingKind.INCOMPLETE}
    assert gaps == {("ecog", ("Observation/bad",)), ("performance_status_recent", ("Observation/bad",))}


def test_unknown_status_is_invalid() -> None:
    summary = summarise([ecog("e", 1, status="bogus")], today=TODAY)
    assert summary.ecog is None
    assert {f.kind for f in summary.findings} == {FindingKind.INVALID, FindingKind.INCOMPLETE}


def test_observations_are_validated_newest_first_only_as_far_as_they_are_read() -> None:
    older_broken = {**ecog("old", 2, date="2023-01-01"), "status": 42}
    newer = ecog("new", 1, date="2024-06-01")
    summary = summarise([older_broken, newer], today=TODAY)
    assert summary.ecog.value == 1 and summary.ecog.sources == ("Observation/new",)
    assert summary.findings == ()  # the older one is never used, so never validated
    newer_broken = {**ecog("new", 1, date="2024-06-01"), "status": 42}
    summary = summarise([ecog("old", 2, date="2023-01-01"), newer_broken], today=TODAY)
    assert summary.ecog.value == 2  # an older reading, and the summary says so
    assert {(f.kind, f.about, f.sources) for f in summary.findings} == {
        (FindingKind.INVALID, "resource", ("Observation/new",)),
        (FindingKind.INCOMPLETE, "ecog", ("Observation/new",)),
        (FindingKind.INCOMPLETE, "performance_status_recent", ("Observation/new",)),
    }


def test_non_resources_are_reported_not_raised() -> None:
    _, findings = chart_of([None, "text", {"no": "type"}, 42])
    assert len(findings) == 4


def test_duplicates_keep_one_regardless_of_order() -> None:
    older = {**ecog("e", 1), "meta": {"lastUpdated": "2020-01-01T00:00:00Z"}}
    newer = {**ecog("e", 3), "meta": {"lastUpdated": "2021-01-01T00:00:00Z"}}
    for resources in ([older, newer], [newer, older]):
        (entry,) = read_chart(resources, Context(TODAY)).observations
        assert entry.resource["valueInteger"] == 3


def test_unused_observations_are_not_validated() -> None:
    heart_rate = observation("hr", concept(LOINC, "8867-4"), value={"valueQuantity": {"value": "x"}})
    chart, findings = chart_of([heart_rate])
    assert chart.observations == () and findings == []


def test_bundle_entries_are_unpacked() -> None:
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": primary("c1")}]}
    assert [e.ref for e in read_chart([bundle], Context(TODAY)).conditions] == ["Condition/c1"]


def test_resource_without_id_gets_a_stable_reference() -> None:
    anonymous = ecog("x", 2)
    del anonymous["id"]
    first, second = read_chart([anonymous], Context(TODAY)), read_chart([dict(anonymous)], Context(TODAY))
    assert first.observations[0].ref == second.observations[0].ref
    assert first.observations[0].ref.startswith("Observation/#")


def test_resources_the_summary_reads_are_checked_on_arrival_and_others_left_raw() -> None:
    for resource in (primary("c1"), patient("p1"), ecog("e1", 1)):
        checked = precheck(resource)
        assert isinstance(checked, Prechecked) and checked == resource
    unread = observation("o1", concept(LOINC, "8867-4"))  # heart rate: not a code the summary reads
    for raw in (unread, {"resourceType": "Encounter", "id": "x"}, {"resourceType": 7}, ["Condition"], None):
        assert precheck(raw) is raw
    assert summarise([precheck(primary("c1"))], today=TODAY).diagnosis.sources == ("Condition/c1",)


def test_an_entry_that_is_not_a_resource_is_reported() -> None:
    summary = summarise([primary("c1"), {"id": "x"}, "Condition"], today=TODAY)
    invalid = {(f.about, f.message) for f in summary.findings if f.kind is FindingKind.INVALID}
    assert invalid == {("resource", "an entry is not a FHIR resource")}


def test_a_resource_with_many_faults_names_five_of_its_fields_and_says_there_are_more() -> None:
    bad = {**primary("bad"), "onsetDateTime": "x", "recordedDate": "x", "abatementDateTime": "x"}
    bad |= {"note": [{"text": 1, "time": "x"}], "id": "bad", "language": 7, "implicitRules": 5}
    (finding,) = chart_of([bad])[1]
    assert finding.message == (
        "failed FHIR R4B validation (abatementDateTime, implicitRules, language, note.0.text, note.0.time ...); ignored"
    )
    few = {**primary("few"), "onsetDateTime": "x"}
    (finding,) = chart_of([few])[1]
    assert finding.message == "failed FHIR R4B validation (onsetDateTime); ignored"


def test_an_unreadable_condition_makes_the_diagnosis_unreadable_not_absent() -> None:
    bad = primary("bad")
    bad["onsetDateTime"] = "not-a-date"
    summary = summarise([bad], today=TODAY)
    assert summary.diagnosis.value.value == "unreadable" and summary.diagnosis.sources == ("Condition/bad",)
    invalid = [
        (f.message, f.sources) for f in summary.findings if f.kind is FindingKind.INVALID and f.about == "diagnosis"
    ]
    assert invalid == [
        ("no readable cancer diagnosis; the patient's conditions could not all be read or obtained", ("Condition/bad",))
    ]


def test_two_patient_resources_are_a_contradiction_and_the_first_is_the_patient() -> None:
    chart, findings = chart_of([patient("p1"), patient("p2")])
    assert chart.patient == "Patient/p1"
    assert [(f.kind, f.about, f.message, f.sources) for f in findings] == [
        (FindingKind.CONTRADICTION, "patient", "more than one Patient resource", ("Patient/p1", "Patient/p2"))
    ]


def test_without_a_patient_resource_the_patient_is_the_one_subject_of_the_record() -> None:
    assert chart_of([primary("c1"), ecog("e1", 1)])[0].patient == "Patient/p1"
    other = {**primary("c2"), "subject": {"reference": "Patient/p2"}}
    assert chart_of([primary("c1"), other])[0].patient is None
