"""CDS Hooks 2.0 response models, in the specification's own field names.

See https://cds-hooks.hl7.org/2.0/#cds-service-response. Serialisation follows "Use of JSON":
optional fields without a value are omitted, never ``null`` or empty (``{"cards": []}`` is the one
exception). Invariants from the 3.0 ballot (cds-resp-1..6) are enforced at construction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from enum import StrEnum
from typing import Any

SUMMARY_MAX = 139  # "<140-character"
NON_ADHERENCE = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"


class Indicator(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Sort key: critical first."""
        return {"critical": 0, "warning": 1, "info": 2}[self.value]


class SelectionBehavior(StrEnum):
    AT_MOST_ONE = "at-most-one"
    ANY = "any"


class ActionType(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class LinkType(StrEnum):
    ABSOLUTE = "absolute"
    SMART = "smart"


def new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Coding:
    code: str
    system: str
    display: str | None = None


@dataclass(frozen=True)
class Source:
    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


@dataclass(frozen=True)
class Action:
    type: ActionType
    description: str
    resource: dict[str, Any] | None = None
    resourceId: str | None = None

    def __post_init__(self) -> None:
        if self.type is ActionType.CREATE and self.resource is None:
            raise ValueError("a create action needs a resource")
        if self.type is ActionType.DELETE and (self.resource is not None or not self.resourceId):
            raise ValueError("a delete action has a resourceId and no resource (cds-resp-2)")


@dataclass(frozen=True)
class Suggestion:
    label: str
    uuid: str = field(default_factory=new_uuid)
    isRecommended: bool | None = None
    actions: tuple[Action, ...] = ()


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    type: LinkType = LinkType.ABSOLUTE
    appContext: str | None = None
    autolaunchable: bool | None = None

    def __post_init__(self) -> None:
        if self.appContext is not None and self.type is not LinkType.SMART:
            raise ValueError("appContext is only allowed on smart links (cds-resp-3)")


@dataclass(frozen=True)
class Card:
    summary: str
    indicator: Indicator
    source: Source
    uuid: str = field(default_factory=new_uuid)
    detail: str | None = None
    suggestions: tuple[Suggestion, ...] = ()
    selectionBehavior: SelectionBehavior | None = None
    overrideReasons: tuple[Coding, ...] = ()
    links: tuple[Link, ...] = ()
    extension: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.summary or len(self.summary) > SUMMARY_MAX:
            raise ValueError(f"card summary must be 1..{SUMMARY_MAX} characters")
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("suggestions require selectionBehavior (cds-resp-6)")
        if self.selectionBehavior is SelectionBehavior.AT_MOST_ONE:
            if sum(1 for s in self.suggestions if s.isRecommended) > 1:
                raise ValueError("at-most-one allows one recommended suggestion (cds-resp-1)")
        if any(not reason.display for reason in self.overrideReasons):
            raise ValueError("every override reason needs a display (cds-resp-4)")


@dataclass(frozen=True)
class CdsResponse:
    cards: tuple[Card, ...] = ()
    systemActions: tuple[Action, ...] = ()

    def to_json(self) -> dict[str, Any]:
        body = _fields_to_json(self)
        body.setdefault("cards", [])  # the one empty value the spec requires
        return body


def to_json(value: Any) -> Any:
    """Serialise a model, dropping ``None`` and empty values as the spec requires."""
    return (_SERIALISERS.get(type(value)) or _serialiser(type(value)))(value)


def _same(value: Any) -> Any:
    return value


def _enum_value(value: StrEnum) -> Any:
    return value._value_  # what ``value.value`` gives, without the enum property's lookup


def _items(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    plain, serialisers = _PLAIN, _SERIALISERS
    return [v if type(v) in plain else (serialisers.get(type(v)) or _serialiser(type(v)))(v) for v in value]


def _mapping(value: dict[Any, Any]) -> dict[Any, Any]:
    plain, serialisers = _PLAIN, _SERIALISERS
    return {
        k: v if type(v) in plain else (serialisers.get(type(v)) or _serialiser(type(v)))(v)
        for k, v in value.items()
        if v is not None
    }


def _serialiser(cls: type) -> Callable[[Any], Any]:
    """How ``to_json`` serialises every value of ``cls``: decided once per type, in this order."""
    if cls is type(None) or cls in _PLAIN:  # the most common: text as it is
        serialiser: Callable[[Any], Any] = _same
    elif issubclass(cls, StrEnum):
        serialiser = _enum_value
    elif issubclass(cls, (str, int, float)):
        serialiser = _same
    elif issubclass(cls, (list, tuple)):
        serialiser = _items
    elif issubclass(cls, dict):
        serialiser = _mapping
    elif is_dataclass(cls) and not issubclass(cls, type):  # an instance of a dataclass, not a class
        serialiser = _fields_to_json
    else:
        serialiser = _same
    _SERIALISERS[cls] = serialiser
    return serialiser


_PLAIN = frozenset({str, int, float, bool})
_EMPTIABLE = frozenset({str, list, dict})  # empty values of these types are left out
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_SERIALISERS: dict[type, Callable[[Any], Any]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _fields_to_json(value: Any) -> dict[str, Any]:
    """A dataclass instance's fields, each serialised, without ``None`` or empty values."""
    out: dict[str, Any] = {}
    plain, serialisers, emptiable = _PLAIN, _SERIALISERS, _EMPTIABLE
    for name in _field_names(type(value)):
        item = getattr(value, name)
        if item is None:
            continue
        if type(item) not in plain:
            item = (serialisers.get(type(item)) or _serialiser(type(item)))(item)
            if item is None:
                continue
        if (not item) and type(item) in emptiable:
            continue
        out[name] = item
    return out


OVERRIDE_REASONS: tuple[Coding, ...] = (
    Coding("expert-contradicts", NON_ADHERENCE, "Tumour board or specialist decided otherwise"),
    Coding("prefers-alternative", NON_ADHERENCE, "Patient prefers an alternative"),
    Coding("patient-refuses", NON_ADHERENCE, "Patient declines"),
    Coding("patient-contraindication", NON_ADHERENCE, "Contraindicated for this patient"),
    Coding("patient-ineligible", NON_ADHERENCE, "Patient not eligible"),
    Coding("action-completed", NON_ADHERENCE, "Already done"),
    Coding("need-more-info", NON_ADHERENCE, "More information needed"),
)
"""Override reasons for treatment cards (CDS Hooks 3.0 ballot non-adherence reason codes)."""
