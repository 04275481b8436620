"""How cards read: the card layout (``cards/layout.yaml``) and the words for fact values
(``cards/labels.yaml``), loaded into frozen models that refuse unknown keys."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from ..summary.model import FACTS
from .conditions import AllOf, ConditionError, compile_when

CARD_KINDS = ("data-quality", "safety", "plan", "scope")  # in the order a chart shows them (R6)
LAYOUT_FILE = "layout.yaml"
LABELS_FILE = "labels.yaml"


class Words(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    short: str
    long: str


class Layout(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cards: dict[str, tuple[str, ...]]
    plan_order_metastatic: tuple[str, ...]
    metastatic_when: dict[str, Any]
    plan_order_local_first: tuple[str, ...]
    local_first_when: dict[str, Any]
    local_group: str  # the group of local treatment
    follow_local: tuple[str, ...]  # groups that come after local treatment where it is the decision at hand
    options_in_summary: int
    options_in_detail: int
    background: tuple[str, ...] = ()  # generic context: linked from the card, not written out
    quiet_guards: tuple[str, ...] = ()  # facts options only need not to contradict: not under "Based on"


class Presentation:
    """The layout, the metastatic test and the value words, checked against groups and facts."""

    def __init__(
        self, layout: Layout, labels: Mapping[str, Mapping[str, Words]], metastatic: AllOf, local_first: AllOf
    ) -> None:
        self.layout = layout
        self.labels = labels
        self.metastatic = metastatic
        self.local_first = local_first
        self._cards = _card_by_group(layout)

    def card_of(self, group: str) -> str | None:
        return self._cards.get(group)

    def words(self, key: str, value: str, *, short: bool) -> str:
        entry = self.labels.get(key, {}).get(value)
        if entry is None:
            return value.replace("-", " ")
        return entry.short if short else entry.long


def _card_by_group(layout: Layout) -> dict[str, str]:
    """Each group's card: the first card in the layout that lists it."""
    cards: dict[str, str] = {}
    for card, groups in layout.cards.items():
        for group in groups:
            cards.setdefault(group, card)
    return cards


class PresentationError(ValueError):
    """``file: where: what is wrong``."""


def load_presentation(folder: Path, groups: set[str]) -> Presentation:
    layout = _model(folder / LAYOUT_FILE, Layout)
    unknown = {g for names in layout.cards.values() for g in names} - groups
    if set(layout.cards) != set(CARD_KINDS) or unknown:
        raise PresentationError(
            f"layout.yaml: cards must be {', '.join(CARD_KINDS)} over known groups; "
            f"unknown: {', '.join(sorted(unknown)) or 'none'}"
        )
    for name in ("plan_order_metastatic", "plan_order_local_first"):
        if set(getattr(layout, name)) != set(layout.cards["plan"]):
            raise PresentationError(f"layout.yaml: {name} must list the plan card's groups")
    if not {layout.local_group, *layout.follow_local} <= set(layout.cards["plan"]):
        raise PresentationError("layout.yaml: local_group and follow_local must be groups of the plan card")
    try:
        metastatic = compile_when(layout.metastatic_when, "metastatic_when")
        local_first = compile_when(layout.local_first_when, "local_first_when")
    except ConditionError as error:
        raise PresentationError(f"layout.yaml: {error}") from None
    return Presentation(layout, _labels(folder / LABELS_FILE), metastatic, local_first)


def _labels(file: Path) -> dict[str, dict[str, Words]]:
    raw = _read(file)
    labels: dict[str, dict[str, Words]] = {}
    for key, values in raw.items():
        spec = FACTS.get(key)
        if spec is None or spec.codes is None or not isinstance(values, dict):
            raise PresentationError(f"{file.name}: {key}: not a fact with coded values")
        bad = {value for value in values if value.split("/", 1)[0] not in spec.codes}  # "liposarcoma/myxoid": a subtype
        if bad:
            raise PresentationError(f"{file.name}: {key}: unknown value(s) {', '.join(sorted(bad))}")
        try:
            labels[key] = {value: Words.model_validate(words) for value, words in values.items()}
        except ValidationError as error:
            raise PresentationError(f"{file.name}: {key}: {error.errors()[0]['msg']}") from None
    return labels


def _model(file: Path, model: type[Layout]) -> Layout:
    try:
        return model.model_validate(_read(file))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PresentationError(f"{file.name}: {where}: {first['msg']}") from None


def _read(file: Path) -> dict[str, Any]:
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise PresentationError(f"{file.name}: must be a mapping")
    return data
