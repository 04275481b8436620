"""``fhir.resources`` stays the reference: the fast validator (``summary.validate``) agrees with it.

On every fixture resource, the mCODE examples, a malformed corpus and thousands of random mutations
of the fixtures, both validate the same resource; any difference in acceptance or in the model
built fails, and so does any difference in the summary of a chart validated each way.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from datetime import date
from functools import cache
from typing import Any

import orjson
import pytest
from fhir_builders import (
    ecog,
    med_administration,
    med_request,
    med_statement,
    patient,
    primary,
    radiotherapy,
    rxnorm,
    size,
    tnm,
)

from cds_service.config import PROJECT_ROOT
from cds_service.summary import summarise, validate
from cds_service.summary.parse import precheck
from cds_service.summary.validate import MODELS, check, reference, shared_elements

TODAY = date(2026, 3, 1)
MCODE_EXAMPLES = PROJECT_ROOT / "tests" / "data" / "mcode-examples"
Resource = dict[str, Any]


@cache
def fixture_charts() -> dict[str, list[Resource]]:
    charts = {}
    for path in sorted((PROJECT_ROOT / "fhir_fixtures").glob("*.json")):
        bundle = json.loads(path.read_text("utf-8"))
        charts[path.stem] = [entry["resource"] for entry in bundle.get("entry", [])]
    return charts


def mcode_examples() -> list[Resource]:
    return [json.loads(path.read_text("utf-8")) for path in sorted(MCODE_EXAMPLES.rglob("*.json"))]


@cache
def read_resources() -> list[tuple[str, Resource]]:
    """Every resource of a type the summary validates, named for the report."""
    named = [(f"{slug}/{r.get('id')}", r) for slug, chart in fixture_charts().items() for r in chart]
    named += [(f"mcode/{r.get('id')}", r) for r in mcode_examples()]
    return [(name, r) for name, r in named if r.get("resourceType") in MODELS]


# ---- the malformed corpus: one named fault each, on a resource that is otherwise valid ----


def _with(resource: Resource, change: Callable[[Resource], object]) -> Resource:
    changed = copy.deepcopy(resource)
    change(changed)
    return changed


def _set(path: str, value: Any) -> Callable[[Resource], None]:
    """``_set("code.coding.0.code", 5)``: replace one value (list indices as numbers)."""

    def change(resource: Resource) -> None:
        *parents, last = path.split(".")
        node: Any = resource
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _drop(key: str) -> Callable[[Resource], None]:
    return lambda resource: resource.pop(key)


ECOG = ecog("e1", 1, date="2025-06-01")
PRIMARY = primary("c1", onset="2024-01-10")
MED = med_statement("m1", rxnorm("3639"))
REQUEST = med_request("r1", rxnorm("3639"))
ADMIN = med_administration("a1", rxnorm("3639"))
PATIENT = patient("p1", birthDate="1960-05-01", gender="female")
SIZE = size("s1", 7.5)
T = tnm("t1", "T2")
RT = radiotherapy("rt1")

MALFORMED: dict[str, Resource] = {
    # wrong JSON types
    "status is a number": _with(ECOG, _set("status", 42)),
    "status is a list": _with(ECOG, _set("status", ["final"])),
    "code is a string": _with(ECOG, _set("code", "89247-1")),
    "code is a list": _with(ECOG, lambda r: r.update(code=[r["code"]])),
    "coding is an object": _with(ECOG, lambda r: r["code"].update(coding=r["code"]["coding"][0])),
    "coding code is a number": _with(ECOG, _set("code.coding.0.code", 89247)),
    "coding system is a number": _with(ECOG, _set("code.coding.0.system", 7)),
    "valueInteger is a string of letters": _with(ECOG, lambda r: r.update(valueInteger="one")),
    "valueInteger is a fraction": _with(ECOG, lambda r: r.update(valueInteger=1.5)),
    "valueInteger out of 32-bit range": _with(ECOG, lambda r: r.update(valueInteger=2**31)),
    "quantity value is a string of letters": _with(SIZE, _set("component.0.valueQuantity.value", "seven")),
    "quantity value is infinite": _with(SIZE, _set("component.0.valueQuantity.value", float("inf"))),
    "subject is a string": _with(ECOG, _set("subject", "Patient/p1")),
    "subject reference is an object": _with(ECOG, _set("subject.reference", {"id": "p1"})),
    "gender is a boolean": _with(PATIENT, _set("gender", True)),
    "deceasedBoolean is an object": _with(PATIENT, lambda r: r.update(deceasedBoolean={"value": True})),
    "meta is a list": _with(ECOG, lambda r: r.update(meta=[{"profile": []}])),
    "profile is a string": _with(ECOG, lambda r: r.update(meta={"profile": "http://x"})),
    "profile holds a number": _with(ECOG, lambda r: r.update(meta={"profile": ["http://x", 7]})),
    "profile holds a null": _with(ECOG, lambda r: r.update(meta={"profile": ["http://x", None]})),
    "profile holds a lone surrogate": _with(ECOG, lambda r: r.update(meta={"profile": ["http://x\ud800"]})),
    "given name is empty text": _with(PATIENT, lambda r: r.update(name=[{"family": "X", "given": ["Ann", ""]}])),
    "given name is a number": _with(PATIENT, lambda r: r.update(name=[{"family": "X", "given": [5]}])),
    "dosage is an object": _with(REQUEST, lambda r: r.update(dosageInstruction={"text": "daily"})),
    # required elements missing
    "Observation without status": _with(ECOG, _drop("status")),
    "Observation without code": _with(ECOG, _drop("code")),
    "Condition without subject": _with(PRIMARY, _drop("subject")),
    "MedicationStatement without status": _with(MED, _drop("status")),
    "MedicationStatement without subject": _with(MED, _drop("subject")),
    "MedicationStatement without a medication": _with(MED, _drop("medicationCodeableConcept")),
    "MedicationRequest without intent": _with(REQUEST, _drop("intent")),
    "MedicationAdministration without effective[x]": _with(
        ADMIN, lambda r: [r.pop(k) for k in list(r) if k.startswith("effective")]
    ),
    "Procedure without status": _with(RT, _drop("status")),
    "Extension without url": _with(PATIENT, lambda r: r.update(extension=[{"valueString": "x"}])),
    # bad primitive formats
    "date with month 13": _with(ECOG, lambda r: r.update(effectiveDateTime="2025-13-01")),
    "date on 30 February": _with(ECOG, lambda r: r.update(effectiveDateTime="2025-02-30")),
    "dateTime with time but no zone": _with(ECOG, lambda r: r.update(effectiveDateTime="2025-06-01T10:00:00")),
    "dateTime as words": _with(ECOG, lambda r: r.update(effectiveDateTime="June 2025")),
    "year 0000": _with(ECOG, lambda r: r.update(effectiveDateTime="0000")),
    "birthDate with a time": _with(PATIENT, _set("birthDate", "1960-05-01T00:00:00Z")),
    "issued without a time": _with(ECOG, lambda r: r.update(issued="2025-06-01")),
    "id with a space": _with(ECOG, _set("id", "e 1")),
    "id with an underscore": _with(ECOG, _set("id", "e_1")),
    "id of 256 characters": _with(ECOG, _set("id", "e" * 256)),
    "empty id": _with(ECOG, _set("id", "")),
    "code with two spaces": _with(ECOG, _set("status", "fi  nal")),
    "code with a leading space": _with(ECOG, _set("status", " final")),
    "empty code": _with(ECOG, _set("code.coding.0.code", "")),
    "string of spaces": _with(ECOG, _set("code.coding.0.display", "   ")),
    "empty string": _with(ECOG, lambda r: r["code"].update(text="")),
    "lone surrogate in a string": _with(ECOG, lambda r: r["code"].update(text="a\ud800b")),
    "decimal as a boolean": _with(SIZE, _set("component.0.valueQuantity.value", True)),
    # unknown elements
    "unknown top-level element": _with(ECOG, lambda r: r.update(colour="blue")),
    "unknown nested element": _with(ECOG, lambda r: r["code"]["coding"][0].update(colour="blue")),
    "misspelt element": _with(PRIMARY, lambda r: r.update(onsetDatetime=r.pop("onsetDateTime"))),
    "choice element without its type": _with(ECOG, lambda r: r.update(value=r.pop("valueInteger"))),
    "resourceType inside an element": _with(ECOG, lambda r: r["code"].update(resourceType="CodeableConcept")),
    "wrong resourceType for a nested resource": _with(
        REQUEST, lambda r: r.update(contained=[{"resourceType": "Coding", "id": "x"}])
    ),
    # nulls
    "null status": _with(ECOG, _set("status", None)),
    "null code": _with(ECOG, _set("code", None)),
    "null in a list of codings": _with(ECOG, lambda r: r["code"]["coding"].append(None)),
    "null in a list of categories": _with(ECOG, lambda r: r.update(category=[None])),
    # choice types
    "two types of effective[x]": _with(ECOG, lambda r: r.update(effectivePeriod={"start": "2025-01-01"})),
    "two types of value[x]": _with(ECOG, lambda r: r.update(valueString="one")),
    "value[x] of a type Observation does not allow": _with(ECOG, lambda r: r.update(valueDecimal=1.0)),
    "medication[x] of two types": _with(MED, lambda r: r.update(medicationReference={"reference": "Medication/x"})),
    "onset[x] of a type Condition does not allow": _with(PRIMARY, lambda r: r.update(onsetInteger=3)),
    # cardinality
    "status repeated": _with(ECOG, _set("status", ["final", "amended"])),
    "subject repeated": _with(ECOG, lambda r: r.update(subject=[r["subject"], r["subject"]])),
    "valueCodeableConcept repeated": _with(T, lambda r: r.update(valueCodeableConcept=[r["valueCodeableConcept"]])),
    "identifier not a list": _with(ECOG, lambda r: r.update(identifier={"value": "x"})),
    "empty list of codings": _with(ECOG, lambda r: r["code"].update(coding=[])),
}
# Faults fhir.resources lets through (the fast path leaves them to it, so it agrees): a null for a
# required complex element, a matching resourceType inside an element, a string of spaces (its
# pattern allows them), an empty array, a null among the strings of a 0..* element.
ACCEPTED_BY_REFERENCE = {
    "null code",
    "resourceType inside an element",
    "string of spaces",
    "empty list of codings",
    "profile holds a null",
}


def test_the_malformed_corpus_covers_every_kind_of_fault() -> None:
    assert len(MALFORMED) >= 50


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_each_malformed_resource_gets_the_verdict_fhir_resources_gives(name: str) -> None:
    resource = MALFORMED[name]
    assert_agree(resource)
    assert reference_accepts(resource) == (name in ACCEPTED_BY_REFERENCE)


def test_every_fixture_and_mcode_resource_gets_the_same_model_from_both() -> None:
    resources = read_resources()
    assert len(resources) > 1000
    differences = [f"{name}: {why}" for name, r in resources if (why := disagreement(r))]
    assert differences == []
    fast = sum(validate.fast(r["resourceType"], r) is not None for _, r in resources)
    assert fast == len(resources)  # every valid fixture resource takes the fast path


def _contained_medication(resource: Resource) -> None:
    resource.pop("medicationCodeableConcept")
    resource["medicationReference"] = {"reference": "#med"}
    resource["contained"] = [{"resourceType": "Medication", "id": "med", "code": rxnorm("3639")}]


CONTAINED = {
    "request": _with(REQUEST, _contained_medication),
    "statement": _with(MED, _contained_medication),
    "administration": _with(ADMIN, _contained_medication),
}


@pytest.mark.parametrize("name", sorted(CONTAINED))
def test_a_contained_medication_gets_the_model_fhir_resources_gives(name: str) -> None:
    resource = CONTAINED[name]
    assert_agree(resource)
    (medication,) = check(resource["resourceType"], resource).model.contained
    assert medication.get_resource_type() == "Medication" and medication.code.coding[0].code == "3639"


VALID_AND_UNCOMMON: dict[str, Resource] = {
    "medication by reference": _with(
        MED,
        lambda r: (
            r.update(medicationReference={"reference": "Medication/x"}) if r.pop("medicationCodeableConcept") else None
        ),
    ),
    "effectivePeriod": _with(ECOG, lambda r: r.update(effectivePeriod={"start": r.pop("effectiveDateTime")})),
    "deceasedDateTime": _with(PATIENT, lambda r: r.update(deceasedDateTime="2024-02-01")),
}


@pytest.mark.parametrize("name", sorted(VALID_AND_UNCOMMON))
def test_valid_resources_with_uncommon_elements_take_the_fast_path_to_the_same_model(name: str) -> None:
    resource = VALID_AND_UNCOMMON[name]
    built = validate.fast(resource["resourceType"], resource)
    assert built is not None
    assert model_difference(built, reference(resource["resourceType"], resource)) is None


def test_random_mutations_of_fixture_resources_get_the_same_verdict_and_model() -> None:
    rng = random.Random(1515)
    originals = [r for _, r in read_resources()]
    differences = []
    for _ in range(2500):
        mutant = mutate(copy.deepcopy(rng.choice(originals)), rng)
        if why := disagreement(mutant):
            differences.append(f"{json.dumps(mutant)[:300]}: {why}")
    assert differences == []


def test_originals_and_mutants_checked_in_one_summary_get_the_verdict_and_model_of_each() -> None:
    """One ``shared_elements`` block for all: a mutant meets the elements its original shared."""
    rng = random.Random(1516)
    originals = [r for _, r in read_resources()]
    differences = []
    with shared_elements():
        for _ in range(1500):
            original = rng.choice(originals)
            for resource in (original, mutate(copy.deepcopy(original), rng)):
                kind = resource["resourceType"]
                try:
                    expected = reference(kind, resource)
                except Exception:
                    expected = None
                built = validate.fast(kind, resource)
                if built is not None and (expected is None or (why := model_difference(built, expected))):
                    differences.append(f"{json.dumps(resource)[:300]}: {why if expected else 'accepted'}")
    assert differences == []


def test_an_element_orjson_cannot_write_exactly_is_never_shared() -> None:
    """orjson writes NaN and the infinities as null: such an element must not stand for another."""
    for value in (float("nan"), float("inf"), -float("inf"), None):
        assert not validate._shareable(orjson.dumps({"value": value}))
    assert validate._shareable(orjson.dumps({"value": 1.5, "unit": "cm"}))
    quantity = {"resourceType": "Observation", "status": "final", "code": {"text": "size"}}
    with shared_elements():
        for value in (float("nan"), None, 1.5):
            resource = {**quantity, "valueQuantity": {"value": value, "unit": "cm"}}
            assert disagreement(resource) is None
            assert (validate.fast("Observation", resource) is None) == (value != 1.5)


@pytest.mark.parametrize("slug", sorted(fixture_charts()))
def test_every_fixture_chart_gives_the_same_summary_either_way(slug: str, monkeypatch: pytest.MonkeyPatch) -> None:
    chart = fixture_charts()[slug]
    assert_same_summary(chart, monkeypatch)


def test_the_mcode_examples_give_the_same_summary_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    assert_same_summary(mcode_examples(), monkeypatch)


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_chart_holding_a_malformed_resource_gives_the_same_summary_either_way(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    chart = [PATIENT, PRIMARY, ECOG, T, SIZE, MED, REQUEST, ADMIN, RT]
    faulty = MALFORMED[name]
    chart = [r for r in chart if r["id"] != faulty["id"]] + [faulty]
    assert_same_summary(chart, monkeypatch)


# ---- helpers ----


def reference_accepts(resource: Resource) -> bool:
    try:
        reference(resource["resourceType"], resource)
    except Exception:
        return False
    return True


def disagreement(resource: Resource) -> str | None:
    """Why the two validators disagree on ``resource``, or None."""
    kind = resource["resourceType"]
    try:
        expected = reference(kind, resource)
    except Exception:
        expected = None
    fast = validate.fast(kind, resource)
    if fast is not None and expected is None:
        return "the fast path accepts what fhir.resources refuses"
    if (check(kind, resource).model is None) != (expected is None):
        return "check() and fhir.resources differ in acceptance"
    with shared_elements():  # as in a hook call: the second time, its elements of strings are met again
        validate.fast(kind, resource)
        shared = validate.fast(kind, resource)
    if (shared is None) != (fast is None):
        return "checking with shared elements differs in acceptance"
    if shared is not None and (why := model_difference(shared, expected)):
        return f"with shared elements: {why}"
    return None if fast is None else model_difference(fast, expected)


def assert_agree(resource: Resource) -> None:
    assert disagreement(resource) is None


def model_difference(a: Any, b: Any, path: str = "$") -> str | None:
    """The first place two values differ: class, fields set, or value (type included)."""
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} vs {type(b).__name__}"
    if hasattr(a, "model_fields_set"):
        if a.model_fields_set != b.model_fields_set:
            return f"{path}: fields set {sorted(a.model_fields_set)} vs {sorted(b.model_fields_set)}"
        for key in a.__dict__.keys() | b.__dict__.keys():
            if found := model_difference(a.__dict__.get(key), b.__dict__.get(key), f"{path}.{key}"):
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items vs {len(b)}"
        pairs = enumerate(zip(a, b, strict=True))
        return next(filter(None, (model_difference(x, y, f"{path}[{i}]") for i, (x, y) in pairs)), None)
    return None if a == b and repr(a) == repr(b) else f"{path}: values differ"


def assert_same_summary(chart: list[Resource], monkeypatch: pytest.MonkeyPatch) -> None:
    fast = summarise(chart, today=TODAY)
    prechecked = summarise([precheck(r) for r in chart], today=TODAY)
    with shared_elements():
        shared = summarise(chart, today=TODAY)
    with monkeypatch.context() as patch:
        patch.setattr(validate, "fast", lambda kind, raw: None)  # every resource through fhir.resources
        expected = summarise(chart, today=TODAY)
    assert fast == expected
    assert prechecked == expected
    assert shared == expected


# ---- random mutations ----

ODD_VALUES: list[Any] = [
    None,
    0,
    -1,
    1.5,
    2**40,
    True,
    "",
    " ",
    "x  y",
    "a\ud800",
    "2025-13-01",
    "2025-02-30",
    "2025-06-01T10:00:00",
    "2025-06-01T10:00:00Z",
    "2025-06",
    "bad id!",
    "final",
    [],
    [None],
    {},
    {"extension": [{"url": "http://x", "valueString": "y"}]},
]


def _slots(node: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key or index) in a JSON tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield node, key
            yield from _slots(value)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield node, index
            yield from _slots(value)


def mutate(resource: Resource, rng: random.Random) -> Resource:
    """One random fault somewhere in ``resource``: a value replaced, dropped, wrapped or unwrapped,
    an unknown, extension, or second choice element added."""
    container, key = rng.choice(list(_slots(resource)))
    if key == "resourceType" and container is resource:
        return resource
    value = container[key]
    action = rng.randrange(7)
    if action == 0:
        container[key] = copy.deepcopy(rng.choice(ODD_VALUES))
    elif action == 1 and isinstance(container, dict):
        del container[key]
    elif action == 2:
        container[key] = [value]
    elif action == 3 and isinstance(value, list) and value:
        container[key] = value[0]
    elif action == 4 and isinstance(container, dict):
        container[rng.choice(["bogus", "_" + str(key), "resourceType", "valueString", "effectivePeriod"])] = (
            copy.deepcopy(rng.choice(ODD_VALUES[1:]))
        )
    elif action == 5 and isinstance(container, dict) and isinstance(key, str):
        container["_" + key] = {"extension": [{"url": "http://example.org", "valueCode": "unknown"}]}
    elif isinstance(value, str):
        container[key] = value + rng.choice([" ", "\n", "  x", "T10:00:00+01:00", "-01", "é"])
    return resource
