"""Spec problems printed for people: every bad field on its own line, exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Final

from esenas.spec import FieldError

EXIT_BAD_SPEC: Final = 2


def report_bad_spec(source: str, errors: Sequence[FieldError]) -> int:
    print(f"error: {source} is not a valid ESENASJob:", file=sys.stderr)
    for e in errors:
        print(f"  {e}", file=sys.stderr)
    return EXIT_BAD_SPEC
