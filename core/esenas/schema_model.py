"""The typed model's building blocks: field metadata, and the generator that turns the spec's
dataclasses into a structural openAPIV3Schema (the CRD's, and the one the parser checks against).

A field says what it is once, next to its Python type and default (``spec_field``): description,
bounds, enum, pattern, lengths, or a whole schema for Kubernetes-typed and free-form fields.
:func:`object_schema` walks a dataclass and writes, per field, what controller-gen would:

* the type from the annotation (``bool`` boolean, ``int`` integer, ``float`` number, ``str``
  string, ``tuple[...]`` array, a dataclass object; ``X | None`` is optional);
* the default, unless it only applies to some configurations (``when``): then the description
  says it, and the parser applies it in Python, so ``kubectl describe`` shows only what applies;
* ``required`` for a field without a default.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Final, Union

Schema = dict[str, Any]

_KEY: Final = "esenas"


@dataclasses.dataclass(frozen=True)
class FieldError:
    """One bad field: its dotted path and why it is bad."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class SpecError(ValueError):
    """A job spec that cannot run. Carries every bad field, each with its own message."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclasses.dataclass(frozen=True)
class Meta:
    """What the schema says about one field, beyond its Python type and default."""

    description: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    enum: tuple[str, ...] = ()
    pattern: str | None = None
    max_length: int | None = None
    max_items: int | None = None
    max_properties: int | None = None
    #: The schema of each item of an array field.
    items: Schema | None = None
    #: The field's whole schema (Kubernetes-typed and free-form fields); the description is ours.
    schema: Schema | None = None
    #: The default applies only in some configurations, e.g. "when controller.type is evolution".
    when: str | None = None


def spec_field(description: str, default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, **meta: Any) -> Any:
    """A dataclass field that carries its schema metadata (see :class:`Meta`)."""
    md = {_KEY: Meta(description, **meta)}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=md)
    return dataclasses.field(default=default, metadata=md)


def camel(name: str) -> str:
    """snake_case attribute to camelCase YAML key."""
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _unwrap_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _scalar(hint: Any) -> Schema:
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is str:
        return {"type": "string"}
    raise TypeError(f"no schema type for {hint!r}: give the field a schema")


def _field_schema(f: dataclasses.Field[Any], hint: Any) -> Schema:
    meta: Meta | None = f.metadata.get(_KEY)
    hint = _unwrap_optional(hint)
    default = _default(f)
    if dataclasses.is_dataclass(hint):
        s = object_schema(hint)  # type: ignore[arg-type]
        if meta is not None:
            s["description"] = meta.description
        if default is not dataclasses.MISSING:
            s["default"] = {}  # so the API server fills in the group's own defaults
        return s
    assert meta is not None, f"{f.name}: a scalar field needs spec_field() metadata"
    if meta.schema is not None:
        s = {"description": meta.description, **{k: v for k, v in meta.schema.items() if k != "description"}}
    elif typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        s = {"type": "array", "description": meta.description, "items": meta.items or _scalar(item)}
    else:
        s = {**_scalar(hint), "description": meta.description}
    for key, value in (
        ("minimum", meta.minimum), ("maximum", meta.maximum), ("pattern", meta.pattern), ("maxLength", meta.max_length),
        ("maxItems", meta.max_items), ("maxProperties", meta.max_properties),
    ):
        if value is not None:
            s[key] = value
    if meta.exclusive_minimum:
        s["exclusiveMinimum"] = True
    if meta.enum:
        s["enum"] = list(meta.enum)
    if s.get("type") == "integer" and meta.maximum is not None and meta.maximum > 2**53:
        s["format"] = "int64"
    if default is not dataclasses.MISSING and default is not None and not isinstance(default, Mapping | tuple):
        if meta.when is None:
            s["default"] = default
        else:
            s["description"] = f"{s['description']} Defaults to {json.dumps(default)} {meta.when}."
    return s


def object_schema(cls: type[Any]) -> Schema:
    """The structural openAPIV3Schema of a spec dataclass (``cls.DOC`` is its description)."""
    hints = typing.get_type_hints(cls)
    props: Schema = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        props[camel(f.name)] = _field_schema(f, hints[f.name])
        if _default(f) is dataclasses.MISSING:
            required.append(camel(f.name))
    s: Schema = {"type": "object", "description": getattr(cls, "DOC", cls.__doc__ or ""), "properties": props}
    if required:
        s["required"] = required
    return s
