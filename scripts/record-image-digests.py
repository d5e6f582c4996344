#!/usr/bin/env python3
"""Records the digests of the images `make images` built next to the chart's appVersion.

Writes the `artifacthub.io/images` annotation of helm/esenas/Chart.yaml (Artifact Hub's field
for a chart's images, `name` + `image: REF@DIGEST`) from build/images/images.json, plus
`esenas.dev/images-built-from` (the git commit, `+dirty` when the tree had changes). A release
runs it after building and before pushing (docs/images.md); `--check` fails when the annotation
does not match the built images.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "helm" / "esenas" / "Chart.yaml"
IMAGES = REPO / "build" / "images" / "images.json"
START = "  artifacthub.io/images: |\n"


def block(images: dict[str, dict[str, str]], built_from: str) -> str:
    lines = [START]
    for name in ("operator", "aggregator", "worker"):
        lines += [f"    - name: {name}\n", f"      image: {images[name]['ref']}@{images[name]['digest']}\n"]
    lines.append(f"  esenas.dev/images-built-from: {built_from!r}\n".replace("'", '"'))
    return "".join(lines)


def main() -> int:
    images = json.loads(IMAGES.read_text())
    rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.strip()
    text = CHART.read_text()
    # The existing block: the annotation's indented lines and the built-from line after it.
    old = re.search(r"  artifacthub\.io/images: \|\n(?:    .*\n)*  esenas\.dev/images-built-from: .*\n", text)
    if "--check" in sys.argv:
        want = block(images, "")
        have = re.sub(r"  esenas\.dev/images-built-from: .*\n", "", old.group(0)) if old else ""
        if have != re.sub(r"  esenas\.dev/images-built-from: .*\n", "", want):
            print("Chart.yaml's artifacthub.io/images does not match build/images/images.json", file=sys.stderr)
            return 1
        return 0
    new = block(images, rev + ("+dirty" if dirty else ""))
    text = text.replace(old.group(0), new) if old else text.replace("annotations:\n", "annotations:\n" + new, 1)
    CHART.write_text(text)
    print(new, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
