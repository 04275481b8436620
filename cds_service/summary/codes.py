"""The code sets the summary reads, loaded from ``codes.yaml``.

Codes live as data so that a terminologist can review them without reading Python. Keys and list
items are normalised to strings (YAML reads ``94391008`` as an integer).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any, cast

import yaml


def normalise(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(key): normalise(value) for key, value in node.items()}
    if isinstance(node, list):
        if all(not isinstance(item, (dict, list)) for item in node):
            return tuple(str(item) for item in node)
        return tuple(normalise(item) for item in node)
    return node


@cache
def codes() -> Mapping[str, Any]:
    """The whole of ``codes.yaml``, parsed once per process."""
    text = resources.files(__package__).joinpath("codes.yaml").read_text(encoding="utf-8")
    return cast(Mapping[str, Any], normalise(yaml.safe_load(text)))


def longest_prefix(table: Mapping[str, Any], code: str) -> tuple[str, Any] | None:
    """The entry whose key is the longest prefix of ``code`` (ICD-10-CM hierarchy by prefix)."""
    for end in range(len(code), 0, -1):
        if code[:end] in table:
            return code[:end], table[code[:end]]
    return None


PREFIX = "*"
"""Ends a table term that deliberately matches word beginnings ("metasta*": metastasis, metastatic)."""
LEADING = "^"
"""Starts a table term found only at the start of a text (or of one of its displays, `` | ``-joined)."""


@cache
def _pattern(words: str) -> re.Pattern[str]:
    """Whole words, a plural "s" allowed: "sarcoma" is not found in "sarcomatoid" or "carcinosarcoma"."""
    start = r"(?:^|\|\s*)" if words.startswith(LEADING) else r"\b"
    words = words.removeprefix(LEADING)
    if words.endswith(PREFIX):
        return re.compile(start + re.escape(words[:-1]))
    return re.compile(start + re.escape(words) + r"s?\b")


def match_text(text: str, patterns: Sequence[Any]) -> Any | None:
    """Value of the first ``[words, value]`` pair (or bare term) found in ``text`` as whole words."""
    for entry in patterns:
        words, value = (entry[0], entry[1]) if isinstance(entry, tuple) else (entry, entry)
        if _pattern(words).search(text):
            return value
    return None
