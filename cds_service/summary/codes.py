"""The code sets the summary reads, loaded from ``codes.yaml``.

Codes live as data so that a terminologist can review them without reading Python. Keys and list
items are normalised to strings (YAML reads ``94391008`` as an integer).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import cache, lru_cache
from importlib import resources
from typing import Any, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


def normalise(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(key): normalise(value) for key, value in node.items()}
    if isinstance(node, list):
        if all(not isinstance(item, (dict, list)) for item in node):
            return tuple(str(item) for item in node)
        return tuple(normalise(item) for item in node)
    return node


_Table = dict[str, Any]


class CodeTables(BaseModel):
    """The sections of ``codes.yaml``: each is read by name, so a renamed or missing section, or one
    of the wrong shape, must stop start-up rather than fail a hook call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    systems: _Table
    statuses: _Table
    report_read_status: list[str]
    report_categories: list[str]
    autopsy_reports: _Table
    condition: _Table
    past_diagnosis: _Table
    histology: _Table
    histology_diagnosis: _Table
    generic_sarcoma: _Table
    ambiguous_histology: _Table
    other_primary: _Table
    other_histology: _Table
    other_stage_systems: _Table
    no_evidence_of_disease: _Table
    death_codes: _Table
    diagnosis_precedence: list[str]
    diagnosis_names: _Table
    secondary: _Table
    body_site_organ: dict[Any, Any]
    organ_text: list[Any]
    local_organs: list[str]
    recurrence_regions: dict[str, tuple[str, str]]
    adjoining_regions: list[tuple[str, str]]
    limbs: _Table
    staging_scan_before_onset_days: int = Field(gt=0)
    local_recurrence: _Table
    laterality: _Table
    site: _Table
    observation_kinds: _Table
    observation_profiles: dict[str, list[str]]
    observation_names: dict[str, list[str]]
    pathological_codes: _Table
    size_component: _Table
    editions: _Table
    tnm_values: _Table
    stage_values: _Table
    grade_values: _Table
    karnofsky_to_ecog: list[tuple[int, int]]
    pregnancy: _Table
    performance_status_recent_days: int = Field(gt=0)
    performance_note_time: dict[str, tuple[str, ...]]
    ecog_answers: _Table
    negative_imaging: _Table
    m0_unless_recorded: list[str]
    disease_status_values: _Table
    no_response_reason: _Table
    refusal_reason: _Table
    metastasis_complications: _Table
    regional_nodes: _Table
    judgements: _Table


class TableError(ValueError):
    """A code table that cannot be used; the message names the file, the key and what was expected."""


def table_error(file: str, error: ValidationError) -> TableError:
    """The first problem of a table, in one line: the file, the key and what was expected."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return TableError(f"{file}: {where}: {first['msg']}")


def check(file: str, model: type[BaseModel], data: Any) -> None:
    """Validate ``data`` against ``model``, or raise ``TableError``."""
    try:
        model.model_validate(data)
    except ValidationError as error:
        raise table_error(file, error) from None


@cache
def codes() -> Mapping[str, Any]:
    """The whole of ``codes.yaml``, checked and parsed once per process."""
    text = resources.files(__package__).joinpath("codes.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    check("codes.yaml", CodeTables, raw)
    return cast(Mapping[str, Any], normalise(raw))


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


def match_text(
    text: str, patterns: Sequence[Any], stated: Callable[[str, re.Match[str]], bool] | None = None
) -> Any | None:
    """Value of the first ``[words, value]`` pair (or bare term) found in ``text`` as whole words;
    with ``stated``, only where the text states it (not negated or hedged there)."""
    terms = tuple(entry[0] if isinstance(entry, tuple) else entry for entry in patterns)
    if _any_term(terms).search(text) is None:
        return None  # no term of the table is in the text: one search instead of one per term
    for entry in patterns:
        words, value = (entry[0], entry[1]) if isinstance(entry, tuple) else (entry, entry)
        if any(stated is None or stated(text, found) for found in _pattern(words).finditer(text)):
            return value
    return None


@lru_cache(maxsize=1024)
def _any_term(terms: tuple[str, ...]) -> re.Pattern[str]:
    """Every term of a table as one pattern: it finds something exactly when one of the terms does."""
    return re.compile("|".join(f"(?:{_pattern(words).pattern})" for words in terms))
