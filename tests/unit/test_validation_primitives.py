"""The fast validator's quick string tests are never looser than pydantic's own patterns.

``summary.validate`` accepts a uri, canonical, markdown, string, code or id as it is when a test in
Python passes it, and sends every other value to the field's pydantic validator (whose patterns run
in Rust, with Rust's idea of whitespace). These tests compare the two character by character,
over all of Unicode, so that no string is accepted that ``fhir.resources`` would refuse. A dateTime
or instant read in Python is compared with the validator's reading over bounds and variations.
"""

from __future__ import annotations

import random
import sys
from datetime import datetime
from typing import Annotated, Any

import pytest
from fhir_core.types import Code, DateTime, Id, Instant, Markdown, String, Uri
from pydantic import TypeAdapter, ValidationError

from cds_service.summary import validate

SURROGATES = range(0xD800, 0xE000)
ALL_TEXT = [chr(c) for c in range(sys.maxunicode + 1) if c not in SURROGATES]
NOT_PYTHON_SPACE = "".join(c for c in ALL_TEXT if not c.isspace())
PYTHON_SPACE = [c for c in ALL_TEXT if c.isspace()]
TYPES: dict[str, Any] = {
    "uri": Annotated[str, Uri()],
    "markdown": Annotated[str, Markdown()],
    "string": Annotated[str, String()],
    "code": Annotated[str, Code()],
    "id": Annotated[str, Id()],
}


def quick_test(kind: str) -> Any:
    test = validate._plain(TYPES[kind])
    assert test is not None
    return test


def pydantic_accepts(kind: str, value: str) -> bool:
    try:
        return TypeAdapter(TYPES[kind]).validate_python(value) == value
    except ValidationError:
        return False


def test_every_character_python_calls_non_space_is_non_space_to_pydantic() -> None:
    """A code is tokens of non-space characters: one code made of every character Python does not
    call whitespace is valid only if pydantic's regex sees none of them as whitespace either. That
    is what makes the quick code and string tests safe."""
    assert pydantic_accepts("code", NOT_PYTHON_SPACE)
    assert pydantic_accepts("string", NOT_PYTHON_SPACE)


@pytest.mark.parametrize("kind", ["string", "code"])
def test_whitespace_alone_or_doubled_is_never_passed_by_the_quick_test(kind: str) -> None:
    test = quick_test(kind)
    for space in PYTHON_SPACE:
        for text in (space, f"a{space}{space}b", f"{space}a", f"a{space}"):
            assert not test(text) or pydantic_accepts(kind, text), repr(text)


@pytest.mark.parametrize("kind", list(TYPES))
def test_lone_surrogates_are_left_to_pydantic_which_refuses_them(kind: str) -> None:
    test = quick_test(kind)
    for text in ("a\ud800b", "\udfff", "x y\udc00"):
        assert not test(text)
        assert not pydantic_accepts(kind, text)


@pytest.mark.parametrize("kind", list(TYPES))
def test_random_strings_passed_by_the_quick_test_are_valid_as_they_are(kind: str) -> None:
    rng = random.Random(15)
    alphabet = ["a", "Z", "0", "-", ".", "_", "é", "\u00a0", "\u3000", "\x1c", "\x85", *PYTHON_SPACE[:12]]
    test = quick_test(kind)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        if test(text):
            assert pydantic_accepts(kind, text), repr(text)


def test_ids_follow_the_id_pattern_and_length() -> None:
    test = quick_test("id")
    limit = validate._ID_LENGTH
    for text in ("a", "A-1.b", "x" * limit, "x" * (limit + 1), "a b", "a_b", "a\n", "é", ""):
        assert not test(text) or pydantic_accepts("id", text), repr(text)
    assert test("A-1.b") and not test("x" * (limit + 1)) and not test("a\n")
    for code in range(0x80):
        text = f"a{chr(code)}"
        assert test(text) == pydantic_accepts("id", text), repr(text)


DATE_TIMES: dict[str, Any] = {"dateTime": Annotated[datetime, DateTime()], "instant": Annotated[datetime, Instant()]}


def reference_reading(kind: str, value: str) -> Any:
    try:
        return TypeAdapter(DATE_TIMES[kind]).validate_python(value)
    except ValidationError:
        return None


def date_time_cases() -> list[str]:
    """The usual form, every field at and beyond its bounds, other forms, and random variations."""
    usual = "2021-03-01T09:00:00+00:00"
    cases = [
        usual,
        "2021-03-01T09:00:00Z",
        "2021-03-01T09:00:00-00:00",
        "2024-02-29T23:59:59+14:00",
        "2023-02-29T10:00:00Z",
        "2021-04-31T10:00:00Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-13:59",
        "2021-13-01T09:00:00Z",
        "2021-00-01T09:00:00Z",
        "2021-03-00T09:00:00Z",
        "2021-03-01T24:00:00Z",
        "2021-03-01T09:60:00Z",
        "2016-12-31T23:59:60Z",
        "2021-03-01T09:00:00+14:01",
        "2021-03-01T09:00:00+15:00",
        "2021-03-01T09:00:00-14:00",
        "2021-03-01T09:00:00+05:60",
        "2021-03-01T09:00:00.123Z",
        "2021-03-01T09:00:00",
        "2021-03-01T09:00Z",
        "2021-03-01 09:00:00Z",
        "2021-03-01t09:00:00Z",
        "2021-03-01T09:00:00z",
        "2021-03-01T09:00:00+0000",
        "2021-03-01",
        "2021-03",
        "2021",
        "\u0662021-03-01T09:00:00Z",
        "2021-03-01T09:00:00+00:00\n",
        " 2021-03-01T09:00:00Z",
    ]
    rng = random.Random(16)
    alphabet = "0123456789-:+TZ .\u0661"
    for _ in range(3000):
        chars = list(usual if rng.random() < 0.7 else "2021-03-01T09:00:00Z")
        for _ in range(rng.randint(1, 3)):
            chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        cases.append("".join(chars))
    return cases


@pytest.mark.parametrize("kind", list(DATE_TIMES))
def test_a_date_time_read_in_python_is_what_the_validator_reads(kind: str) -> None:
    """Never looser, and the same value down to its time zone's class (``repr``)."""
    parse = validate._parse(DATE_TIMES[kind])
    assert parse is not None
    read = 0
    for text in date_time_cases():
        value = parse(text)
        if value is not None:
            read += 1
            expected = reference_reading(kind, text)
            assert expected is not None, repr(text)
            assert (value, repr(value)) == (expected, repr(expected)), repr(text)
    assert read > 100
