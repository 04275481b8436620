"""Medication concept -> ingredients: RxNorm ingredient, then SCD/SBD roll-up, then display text
(clinical.md 3.12: real data carries SCD codes such as 1790099, so rules match on the ingredient)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from cds_service.summary.codes import normalise, match_text
from cds_service.summary.concepts import codes_of, text_of


@dataclass(frozen=True)
class Ingredient:
    name: str  # lower-case ingredient, e.g. "doxorubicin"
    rxcui: str | None
    basis: str  # how it was recognised


@cache
def drugs() -> Mapping[str, Any]:
    """``drugs.yaml``, parsed once per process."""
    text = resources.files(__package__).joinpath("drugs.yaml").read_text(encoding="utf-8")
    return normalise(yaml.safe_load(text))


@cache
def _by_rxcui() -> Mapping[str, tuple[str, ...]]:
    table = {str(spec["rxcui"]): (name,) for name, spec in drugs()["ingredients"].items() if "rxcui" in spec}
    table.update(drugs()["products"])
    return table


@cache
def _name_patterns() -> tuple[tuple[str, str], ...]:
    return tuple((alias, name) for name, spec in drugs()["ingredients"].items() for alias in spec["names"])


def _rxcui(name: str) -> str | None:
    value = drugs()["ingredients"][name].get("rxcui")
    return None if value is None else str(value)


def ingredients(concept: Any) -> tuple[Ingredient, ...]:
    """Ingredients of a medication concept, or () when it is not a drug the summary knows."""
    for system, code in codes_of(concept):
        names = _by_rxcui().get(code) if system == "rxnorm" else None
        if names:
            return tuple(Ingredient(n, _rxcui(n), f"RxNorm {code}") for n in names)
    text = text_of(concept)
    names = sorted({name for alias, name in _name_patterns() if match_text(text, (alias,))})
    return tuple(Ingredient(name, _rxcui(name), "display text") for name in names)
