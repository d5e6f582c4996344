"""Job files read defensively: bounded size, UTF-8 text, no YAML aliases, errors in one line.

A job is a few kilobytes of plain mappings, so anchors and aliases buy nothing and open the
door to a billion-laughs file: it parses in microseconds into shared references, then the
first ``repr`` (gymnasium's error message, a log line) expands it until memory runs out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import yaml

#: Largest job file read; real ones are a few kilobytes.
MAX_BYTES: Final = 1 << 20


class YamlFileError(ValueError):
    """A job file that cannot be read as plain YAML; the message is one line."""


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (``*name``, and so ``<<: *name`` merges) as it composes,
    and reads plain scalars as kubectl does: the same job applied with kubectl and run with
    ``esenas run`` must mean the same (tests/unit/esenas/test_safe_yaml.py checks the real kubectl)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
            raise yaml.composer.ComposerError(None, None, "YAML aliases are not allowed in a job file", mark)
        return super().compose_node(parent, index)

    bool_values = {**yaml.SafeLoader.bool_values, "y": True, "n": False}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        tag = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
        if tag == _TIMESTAMP or (tag in (_INT, _FLOAT) and ":" in value):
            return _STR  # go-yaml keeps 2026-12-05 and YAML 1.1's base 60 (12:30, 750) as the strings they are
        return tag


_STR: Final = "tag:yaml.org,2002:str"
_INT: Final = "tag:yaml.org,2002:int"
_FLOAT: Final = "tag:yaml.org,2002:float"
_TIMESTAMP: Final = "tag:yaml.org,2002:timestamp"

#: kubectl (sigs.k8s.io/yaml, go-yaml v2) reads ``1e-3``, ``5e3`` and ``.5`` as numbers, where YAML
#: 1.1 (PyYAML) wants a dot and a signed exponent and reads ``1e-3`` as a string.
_KUBECTL_FLOAT: Final = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_NoAliasLoader.add_implicit_resolver(_FLOAT, _KUBECTL_FLOAT, list("-+.0123456789"))
_NoAliasLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?0o[0-7_]+$"), list("-+0"))  # 0o17 is 15
_NoAliasLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^[yYnN]$"), list("yYnN"))  # y is true


def load_yaml_file(path: str | Path) -> list[Any]:
    """The documents of ``path`` (empty ones dropped), or YamlFileError saying why not."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise YamlFileError(f"cannot read file: {exc.strerror}") from exc
    if len(data) > MAX_BYTES:
        raise YamlFileError(f"larger than {MAX_BYTES // (1 << 20)} MiB; a job file is a few kilobytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlFileError(f"not a YAML text file: byte {exc.start} is not UTF-8") from exc
    try:
        return [d for d in yaml.load_all(text, Loader=_NoAliasLoader) if d is not None]
    except yaml.reader.ReaderError as exc:  # a control character: a binary file that happens to be UTF-8
        raise YamlFileError(f"not a YAML text file: control character U+{exc.character:04X} at character {exc.position}") from exc
    except yaml.MarkedYAMLError as exc:
        raise YamlFileError(f"invalid YAML{_where(exc)}: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise YamlFileError(f"invalid YAML: {' '.join(str(exc).split())}") from exc
    except RecursionError as exc:
        raise YamlFileError("invalid YAML: nested too deeply") from exc


def _where(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    return "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"
