#!/usr/bin/env python3
"""Write helm/esenas/crds/esenasjobs.yaml from the typed spec model (core/esenas/spec.py) via
operator/esenas_operator/crd.py. `--check` fails when the committed file is stale.

Run after changing the schema; tests/unit/esenas_operator/test_crd.py fails on drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

from esenas_operator.crd import crd_yaml

TARGET = Path(__file__).resolve().parent.parent / "helm" / "esenas" / "crds" / "esenasjobs.yaml"

if __name__ == "__main__":
    check = "--check" in sys.argv[1:]
    text = crd_yaml()
    if check:
        if not TARGET.exists() or TARGET.read_text() != text:
            sys.exit(f"{TARGET} is out of date: run scripts/gen-crd.py")
        sys.exit(0)
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
