"""The fast validator's quick string tests are never looser than pydantic's own patterns.

``summary.validate`` accepts a uri, canonical, markdown, string, code or id as it is when a test in
Python passes it, and sends every other value to the field's pydantic validator (whose patterns run
in Rust, with Rust's idea of whitespace). These tests compare the two character by character,
over all of Unicode, so that no string is accepted that ``fhir.resources`` would refuse.
"""

from __future__ import annotations

import random
import sys
from typing import Annotated, Any

import pytest
from fhir_core.types import Code, Id, Markdown, String, Uri
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
