"""Plausibility bounds on a worker's results, derived from the job.

A worker holding the job's token can still send numbers no rollout produces: a return of
1e308 (finite, so it passed the NaN check, and it ends a job with a ``targetReward``), a
step count of 2**32-1, or observation statistics that make the normaliser's mean infinite.
Each check below is vectorised over a batch and names the ``reason`` it is counted under.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from esenas.envload import episode_limit
from esenas.spec import JobSpec
from esenas_api.wire import KIND_PAIR

#: Largest plausible magnitude of one observation component. Observations are normalised in
#: float32; a mean or a variance past ~1e38 is infinite there. MuJoCo tasks stay within 1e3.
MAX_ABS_OBS: Final = 1e6
#: Relative slack of the Cauchy-Schwarz check sum**2 <= count * sumsq (float rounding).
_CS_SLACK: Final = 1e-9


@dataclass(frozen=True)
class ResultBounds:
    """What one work item's result may hold: a pair is two episodes, an exact evaluation one."""

    #: spec.environment.maxAbsReward (default 1e6): a worker's 1e308 would overflow ES.
    max_abs_reward: float
    max_episode_steps: int
    #: |rewardShift|: a shifted return is r - shift * steps, so its bound widens by this per step.
    reward_shift: float = 0.0
    max_abs_obs: float = MAX_ABS_OBS

    @classmethod
    def of(cls, spec: JobSpec) -> ResultBounds:
        """The bounds a job's spec sets (the aggregator's and its relays' alike)."""
        return cls(spec.environment.max_abs_reward, episode_limit(spec.environment), spec.es.reward_shift)

    def reward_limit(self, steps: npt.NDArray[np.integer]) -> npt.NDArray[np.float64]:
        return self.max_abs_reward + abs(self.reward_shift) * np.asarray(steps, np.float64)

    def check(
        self, records: npt.NDArray[np.void], kinds: npt.NDArray[np.uint8]
    ) -> dict[str, npt.NDArray[np.bool_]]:
        """Records out of bounds, by reason (``steps_bound``, ``reward_bound``). Non-finite
        rewards are left to the queue's ``nonfinite`` check, so each bad record counts once."""
        pair = kinds == KIND_PAIR
        steps = records["steps"].astype(np.int64)
        # At least one step per episode; at most maxEpisodeSteps each.
        episodes = np.where(pair, 2, 1)
        bad_steps = (steps < episodes) | (steps > episodes * self.max_episode_steps)
        limit = self.reward_limit(np.minimum(steps, episodes * self.max_episode_steps))
        rp, rn = records["reward_pos"], records["reward_neg"]
        with np.errstate(invalid="ignore"):
            big = (np.isfinite(rp) & (np.abs(rp) > limit)) | (pair & np.isfinite(rn) & (np.abs(rn) > limit))
        return {"steps_bound": bad_steps, "reward_bound": big & ~bad_steps}

    def obs_problem(
        self,
        obs: tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]],
        batch_steps: int,
    ) -> str | None:
        """Why a batch's observation statistics cannot come from its rollouts, or None.

        A worker counts one observation per env step, so ``count`` equals the batch's steps;
        each mean is within ``max_abs_obs``; and sum**2 <= count * sumsq (Cauchy-Schwarz)."""
        count, total, sumsq = obs
        if count != batch_steps:
            return f"count {count:g} is not the batch's {batch_steps} env steps"
        if count == 0:
            return None
        if np.any(np.abs(total) > count * self.max_abs_obs) or np.any(sumsq > count * self.max_abs_obs**2):
            return f"a mean or mean square is beyond |obs| <= {self.max_abs_obs:g}"
        if np.any(total * total > count * sumsq * (1 + _CS_SLACK) + 1e-12):
            return "sum and sum of squares are inconsistent"
        return None
