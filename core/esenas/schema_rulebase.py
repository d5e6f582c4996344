"""The shape of the spec's cross-field rules (esenas.schema_rules): a CEL expression for the CRD
and the same check in Python, with one message for both."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

Spec = Mapping[str, Any]
#: A check: None when the rule holds, else the placeholders' values (maybe none) for the message.
Check = Callable[[Spec], dict[str, str] | None]


@dataclasses.dataclass(frozen=True)
class Rule:
    #: Where the CEL rule sits, relative to spec ("" is spec itself).
    scope: str
    #: The field the error names, relative to ``scope`` (the CEL rule's fieldPath).
    field: str
    cel: str
    message: str
    check: Check
    #: Fields the rule reads, relative to spec: a bad one skips the Python check.
    uses: tuple[str, ...]
    symbols: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: A key below ``field`` that the parser's error names, where CEL's fieldPath cannot point
    #: (into free-form environment.kwargs).
    detail: str = ""

    @property
    def path(self) -> str:
        return ".".join(p for p in ("spec", self.scope, self.field, self.detail) if p)


def fails(cond: bool, **values: str) -> dict[str, str] | None:
    return dict(values) if cond else None


def group(s: Spec, name: str) -> Spec:
    """``s[name]`` when it is a mapping (a group the schema already refused is skipped), else {}."""
    value = s.get(name)
    return value if isinstance(value, Mapping) else {}
