"""The `when:` vocabulary of ``cards/``: declarative conditions over ``PatientSummary.facts()``.

A `when:` block is a mapping; every entry must hold (AND). Entries are

- ``<fact key>: <value>``: the fact equals the value (``extent: lung-only``, ``local_recurrence: true``);
- ``<fact key>: {<operator>: <argument>, ...}``: every operator holds;
- ``any_of: [<when block>, ...]``: at least one block holds;
- ``all_of: [<when block>, ...]``: every block holds (to hold two ``any_of`` in one block).

Operators: ``equals``, ``in``, ``not_in`` (codes); ``min``, ``max`` (numbers, inclusive);
``includes`` (the set holds at least one of), ``excludes`` (the set holds none of);
``missing: true`` (the fact is unknown), ``missing: false`` (the fact is known).
A condition on an unknown fact is false, unless it adds ``or_missing: true``.
Values are checked against the fact declarations (``summary.model.FACTS``) so a typo stops start-up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from ..summary.model import FACT_KEYS, FACTS, Fact, FactSpec, ValueKind


class ConditionError(ValueError):
    """A `when:` entry that is not in the vocabulary; ``field`` is its dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


_OPERATORS_BY_KIND: dict[ValueKind, frozenset[str]] = {
    ValueKind.CODE: frozenset({"equals", "in", "not_in"}),
    ValueKind.NUMBER: frozenset({"equals", "min", "max"}),
    ValueKind.BOOL: frozenset({"equals"}),
    ValueKind.SET: frozenset({"includes", "excludes"}),
}
_MISSING_OPERATORS = frozenset({"missing", "or_missing"})
_WORD = re.compile(r"^[a-z0-9][a-z0-9 \-]*$")
_PLAIN = frozenset({str, int, float, bool})  # already plain: the most common fact values


def plain(value: Any) -> Any:
    """Fact values as plain strings and sets: enum members hash by name, not by value."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, Enum):
        return value._value_
    if isinstance(value, (set, frozenset, tuple, list)):
        return frozenset(plain(v) for v in value)
    return value


class Predicate(Protocol):
    def holds(self, facts: Mapping[str, Fact[Any]]) -> bool: ...

    def keys(self) -> frozenset[str]: ...

    def used(self, facts: Mapping[str, Fact[Any]]) -> frozenset[str]: ...

    def rests_on_judgement(self) -> bool: ...


_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "equals": lambda value, arg: value == arg,
    "in": lambda value, arg: value in arg,
    "not_in": lambda value, arg: value not in arg,
    "min": lambda value, arg: value >= arg,
    "max": lambda value, arg: value <= arg,
    "includes": lambda value, arg: bool(value & arg),
    "excludes": lambda value, arg: not value & arg,
    "unknown": lambda value, arg: False,
}


@dataclass(frozen=True)
class FactTest:
    """Every operator holds on the fact's value; ``if_missing`` is the answer for an unknown fact."""

    key: str
    operators: tuple[tuple[str, Any], ...]
    if_missing: bool = False
    # The operators' tests, looked up once when the condition is compiled, not at every match.
    _checks: tuple[tuple[Callable[[Any, Any], bool], Any], ...] = field(init=False, repr=False, compare=False)
    _keys: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_checks", tuple((_TESTS[name], arg) for name, arg in self.operators))
        object.__setattr__(self, "_keys", frozenset({self.key}))

    def rests_on_judgement(self) -> bool:
        """The test needs a judgement fact (one a card quotes with its evidence) to be known."""
        spec = FACTS.get(self.key)
        return spec is not None and spec.quote and not self.if_missing

    def holds(self, facts: Mapping[str, Fact[Any]]) -> bool:
        fact = facts.get(self.key)
        value = None if fact is None else fact.value
        if value is None:
            return self.if_missing
        if type(value) not in _PLAIN:
            value = plain(value)
        for test, arg in self._checks:
            if not test(value, arg):
                return False
        return True

    def keys(self) -> frozenset[str]:
        return self._keys

    def used(self, facts: Mapping[str, Fact[Any]]) -> frozenset[str]:
        return self._keys

    def argument(self, operator: str) -> Any:
        return next((arg for name, arg in self.operators if name == operator), None)


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Predicate, ...]
    # Worked out once when the block is compiled: the facts it names, and whether it has an
    # ``any_of`` (only then do the facts it rests on depend on the patient).
    _keys: frozenset[str] = field(init=False, repr=False, compare=False)
    _branches: bool = field(init=False, repr=False, compare=False)
    _judgement: bool = field(init=False, repr=False, compare=False)
    _tests: Mapping[str, FactTest] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_keys", frozenset().union(*(part.keys() for part in self.parts)))
        object.__setattr__(self, "_branches", any(_branches(part) for part in self.parts))
        object.__setattr__(self, "_judgement", any(part.rests_on_judgement() for part in self.parts))
        tests: dict[str, FactTest] = {}
        for part in self.parts:
            if isinstance(part, FactTest):
                tests.setdefault(part.key, part)
        object.__setattr__(self, "_tests", tests)

    def holds(self, facts: Mapping[str, Fact[Any]]) -> bool:
        for part in self.parts:
            if not part.holds(facts):
                return False
        return True

    def keys(self) -> frozenset[str]:
        return self._keys

    def used(self, facts: Mapping[str, Fact[Any]]) -> frozenset[str]:
        """The facts a holding block rests on: of an ``any_of``, only the branches that hold."""
        if not self._branches:
            return self._keys
        return frozenset().union(*(part.used(facts) for part in self.parts))

    def test_on(self, key: str) -> FactTest | None:
        """The top-level test on ``key`` (one that must hold for the whole block to hold)."""
        return self._tests.get(key)

    def rests_on_judgement(self) -> bool:
        """A test among its parts needs a judgement fact to be known."""
        return self._judgement


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Predicate, ...]
    _keys: frozenset[str] = field(init=False, repr=False, compare=False)
    _judgement: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_keys", frozenset().union(*(part.keys() for part in self.parts)))
        object.__setattr__(self, "_judgement", all(part.rests_on_judgement() for part in self.parts))

    def rests_on_judgement(self) -> bool:
        """Every alternative needs a judgement fact to be known (a margin, coded or from a note: S12)."""
        return self._judgement

    def holds(self, facts: Mapping[str, Fact[Any]]) -> bool:
        for part in self.parts:
            if part.holds(facts):
                return True
        return False

    def keys(self) -> frozenset[str]:
        return self._keys

    def used(self, facts: Mapping[str, Fact[Any]]) -> frozenset[str]:
        """The facts of the first alternative that holds: one reason is enough under "Based on"."""
        return next((part.used(facts) for part in self.parts if part.holds(facts)), frozenset())


def _branches(p: Predicate) -> bool:
    """Whether the facts ``p`` rests on depend on which alternatives hold (it has an ``any_of``)."""
    return isinstance(p, AnyOf) or (isinstance(p, AllOf) and p._branches)


def compile_when(when: Any, field: str = "when") -> AllOf:
    """Compile a `when:` block into a predicate, or raise ``ConditionError`` naming the entry."""
    if not isinstance(when, Mapping) or not when:
        raise ConditionError(field, "must be a non-empty mapping of fact keys to conditions")
    parts: list[Predicate] = []
    for key, spec in when.items():
        where = f"{field}.{key}"
        if key == "any_of":
            if not isinstance(spec, list) or len(spec) < 2:
                raise ConditionError(where, "must be a list of at least two when-blocks")
            parts.append(AnyOf(tuple(compile_when(b, f"{where}[{i}]") for i, b in enumerate(spec))))
        elif key == "all_of":
            if not isinstance(spec, list) or len(spec) < 2:
                raise ConditionError(where, "must be a list of at least two when-blocks")
            parts.extend(compile_when(b, f"{where}[{i}]") for i, b in enumerate(spec))
        elif key in FACT_KEYS:
            parts.append(compile_test(key, spec, where))
        else:
            raise ConditionError(
                where, f"unknown condition key {key!r}; allowed: {', '.join(FACT_KEYS)}, any_of, all_of"
            )
    return AllOf(tuple(parts))


def compile_test(key: str, spec: Any, field: str) -> FactTest:
    fact_type = FACTS[key]
    if not isinstance(spec, Mapping):
        spec = {"equals": spec}
    if not spec:
        raise ConditionError(field, "needs at least one operator")
    allowed = _OPERATORS_BY_KIND[fact_type.kind] | _MISSING_OPERATORS
    for name in spec:
        if name not in allowed:
            raise ConditionError(
                field, f"unknown operator {name!r} for a {fact_type.kind} fact; allowed: {', '.join(sorted(allowed))}"
            )
    if "missing" in spec:
        return _missing_test(key, spec, field)
    or_missing = "or_missing" in spec
    if or_missing and spec["or_missing"] is not True:
        raise ConditionError(f"{field}.or_missing", "may only be true")
    operators = tuple(
        (name, _argument(fact_type, name, arg, f"{field}.{name}")) for name, arg in spec.items() if name != "or_missing"
    )
    if not operators:
        raise ConditionError(field, "or_missing needs another operator beside it")
    return FactTest(key, operators, if_missing=or_missing)


def _missing_test(key: str, spec: Mapping[str, Any], field: str) -> FactTest:
    if len(spec) != 1 or not isinstance(spec["missing"], bool):
        raise ConditionError(f"{field}.missing", "must be true or false and stand alone")
    if spec["missing"]:
        return FactTest(key, (("unknown", None),), if_missing=True)
    return FactTest(key, (), if_missing=False)


def _argument(fact_type: FactSpec, operator: str, arg: Any, field: str) -> Any:
    if operator in {"in", "not_in", "includes", "excludes"}:
        if not isinstance(arg, list) or not arg:
            raise ConditionError(field, "must be a non-empty list")
        return frozenset(_value(fact_type, item, field) for item in arg)
    return _value(fact_type, arg, field)


def _value(fact_type: FactSpec, value: Any, field: str) -> Any:
    if fact_type.kind is ValueKind.BOOL:
        if not isinstance(value, bool):
            raise ConditionError(field, f"must be true or false, not {value!r}")
        return value
    if fact_type.kind is ValueKind.NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConditionError(field, f"must be a number, not {value!r}")
        if (fact_type.low is not None and value < fact_type.low) or (
            fact_type.high is not None and value > fact_type.high
        ):
            raise ConditionError(field, f"{value!r} is outside {fact_type.low}..{fact_type.high}")
        return value
    if not isinstance(value, str):
        raise ConditionError(field, f"must be a code written as text, not {value!r}")
    if fact_type.codes is not None and value not in fact_type.codes:
        raise ConditionError(field, f"unknown value {value!r}; allowed: {', '.join(sorted(fact_type.codes))}")
    if fact_type.codes is None and not _WORD.match(value):
        raise ConditionError(field, f"{value!r} must be lower-case words")
    return value
