"""FHIR R4B validation of the resources the summary reads: ``fhir.resources``' models, faster.

``fhir.resources`` validates every nested element through Python (``__init__``, model validators,
one wrap validator per element), about 100 us for an Observation. For the usual resource, whose
every element is plainly valid, ``check`` instead walks the JSON once against tables read from the
same models' metadata (each element's JSON name, attribute, cardinality and type; the required
elements; the choice groups nnn[x]), validates each primitive with that field's own pydantic
validator (or a quick test that is never looser, for the common string types), and builds the
same model objects without validating them again: several times faster, same objects.

Whatever the walk cannot vouch for goes to ``fhir.resources`` itself, which decides and names the
failing fields: an unknown element, a null, an empty array, a primitive extension (``_status``),
comments, a ``resourceType`` inside an element, a missing required element, two types of one
choice, a primitive the field's validator refuses, a contained resource of another kind than
Resource. So the fast path can only accept what ``fhir.resources`` accepts, giving equal models,
and every rejection and its message come from ``fhir.resources``.
``tests/unit/test_validation_differential.py`` runs both on every fixture, the mCODE examples and a
malformed corpus and fails on any difference in acceptance, model or summary.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any

import orjson
from fhir.resources.R4B.bodystructure import BodyStructure
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationdispense import MedicationDispense
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure
from fhir_core import constraints
from fhir_core.constraints import FHIR_TYPES_MAPS
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from fhir_core.types import Code, DateTime, FhirBase, FhirElementOrResourceBase, Id, Markdown, String, Uri, Xhtml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import TzInfo

Model = FHIRAbstractModel
MODELS: Mapping[str, type[Model]] = {
    "Patient": Patient,
    "Condition": Condition,
    "Observation": Observation,
    "MedicationStatement": MedicationStatement,
    "MedicationRequest": MedicationRequest,
    "MedicationAdministration": MedicationAdministration,
    "MedicationDispense": MedicationDispense,
    "Medication": Medication,
    "Procedure": Procedure,
    "DiagnosticReport": DiagnosticReport,
    "BodyStructure": BodyStructure,
}
# The slots of a pydantic model, set as ``BaseModel.model_construct`` sets them.
_SET_DICT = BaseModel.__dict__["__dict__"].__set__
_SET_FIELDS_SET = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_SET_EXTRA = BaseModel.__dict__["__pydantic_extra__"].__set__
_SET_PRIVATE = BaseModel.__dict__["__pydantic_private__"].__set__
_NEW = object.__new__
_FHIR_BUILT_MODEL_VALIDATORS = {"reject_null_complex_elements", "validate_after_model_construction"}


@dataclass(frozen=True)
class Checked:
    """One resource's outcome: the model, or why it was refused (field names only, never values)."""

    model: Any | None
    problem: str | None = None


class Prechecked(dict[str, Any]):
    """A resource as received, carrying its outcome (``fhir.gather`` checks while fetching)."""

    __slots__ = ("checked",)

    def __init__(self, raw: Mapping[str, Any], checked: Checked) -> None:
        super().__init__(raw)
        self.checked = checked


@contextmanager
def shared_elements() -> Iterator[None]:
    """Within the block, an element met again (the patient reference, a coding of a code the chart
    repeats) is checked once and its model shared, as the same JSON gives the same model. Scoped to
    one chart's summary, so nothing is kept from one hook call to the next."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def check(kind: str, raw: Mapping[str, Any]) -> Checked:
    """Validate one resource of a type in ``MODELS``; never raises on bad data."""
    if isinstance(raw, Prechecked):
        return raw.checked
    model = fast(kind, raw)
    if model is not None:
        return Checked(model)
    try:
        return Checked(reference(kind, raw))
    except ValidationError as error:
        return Checked(None, f"failed FHIR R4B validation ({_error_fields(error)}); ignored")
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError):
        return Checked(None, "could not be read; ignored")


def fast(kind: str, raw: Mapping[str, Any]) -> Model | None:
    """The model if the fast path can vouch for ``raw``; ``None`` when ``fhir.resources`` must decide."""
    try:
        return _build(MODELS[kind], raw, _MEMO.get())
    except (_Unsure, ValueError, TypeError, AttributeError, KeyError, RecursionError):
        return None


def reference(kind: str, raw: Mapping[str, Any]) -> Model:
    """``fhir.resources`` itself, the reference; raises ``ValidationError``."""
    return MODELS[kind].model_validate(dict(raw))


def _error_fields(error: ValidationError) -> str:
    """Where validation failed, without echoing any value (values may be patient data)."""
    try:
        errors = error.errors(include_url=False, include_input=False)
    except UnicodeError:  # pydantic cannot render a message about a lone surrogate
        return "(resource)"
    fields = sorted({".".join(str(part) for part in item["loc"]) or "(resource)" for item in errors})
    return ", ".join(fields[:5]) + (" ..." if len(fields) > 5 else "")


class _Unsure(Exception):
    """The fast path cannot vouch for this input: ``fhir.resources`` decides."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str  # the model's attribute
    many: bool  # 0..* (a JSON array)
    model: type[Model] | None  # a complex element's class; None for a primitive
    any_resource: bool  # ``contained``: the class follows each item's resourceType
    primitive: Callable[[Any], Any] | None  # the field's own pydantic validator
    plain: Callable[[str], object] | None = None  # passes a string that is valid as it is
    plain_items: Callable[[str], object] | None = None  # the same, for each string of a 0..* element
    parse: Callable[[str], object | None] | None = None  # the value the validator gives a string, or None
    choice: str | None = None  # the choice element (nnn[x]) this is one type of


@dataclass(frozen=True, slots=True)
class _Shape:
    """One model class as the fast path reads it, derived from the class's own metadata."""

    fields: Mapping[str, _Field]  # by JSON name
    required: tuple[str, ...]  # attributes of elements with minimum cardinality 1
    required_choices: frozenset[str]  # choice elements that must have a value
    blank: dict[str, None]  # every attribute unset, as a validated model holds it
    resource_type: str | None  # for resources: the ``resourceType`` they accept


def _build(cls: type[Model], data: Any, memo: _Memo | None) -> Model:
    """What ``cls.model_validate(data)`` gives, built directly; ``_Unsure`` when in doubt. Elements
    (not resources) are shared through ``memo`` when given (``shared_elements``)."""
    if type(data) is not dict:
        raise _Unsure
    shape = _SHAPES.get(cls) or _shape(cls)
    if memo is None or shape.resource_type is not None:
        return _walk(cls, shape, data, memo)
    try:
        text = orjson.dumps(data)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, a lone surrogate: not shared
        return _walk(cls, shape, data, memo)
    key = (cls, text)
    model = memo.get(key)
    if model is None:
        model = _walk(cls, shape, data, memo)
        if _shareable(text):
            memo[key] = model
    return model


def _shareable(text: bytes) -> bool:
    """Whether the model of this JSON text may stand for every element written so: not where orjson
    wrote null, as it also writes NaN and the infinities."""
    return b"null" not in text


def _walk(cls: type[Model], shape: _Shape, data: dict[str, Any], memo: _Memo | None) -> Model:
    fields = shape.fields
    values: dict[str, Any] = {}
    chosen: set[str] | None = None
    for key, value in data.items():
        field = fields.get(key)
        if field is None:
            if key == "resourceType" and shape.resource_type is not None and value == shape.resource_type:
                continue
            raise _Unsure  # an unknown element, or a resourceType where none belongs
        if value is None:
            raise _Unsure
        if field.choice is not None:
            if chosen is None:
                chosen = set()
            elif field.choice in chosen:
                raise _Unsure  # two types of one choice element
            chosen.add(field.choice)
        kind = type(value)
        element = field.model
        if element is not None:
            if kind is not list:
                if field.many:
                    raise _Unsure
                values[field.name] = _build(element, value, memo)
            elif not field.many or not value:
                raise _Unsure
            elif field.any_resource:
                values[field.name] = [_contained(item, memo) for item in value]
            else:
                values[field.name] = [_build(element, item, memo) for item in value]
        elif field.plain is not None and kind is str and field.plain(value):
            values[field.name] = value
        elif field.plain_items is not None and kind is list and value and _all_plain(field.plain_items, value):
            values[field.name] = list(value)
        elif field.parse is not None and kind is str and (parsed := field.parse(value)) is not None:
            values[field.name] = parsed
        elif field.primitive is not None:
            if field.many and (kind is not list or not value or None in value):
                raise _Unsure
            values[field.name] = field.primitive(value)
        else:
            raise _Unsure
    if shape.required:
        for name in shape.required:
            if values.get(name) is None:
                raise _Unsure
    if shape.required_choices and (chosen is None or not shape.required_choices <= chosen):
        raise _Unsure
    model = _NEW(cls)
    _SET_DICT(model, shape.blank | values)
    _SET_FIELDS_SET(model, set(values))
    _SET_EXTRA(model, None)
    _SET_PRIVATE(model, None)
    return model


def _all_plain(plain: Callable[[str], object], items: list[Any]) -> bool:
    for item in items:
        if type(item) is not str or not plain(item):
            return False
    return True


def _contained(value: Any, memo: _Memo | None) -> Model:
    """A contained resource, of the class its resourceType names (as ``FhirElementOrResourceBase``)."""
    kind = value.get("resourceType") if type(value) is dict else None
    path = FHIR_TYPES_MAPS.get(f"R4B.{kind}Type") if isinstance(kind, str) else None
    cls = _import(path) if path is not None else None
    if cls is None or not cls.has_resource_base():
        raise _Unsure
    return _build(cls, value, memo)


@cache
def _import(path: str) -> type[Model] | None:
    module, _, name = path.rpartition(".")
    found = getattr(__import__(module, fromlist=[name]), name, None)
    return found if isinstance(found, type) and issubclass(found, FHIRAbstractModel) else None


_SHAPES: dict[type[Model], _Shape] = {}  # filled by ``_shape``, read first by ``_build``
# Models of elements already built in this summary (``shared_elements``), by class and JSON text.
_Memo = dict[tuple[type[Model], bytes], Model]
_MEMO: ContextVar[_Memo | None] = ContextVar("shared_elements", default=None)


@cache
def _shape(cls: type[Model]) -> _Shape:
    """Read once per class: fields by JSON name, required elements, choice groups."""
    decorators = cls.__pydantic_decorators__
    if (
        cls.__new__ is not _NEW
        or cls.__private_attributes__
        or cls.__pydantic_post_init__
        or decorators.field_validators
        or decorators.validators
        or set(decorators.model_validators) != _FHIR_BUILT_MODEL_VALIDATORS
    ):
        raise TypeError(f"{cls.__name__} has validation the fast path does not repeat")  # -> fhir.resources
    blank = cls.model_construct()
    if any(value is not None for value in blank.__dict__.values()):
        raise TypeError(f"{cls.__name__}: a field defaults to something other than None")
    choices: dict[str, list[str]] = blank.get_one_of_many_fields()
    choice_of = {name: prefix for prefix, group in choices.items() for name in group}
    required = {name for name, info in cls.model_fields.items() if info.is_required()}
    required |= {name for name, _ in blank.get_required_fields()}
    shape = _SHAPES[cls] = _Shape(
        fields={
            info.alias or name: replace(_field(info, name), choice=choice_of.get(name))
            for name, info in cls.model_fields.items()
            if name != "fhir_comments"  # a string or a list of them: left to fhir.resources
        },
        required=tuple(sorted(required)),
        required_choices=frozenset(prefix for prefix, group in choices.items() if _choice_required(cls, group[0])),
        blank=dict(blank.__dict__),
        resource_type=cls.get_resource_type() if cls.has_resource_base() else None,
    )
    return shape


def _choice_required(cls: type[Model], name: str) -> bool:
    extra = cls.model_fields[name].json_schema_extra
    return isinstance(extra, dict) and extra.get("one_of_many_required") is True


def _field(info: FieldInfo, name: str) -> _Field:
    element, many = _unwrap(info.annotation)
    if isinstance(element, type) and issubclass(element, FhirBase):
        model: type[Model] = element.get_model_klass()
        return _Field(name, many, model, issubclass(element, FhirElementOrResourceBase), None)
    plain = None if info.metadata else _plain(_unwrap(element)[0] if many else element)
    annotation: Any = info.annotation
    validator = _primitive(annotation, tuple(info.metadata))
    parse = None if info.metadata or many else _parse(element)
    return _Field(name, many, None, False, validator, None if many else plain, plain if many else None, parse)


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` and ``List[X] | None`` -> (X, whether a list)."""
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0], True
    return annotation, False


@cache
def _primitive(annotation: Any, metadata: tuple[Any, ...]) -> Callable[[Any], Any]:
    """The field's own validator: pydantic's, with ``fhir_core``'s primitive types, as in the model."""
    if metadata:
        annotation = typing.Annotated[(annotation, *metadata)]
    validate: Callable[[Any], Any] = TypeAdapter(annotation).validator.validate_python
    return validate


def _plain(element: Any) -> Callable[[str], object] | None:
    """For the string types met most, a test in Python that is never looser than the type's
    pattern (``tests/unit/test_validation_primitives.py`` checks every Unicode character): a
    string it passes is valid as it is; any other goes to the field's validator."""
    annotated = typing.get_origin(element) is typing.Annotated
    for meta in typing.get_args(element)[1:] if annotated else ():
        if isinstance(meta, Uri | Markdown | Xhtml):  # patterns \S* and \s*(\S|\s)* match any string
            return _any_text
        if isinstance(meta, String):  # [ \r\n\t\S]+ (searched): something other than whitespace
            return _has_text
        if isinstance(meta, Code):  # ^[^\s]+(\s[^\s]+)*$
            return _is_code
        if isinstance(meta, Id):  # ^[A-Za-z0-9\-.]+$, up to TYPES_ID_MAX_LENGTH characters
            return _is_id
    return None


def _parse(element: Any) -> Callable[[str], object | None] | None:
    """For a dateTime or instant, a reading in Python of the usual full form that is never looser
    than the type's validator and gives the same value (``tests/unit/test_validation_primitives.py``
    compares them); ``None`` for other types."""
    annotated = typing.get_origin(element) is typing.Annotated
    metadata = typing.get_args(element)[1:] if annotated else ()
    reads_datetime = annotated and typing.get_args(element)[0] is datetime
    return _date_time if reads_datetime and any(isinstance(meta, DateTime) for meta in metadata) else None


def _date_time(value: str) -> datetime | None:
    """``2021-03-01T09:00:00+01:00`` (or ``Z``) as pydantic reads it; ``None`` for any other form,
    an impossible date or time, or an offset beyond FHIR's +/-14:00, left to the validator."""
    if _DATE_TIME.fullmatch(value) is None or (zone := _zone(value[19:])) is None:
        return None
    try:
        day = datetime.fromisoformat(value[:19])
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, day.hour, day.minute, day.second, 0, zone)


@cache
def _zone(offset: str) -> TzInfo | None:
    """``Z`` or ``+hh:mm`` as pydantic's time zone; ``None`` beyond FHIR's +/-14:00."""
    if offset == "Z":
        return TzInfo(0)
    minutes = int(offset[1:3]) * 60 + int(offset[4:6])
    if minutes > 14 * 60:
        return None
    return TzInfo(60 * (minutes if offset[0] == "+" else -minutes))


def _any_text(value: str) -> bool:
    return value.isascii() or _SURROGATE.search(value) is None  # pydantic refuses lone surrogates


def _has_text(value: str) -> bool:
    return value != "" and not value.isspace() and _any_text(value)


def _is_code(value: str) -> bool:
    return _CODE.fullmatch(value) is not None and _any_text(value)


def _is_id(value: str) -> bool:
    return len(value) <= _ID_LENGTH and _ID.fullmatch(value) is not None


_SURROGATE = re.compile("[\ud800-\udfff]")  # JSON may carry them ("\\ud800"); they are not Unicode text
_CODE = re.compile(r"[^\s]+(\s[^\s]+)*")  # Python's \s covers every character Rust's \s does, and more
_ID = re.compile(constraints.TYPES_ID_PATTERN or "(?!)")  # no pattern configured: leave ids to pydantic
_ID_LENGTH = constraints.TYPES_ID_MAX_LENGTH or 0
# No leap second (pydantic cannot read one: fhir_core keeps the string) and no fraction of a second.
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](Z|[+-][0-9]{2}:[0-5][0-9])"
)
