"""The job's lifecycle conditions, in the Kubeflow way: Created, Running, Succeeded and Failed
(Complete kept as an alias of Succeeded), and the CamelCase reason of each phase.

Pure functions of their inputs, so the handlers only read the current status and write these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from esenas_operator.reasons import CREATED
from esenas_operator.status import Obj, set_condition


def _status(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> str | None:
    return next((str(c.get("status")) for c in conditions or () if c.get("type") == type_), None)


def lifecycle(conditions: Iterable[Mapping[str, Any]] | None, phase: str, reason: str, message: str,
              generation: int, now: dt.datetime, *, created: str = "") -> list[Obj]:
    """The conditions after the job enters (or stays in) ``phase`` for ``reason``.

    created: the message of Created when the children were just applied (set once).
    """
    out = [dict(c) for c in conditions or ()]

    def put(type_: str, value: bool, why: str, text: str) -> None:
        nonlocal out
        out = set_condition(out, type_, value, why, text, generation, now)

    if created and _status(out, "Created") != "True":
        put("Created", True, CREATED, created)
    if phase == "Running":
        put("Running", True, reason, message)
    elif _status(out, "Running") is not None:
        put("Running", False, reason, message)
    if phase == "Succeeded":
        put("Succeeded", True, reason, message)
        put("Complete", True, reason, message)  # alias, for clients that wait on Complete
    if phase == "Failed":
        put("Failed", True, reason, message)
    elif _status(out, "Failed") == "True":  # an invalid spec was fixed: the job goes on
        put("Failed", False, "SpecValid", "the spec is valid")
    return out
