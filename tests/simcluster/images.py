"""Image -> ENTRYPOINT, read from the project's own Dockerfiles, for containers without `command`.

A local process has no image, so the runner needs the image's ENTRYPOINT; it takes it from the
Dockerfile that builds that image (the repository's last path segment names the folder), never
from a hand-kept copy that could drift. Executables are looked up on the runner's PATH (the venv).
The image's USER comes from the same Dockerfile, for the kubelet's runAsNonRoot check.
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


def dockerfile_user(text: str) -> str:
    """The USER of a Dockerfile's final stage ("" when it sets none: the image runs as root)."""
    user = ""
    for line in text.splitlines():
        if re.match(r"\s*FROM\s", line, flags=re.IGNORECASE):
            user = ""
        m = re.match(r"\s*USER\s+(\S+)", line, flags=re.IGNORECASE)
        if m:
            user = m.group(1)
    return user


def image_user(image: str) -> str | None:
    """The user a project image runs as (`10001:10001`, `app`, "" for root); None when unknown."""
    path = DOCKERFILES.get(repository(image))
    if path is None or not path.exists():
        return None
    return dockerfile_user(path.read_text())
