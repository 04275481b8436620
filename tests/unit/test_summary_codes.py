"""Phrase tables read from ``codes.yaml``: terms match whole words unless the table says otherwise."""

from __future__ import annotations

import pytest

from cds_service.summary.codes import match_text
from cds_service.summary.concepts import describe


@pytest.mark.parametrize(
    "text,found",
    [
        ("leiomyosarcoma", None),
        ("sarcoma of thigh", "sarcoma"),
        ("soft tissue sarcomas", "sarcoma"),
        ("sarcomatoid carcinoma", None),
        ("carcinosarcoma", None),
        ("sarcoidosis", None),
        ("sarcoma-like", "sarcoma"),
    ],
)
def test_a_term_matches_whole_words_only(text: str, found: str | None) -> None:
    assert match_text(text, ["sarcoma"]) == found


def test_a_trailing_star_matches_word_beginnings() -> None:
    assert match_text("metastatic to lung", ["metasta*"]) == "metasta*"
    assert match_text("metastatic to lung", ["metasta"]) is None


@pytest.mark.parametrize(
    "text,found",
    [
        ("previous leiomyosarcoma", True),
        ("lms | previous leiomyosarcoma", True),
        ("leiomyosarcoma on a previous biopsy", False),
    ],
)
def test_a_leading_caret_matches_only_at_the_start_of_a_text(text: str, found: bool) -> None:
    assert (match_text(text, ["^previous"]) is not None) is found


def test_the_first_matching_pair_gives_its_value() -> None:
    table = [("myxoid liposarcoma", "myxoid"), ("liposarcoma", "any")]
    assert match_text("myxoid liposarcoma", table) == "myxoid"
    assert match_text("liposarcoma, dedifferentiated", table) == "any"


def test_a_renamed_code_table_section_stops_start_up_with_one_line(monkeypatch) -> None:
    import importlib

    import yaml

    from cds_service.summary import load_tables

    codes_module = importlib.import_module("cds_service.summary.codes")

    raw = yaml.safe_load(codes_module.resources.files("cds_service.summary").joinpath("codes.yaml").read_text())
    raw["local_recurrence_renamed"] = raw.pop("local_recurrence")
    monkeypatch.setattr(codes_module.yaml, "safe_load", lambda _text: raw)
    codes_module.codes.cache_clear()
    try:
        with pytest.raises(codes_module.TableError) as caught:
            load_tables()
    finally:
        codes_module.codes.cache_clear()
    message = str(caught.value)
    assert message.startswith("codes.yaml: ") and "\n" not in message
    assert "local_recurrence" in message


def test_every_code_table_loads_and_checks() -> None:
    from cds_service.summary import load_tables

    load_tables()


@pytest.mark.parametrize(
    "code,words",
    [
        (("snomed", "94391008"), "SNOMED 94391008"),
        (("loinc", "21858-6"), "LOINC 21858-6"),
        (("icd10", "C49.22"), "ICD-10-CM C49.22"),
        (("icdo3", "8890/3"), "ICD-O-3 8890/3"),
        (("ajcc", "3B"), "AJCC 3B"),
        (("ncit", "C18000"), "NCIt C18000"),
        (("rxnorm", "3639"), "RxNorm 3639"),
        (("http://example.org/codes", "7"), "http://example.org/codes 7"),
    ],
)
def test_a_code_is_named_in_messages_by_its_system_s_usual_name(code: tuple[str, str], words: str) -> None:
    assert describe(code) == words


@pytest.mark.parametrize(
    ("system", "code", "normal"),
    [
        ("http://hl7.org/fhir/sid/icd-10-cm", "C7800", ("icd10", "C78.00")),
        ("http://hl7.org/fhir/sid/icd-10-cm", "C49A2", ("icd10", "C49.A2")),
        ("http://hl7.org/fhir/sid/icd-10-cm", "C78.00", ("icd10", "C78.00")),
        ("http://hl7.org/fhir/sid/icd-10", "C50", ("icd10", "C50")),
        ("http://hl7.org/fhir/sid/icd-o-3", "88583", ("icdo3", "8858/3")),
        ("urn:oid:2.16.840.1.113883.6.96", "94391008", ("snomed", "94391008")),
        ("urn:oid:2.16.840.1.113883.6.88", "3639", ("rxnorm", "3639")),
        ("http://example.org/local", "C7800", ("http://example.org/local", "C7800")),  # another system: as written
    ],
)
def test_codes_are_read_as_the_tables_write_them(system: str, code: str, normal: tuple[str, str]) -> None:
    from cds_service.summary.concepts import normal_code

    assert normal_code(system, code) == normal
