"""Job files read defensively: bounded size, UTF-8 text, no YAML aliases, errors in one line.

A job is a few kilobytes of plain mappings, so anchors and aliases buy nothing and open the
door to a billion-laughs file: it parses in microseconds into shared references, then the
first ``repr`` (gymnasium's error message, a log line) expands it until memory runs out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml

#: Largest job file read; real ones are a few kilobytes.
MAX_BYTES: Final = 1 << 20


class YamlFileError(ValueError):
    """A job file that cannot be read as plain YAML; the message is one line."""


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (``*name``, and so ``<<: *name`` merges) as it composes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
            raise yaml.composer.ComposerError(None, None, "YAML aliases are not allowed in a job file", mark)
        return super().compose_node(parent, index)


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
