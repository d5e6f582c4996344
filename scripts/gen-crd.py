#!/usr/bin/env python3
"""Write helm/esenas/crds/esenasjobs.yaml from the typed spec model (core/esenas/spec.py) via
operator/esenas_operator/crd.py. `--check` fails when the committed file is stale.

Run after changing the schema; tests/unit/esenas_operator/test_crd.py fails on drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

import genfile
from esenas_operator.crd import crd_yaml

TARGET = Path(__file__).resolve().parent.parent / "helm" / "esenas" / "crds" / "esenasjobs.yaml"

if __name__ == "__main__":
    sys.exit(genfile.main(TARGET, crd_yaml, __doc__))
