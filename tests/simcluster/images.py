"""Image -> ENTRYPOINT, read from the project's own Dockerfiles, for containers without `command`.

A local process has no image, so the runner needs the image's ENTRYPOINT; it takes it from the
Dockerfile that builds that image (the repository's last path segment names the folder), never
from a hand-kept copy that could drift. Executables are looked up on the runner's PATH (the venv).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[2]
#: Last segment of the image repository -> the Dockerfile that builds it.
DOCKERFILES: Final = {
    "aggregator": REPO / "aggregator" / "Dockerfile",
    "worker": REPO / "worker_image" / "Dockerfile",
    "operator": REPO / "operator" / "Dockerfile",
}


def repository(image: str) -> str:
    """`ghcr.io/org/worker:0.1.0@sha256:...` -> `worker`."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def dockerfile_entrypoint(text: str) -> list[str]:
    """The last ENTRYPOINT of a Dockerfile (exec form), or [] when it has none."""
    found: list[str] = []
    for line in text.splitlines():
        m = re.match(r"\s*ENTRYPOINT\s+(.*)$", line, flags=re.IGNORECASE)
        if m:
            value = m.group(1).strip()
            found = [str(a) for a in json.loads(value)] if value.startswith("[") else ["/bin/sh", "-c", value]
    return found


def entrypoint(image: str) -> list[str]:
    """The ENTRYPOINT of a project image; [] for an unknown image (then `command` is required)."""
    path = DOCKERFILES.get(repository(image))
    if path is None or not path.exists():
        return []
    return dockerfile_entrypoint(path.read_text())
