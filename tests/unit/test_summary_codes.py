"""Phrase tables read from ``codes.yaml``: terms match whole words unless the table says otherwise."""

from __future__ import annotations

import pytest

from cds_service.summary.codes import match_text


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
