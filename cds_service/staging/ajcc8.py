"""AJCC 8th-edition STS stage grouping, evaluated from the tables in ``ajcc8.yaml``.

Works on plain strings ("extremity", "T2", "G3") so that it depends on nothing else in the package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, TypedDict, cast

import yaml

CATEGORIES = ("T", "N", "M", "G")


@dataclass(frozen=True)
class Grouping:
    """Outcome of stage grouping: the group, or the categories that were missing."""

    group: str | None
    table: str | None  # "trunk/extremity", "retroperitoneum"; None when the site has no grouping
    missing: tuple[str, ...] = ()


class _Tables(TypedDict):
    """The layout of ``ajcc8.yaml``."""

    sites: dict[str, str | None]
    table_names: dict[str, str]
    size_to_t: dict[str, list[list[Any]]]  # [[upper bound in cm or null, category], ...]
    tables: dict[str, list[dict[str, Any]]]


@cache
def _data() -> _Tables:
    text = resources.files(__package__).joinpath("ajcc8.yaml").read_text(encoding="utf-8")
    return cast(_Tables, yaml.safe_load(text))


def rows(table: str) -> Sequence[Mapping[str, Any]]:
    """The rows of one stage-group table, in the order written."""
    return _data()["tables"][table]


def table_for(site: str) -> str | None:
    """The stage-group table of a site class; None where AJCC 8 gives no grouping (2.5)."""
    return _data()["sites"].get(site)


def has_stage_groups(site: str) -> bool:
    return table_for(site) is not None


def t_from_size(site: str, size_cm: float) -> str | None:
    """T category from the greatest dimension (2.2); None for sites whose T is not size-based."""
    for upper, category in _data()["size_to_t"].get(site, ()):
        if upper is None or size_cm <= upper:
            return str(category)
    return None


def _matches(allowed: Any, value: str | None) -> bool:
    return allowed == "any" or (value is not None and value in allowed)


def group(site: str, t: str | None, n: str | None, m: str | None, g: str | None) -> Grouping:
    """Stage group by the first matching row; unknown categories match only "any" rows."""
    table = table_for(site)
    if table is None:
        return Grouping(None, None)
    values = {"T": t, "N": n, "M": m, "G": g}
    name = _data()["table_names"][table]
    for row in rows(table):
        if all(_matches(row[category], values[category]) for category in CATEGORIES):
            return Grouping(str(row["stage"]), name)
    return Grouping(None, name, tuple(c for c in CATEGORIES if values[c] is None))
