"""The CamelCase reasons of the job's phases, as status.reason, condition reasons and Events show them."""

from __future__ import annotations

import re
from typing import Final

#: Reasons of the phases the operator sets itself.
CREATED: Final = "Created"
RUNNING: Final = "Running"
SUSPENDED: Final = "Suspended"
INVALID_SPEC: Final = "InvalidSpec"
#: Reconciled=False while the job's token Secret or checkpoint claim is an earlier job's (kube.Stale).
STALE_CHILD: Final = "StaleChild"
CRASH_LOOP: Final = "AggregatorCrashLoop"
#: An aggregator that cannot start (esenas_operator.starting): its image cannot be pulled, its
#: pod cannot be scheduled, or its container or pod cannot be created.
AGGREGATOR_IMAGE_PULL: Final = "AggregatorImagePullFailed"
AGGREGATOR_UNSCHEDULABLE: Final = "AggregatorUnschedulable"
AGGREGATOR_CANNOT_START: Final = "AggregatorCannotStart"
#: How the aggregator words why it stopped (esenas.best.stop_reason), and the reason each gives.
_SUCCESS: Final = (
    ("targetreward", "TargetReached"),
    ("maxiterations", "MaxIterations"),
    ("maxenvsteps", "MaxEnvSteps"),
    ("maxepisodes", "MaxEpisodes"),
    ("deadline", "DeadlineReached"),
)
_CAMEL: Final = re.compile(r"^([A-Z][A-Za-z0-9]+):")


def success_reason(text: str) -> str:
    """TargetReached, MaxIterations, ... from the aggregator's stop reason; Completed otherwise."""
    squashed = re.sub(r"[^a-z]", "", text.lower())
    return next((reason for prefix, reason in _SUCCESS if squashed.startswith(prefix)), "Completed")


def aggregator_failure_reason(text: str) -> str:
    """The aggregator's own CamelCase reason ("NonFiniteUpdate: ..."), else AggregatorFailed.

    An exception's type name (``ValueError: ...``) is a cause, not a reason: it stays in the message.
    """
    match = _CAMEL.match(text)
    if match and not match.group(1).endswith(("Error", "Exception")):
        return match.group(1)
    return "AggregatorFailed"
