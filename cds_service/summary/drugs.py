"""Medication concept -> ingredients with their drug class: RxNorm ingredient, then SCD/SBD roll-up,
then generic and brand names and regimen abbreviations in the display text (real
data carries SCD codes such as 1790099, so rules match on the ingredient; R4: brand names, text-only
medications and regimens such as "AIM" or "Gem/Tax" are read through tables).

``drugs.yaml`` is loaded once into typed, frozen models; an unknown key or a drug named in a product
or regimen that has no ingredient entry stops start-up with the key at fault.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cds_service.summary.concepts import codes_of, text_of


class DrugClass(StrEnum):
    CYTOTOXIC = "cytotoxic"
    TARGETED = "targeted"
    IMMUNOTHERAPY = "immunotherapy"
    ENDOCRINE = "endocrine"
    SUPPORTIVE = "supportive"
    IMMUNOSUPPRESSANT = "immunosuppressant"

    @property
    def antineoplastic(self) -> bool:
        return self in (DrugClass.CYTOTOXIC, DrugClass.TARGETED, DrugClass.IMMUNOTHERAPY, DrugClass.ENDOCRINE)


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class IngredientSpec(_Table):
    drug_class: DrugClass = Field(alias="class")
    names: tuple[str, ...]
    rxcui: str | None = None
    dual_use: bool = False


class RegimenSpec(_Table):
    names: tuple[str, ...]
    drugs: tuple[str, ...]


class NotGiven(_Table):
    """Stopped orders whose reason says no dose was given."""

    status: frozenset[str]
    reasons: tuple[str, ...]


class DrugTables(_Table):
    """The whole of ``drugs.yaml``."""

    ingredients: dict[str, IngredientSpec]
    products: dict[str, tuple[str, ...]]
    atc: dict[str, str]
    regimens: tuple[RegimenSpec, ...]
    anthracyclines: frozenset[str]
    oncology_text: tuple[str, ...]
    given_in_notes: tuple[str, ...]
    oncology_stems: tuple[str, ...]
    perioperative_text: tuple[str, ...]
    high_dose_text: dict[str, tuple[str, ...]]
    high_dose_g_per_m2: dict[str, float]
    other_indication_text: tuple[str, ...]
    course_gap_days: int
    line_window_days: int
    new_disease_margin_days: int
    coded_new_disease_days: int
    perioperative_relapse_months: int
    ongoing_status: frozenset[str]
    excluded_status: dict[str, frozenset[str]]
    excluded_intent: frozenset[str]
    not_given: NotGiven
    cancer_related_profiles: frozenset[str]

    @model_validator(mode="after")
    def _drugs_are_ingredients(self) -> DrugTables:
        named = [("products", d) for ds in self.products.values() for d in ds]
        named += [("regimens", d) for r in self.regimens for d in r.drugs]
        named += [("anthracyclines", d) for d in self.anthracyclines]
        named += [("atc", d) for d in self.atc.values()]
        unknown = [f"{where}: {drug}" for where, drug in named if drug not in self.ingredients]
        if unknown:
            raise ValueError(f"drugs without an ingredient entry: {', '.join(unknown)}")
        return self


@dataclass(frozen=True)
class Ingredient:
    name: str  # lower-case ingredient, e.g. "doxorubicin"
    rxcui: str | None
    drug_class: DrugClass
    dual_use: bool = False


@cache
def drugs() -> DrugTables:
    """``drugs.yaml``, parsed and checked once per process."""
    text = resources.files(__package__).joinpath("drugs.yaml").read_text(encoding="utf-8")
    return DrugTables.model_validate(yaml.safe_load(text))


@cache
def _by_rxcui() -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {
        spec.rxcui: (name,) for name, spec in drugs().ingredients.items() if spec.rxcui
    }
    table.update(drugs().products)
    return table


@cache
def _name_patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    """Word beginnings of generic and brand names."""
    return tuple(
        (re.compile(r"\b" + re.escape(alias.lower())), name)
        for name, spec in drugs().ingredients.items()
        for alias in spec.names
    )


@cache
def _regimen_patterns() -> tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]:
    """Whole-word abbreviations; "/" stands for any of / + - & with optional spaces."""

    def pattern(abbreviation: str) -> re.Pattern[str]:
        parts = [re.escape(part) for part in abbreviation.lower().split("/")]
        return re.compile(r"(?<![a-z0-9])" + r"\s*[/+&-]\s*".join(parts) + r"(?![a-z0-9])")

    return tuple((pattern(name), regimen.drugs) for regimen in drugs().regimens for name in regimen.names)


def _names_in(text: str) -> set[str]:
    """Ingredients named in ``text``; a name inside a longer name of another drug does not count."""
    hits = [(m.start(), m.end(), name) for pattern, name in _name_patterns() for m in pattern.finditer(text)]
    inside = {
        h
        for h in hits
        for o in hits
        if o[2] != h[2] and o[0] <= h[0] and h[1] <= o[1] and (o[1] - o[0]) > (h[1] - h[0])
    }
    return {name for *_, name in set(hits) - inside}


def _ingredient(name: str) -> Ingredient:
    spec = drugs().ingredients[name]
    return Ingredient(name, spec.rxcui, spec.drug_class, spec.dual_use)


def ingredients(concept: Any) -> tuple[Ingredient, ...]:
    """Ingredients of a medication concept, or () when it is not a drug the summary knows."""
    for system, code in codes_of(concept):
        names = _by_rxcui().get(code) if system == "rxnorm" else None
        if system == "atc" and code in drugs().atc:
            names = (drugs().atc[code],)
        if names:
            return tuple(_ingredient(n) for n in names)
    text = text_of(concept)
    found = _names_in(text)
    for pattern, regimen in _regimen_patterns():
        if pattern.search(text):
            found |= set(regimen)
    return tuple(_ingredient(name) for name in sorted(found))


def says_perioperative(texts: Iterable[str]) -> bool:
    """Whether the record names the course as given around surgery ("neoadjuvant AI", "adjuvant")."""
    words = drugs().perioperative_text
    return any(re.search(r"\b" + re.escape(w) + r"\b", text.lower()) for text in texts for w in words)


_G_PER_M2 = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*g\s*/\s*m(?:2|²)(?P<daily>\s*(?:/\s*d(?:ay)?\b|daily|per day))?")
# how many days a daily dose is given: "days 1-14", "d1-14", "x 14 days", "for 14 days", "over 14 days"
_DAYS = re.compile(r"\b(?:days?|d)\s*1\s*[-–]\s*(\d+)\b|(?:x|×|for|over)\s*(\d+)\s*(?:days?|d)\b")


def _grams_per_m2(text: str) -> list[float]:
    """Each dose in g/m² the text writes, a daily dose times its days when they are written ("1 g/m2/day
    days 1-14" is 14); a daily dose with no days written is read as written."""
    doses = []
    for match in _G_PER_M2.finditer(text):
        dose = float(match.group(1))
        days = _DAYS.search(text, match.end(), match.end() + 40) if match.group("daily") else None
        doses.append(dose * int(days.group(1) or days.group(2)) if days else dose)
    return doses


def says_high_dose(ingredient: str, texts: Iterable[str]) -> bool:
    """Whether the record names the drug as given at high dose ("HD-IFO", "high-dose ifosfamide"), or
    writes a dose at or above the high-dose threshold ("ifosfamide 14 g/m2")."""
    tables = drugs()
    words, least = tables.high_dose_text.get(ingredient, ()), tables.high_dose_g_per_m2.get(ingredient)
    for text in (t.lower() for t in texts):
        if any(re.search(r"\b" + re.escape(w) + r"\b", text) for w in words):
            return True
        if least is not None and any(dose >= least for dose in _grams_per_m2(text)):
            return True
    return False


def looks_oncological(concept: Any) -> bool:
    """Whether a medication the tables cannot read looks like cancer treatment: its name ("chemotherapy",
    "cycle 3 of ...", "trial drug", "NCT0...", a kinase inhibitor's "-tinib") or an ATC code among the
    antineoplastic agents (L01)."""
    if any(system == "atc" and code.startswith("L01") for system, code in codes_of(concept)):
        return True
    return _oncology_words().search(text_of(concept)) is not None


@cache
def _oncology_words() -> re.Pattern[str]:
    conf = drugs()
    starts = "|".join(re.escape(words) for words in conf.oncology_text)
    stems = "|".join(re.escape(stem) for stem in conf.oncology_stems)
    return re.compile(rf"\b(?:{starts})|\B(?:{stems})s?\b")
