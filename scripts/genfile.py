"""The write-or `--check` entry point shared by the generators (gen-crd.py, gen-crd-docs.py,
gen-kube-schemas.py): write a generated file, or with `--check` fail when the committed one is
stale, naming the script that regenerates it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(out: Path, render: Callable[[], str], doc: str | None, argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help=f"fail when {out.relative_to(REPO)} is stale")
    args = parser.parse_args(argv)
    text = render()
    script = Path(sys.argv[0]).name
    if args.check:
        if not out.exists() or out.read_text() != text:
            print(f"{out.relative_to(REPO)} is stale: run scripts/{script}", file=sys.stderr)
            return 1
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out.relative_to(REPO)}")
    return 0
