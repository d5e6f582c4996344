"""What pushing a batch of results did, and why a record was rejected: plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

#: Reasons a record is rejected; they are the ``reason`` label values of
#: ``esenas_results_rejected_total`` (docs/contracts.md).
REJECT_REASONS: Final = (
    "token",
    "nonfinite",
    "unknown_iteration",
    "duplicate",
    "oversize",
    "malformed",
    "not_leased",
    "replay",
    "reward_bound",
    "steps_bound",
    "obs_stats",
)


@dataclass
class IngestOutcome:
    """What one pushed batch did: accepted records, stale ones, and rejections by reason."""

    accepted: int = 0
    stale: int = 0
    #: Late copies of speculatively re-issued items: the first result won, these are dropped.
    redundant: int = 0
    steps: int = 0
    rollouts: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str, n: int) -> None:
        if n:
            self.rejected[reason] = self.rejected.get(reason, 0) + n

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

