"""Plausibility bounds on a worker's results, derived from the job.

A worker holding the job's token can still send numbers no rollout produces: a return of
1e308 (finite, so it passed the NaN check, and it ends a job with a ``targetReward``), a
step count of 2**32-1, or observation statistics that make the normaliser's mean infinite.
Each check below is vectorised over a batch and names the ``reason`` it is counted under.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from esenas.envload import episode_limit
from esenas.spec import JobSpec
from esenas_api import wire
from esenas_api.wire import KIND_PAIR

from esenas_aggregator.outcome import IngestOutcome

log = logging.getLogger(__name__)

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




class ItemWatch:
    """Which callers had each item of the current iteration go wrong, by kind: ``bound`` (a return
    beyond ``spec.environment.maxAbsReward``) or ``failed`` (the worker says the rollout failed in
    the environment: it raised, or returned a non-finite reward).

    A rollout is a function of its item (seed, parameters, topology), so an honest worker re-running
    an item another worker had go wrong goes wrong the same way. Once two callers, or the only caller
    there is twice, had the same item go wrong, it is the task, not a worker: the iteration can never
    fill, and :attr:`confirmed` says why (the aggregator fails the job with it; a relay hands it on
    for the aggregator to judge). One caller never confirms alone while others are connected, so a
    client holding the token cannot end a job from one id: its items are re-issued, as before.
    """

    def __init__(self, bounds: ResultBounds | None = None) -> None:
        self.bounds = bounds
        self._iteration = -1
        self._seen: dict[tuple[str, int], tuple[int, set[str]]] = {}  # (kind, item) -> (times, callers)
        self._by_caller: dict[str, set[int]] = {}  # caller -> the items that went wrong for it
        #: Why the job cannot go on, once confirmed (None until then): "Reason: message".
        self.confirmed: str | None = None
        #: (iteration, item) that :attr:`confirmed` is about, while the aggregator replays it
        #: (:mod:`verify`): made-up worker ids are free, so two callers' word alone is not enough.
        self.suspect: tuple[int, int] | None = None
        self._cleared: set[int] = set()  # items of this iteration whose replay ran fine: reports on them are lies
        self.lies = 0  #: reports of items the aggregator's replay ran fine
        #: What an iteration is called in the log: a relay's are its rounds.
        self.unit = "iteration"

    def note(self, kind: str, iteration: int, index: npt.NDArray[np.int64], caller: str, sole: bool) -> tuple[npt.NDArray[np.bool_], list[int]]:
        """Note that ``index`` went wrong (``kind``) for ``caller`` in ``iteration``; returns which
        are now confirmed, and how many times each went wrong. ``sole``: no other caller is connected."""
        if iteration != self._iteration:
            self._iteration, self._seen, self._by_caller, self._cleared = iteration, {}, {}, set()
            log.warning(
                "%s %d: %d item(s) %s for worker %s; they go to other workers first, and if one has the "
                "same the job fails", self.unit, iteration, len(index), WHAT[kind], printable(caller[:64]),
            )
        confirmed, times = np.zeros(len(index), dtype=bool), []
        self._by_caller.setdefault(caller, set()).update(index.tolist())
        for k, item in enumerate(index.tolist()):
            count, callers = self._seen.get((kind, item), (0, set()))
            if len(callers) < 2:  # two distinct callers are all that is asked for
                callers.add(caller)
            self._seen[kind, item] = (count + 1, callers)
            confirmed[k] = (len(callers) >= 2 or (sole and count >= 1)) and item not in self._cleared
            self.lies += item in self._cleared
            times.append(count + 1)
        return confirmed, times

    def dismiss(self) -> None:
        """The aggregator's replay ran :attr:`suspect` fine: what was confirmed was a lie (or a worker's
        own fault), never again for that item this iteration."""
        if self.suspect is not None and self.suspect[0] == self._iteration:
            self._cleared.add(self.suspect[1])
        self.confirmed = self.suspect = None

    def avoid(self, caller: str, iteration: int) -> npt.NDArray[np.int64] | None:
        """The items of ``iteration`` that went wrong for ``caller``, which its next leases skip so
        that another worker runs them (None: none). Without this, a worker asking again first got
        back the item it just reported (the lowest expired one), each worker its own, and no item
        ever went wrong for two: a job whose environment hangs waited forever."""
        items = self._by_caller.get(caller) if iteration == self._iteration else None
        return np.fromiter(items, np.int64, len(items)) if items else None

    def out_of_bounds(self, iteration: int, index: npt.NDArray[np.int64], records: npt.NDArray[np.void], caller: str, sole: bool) -> npt.NDArray[np.bool_]:
        """:meth:`note` for records refused as ``reward_bound``; the first confirmed one's message names the field."""
        confirmed, times = self.note("bound", iteration, index, caller, sole)
        if confirmed.any() and self.confirmed is None and self.bounds is not None:
            k = int(np.flatnonzero(confirmed)[0])
            self.suspect = (iteration, int(index[k]))
            returns = [float(records[k]["reward_pos"]), float(records[k]["reward_neg"])]
            worst = max((r for r in returns if np.isfinite(r)), key=abs)
            self.confirmed = (
                f"RewardOutOfBounds: spec.environment.maxAbsReward: item {int(index[k])} of iteration {iteration} was out of "
                f"bounds each of the {times[k]} times it ran (last {worst:.4g}), beyond {self.bounds.max_abs_reward:g} "
                "(plus |es.rewardShift| per step): this task's own returns exceed it. Raise "
                "spec.environment.maxAbsReward above the task's largest return, or bound the returns "
                "(policy.clipActions true, where a control cost on raw actions is what grows)"
            )
        return confirmed

    def failed(self, iteration: int, index: npt.NDArray[np.int64], failure: str, caller: str, sole: bool) -> npt.NDArray[np.bool_]:
        """:meth:`note` for items whose rollout failed in the environment (``failure``: the worker's one line)."""
        confirmed, times = self.note("failed", iteration, index, caller, sole)
        if confirmed.any() and self.confirmed is None:
            k = int(np.flatnonzero(confirmed)[0])
            self.suspect = (iteration, int(index[k]))
            self.confirmed = (
                f"EnvironmentFailed: spec.environment.id: the rollout of item {int(index[k])} of iteration {iteration} failed "
                f"each of the {times[k]} times it ran, last: {printable(failure[:MAX_FAILURE]) or 'no reason given'}"
            )
        return confirmed


def printable(text: str) -> str:
    """``text`` on one line of printable characters: a worker's words reach the log, the job's
    status and its Events, where a newline or an ANSI escape would forge or colour lines."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


#: How each kind of :class:`ItemWatch` reads in the log.
WHAT: Final = {"bound": "returned a return beyond spec.environment.maxAbsReward", "failed": "failed in the environment"}
#: Longest failure line kept from a worker (it reaches the job's status and Events).
MAX_FAILURE: Final = 400


def decoded_results(results: bytes, out: IngestOutcome) -> npt.NDArray[np.void] | None:
    """A pushed batch's result records, or None (counted in ``out`` as malformed) when it is not one."""
    try:
        return wire.decode_results(results)
    except wire.WireError:
        out.reject("malformed", max(1, len(results) // wire.RESULT_DTYPE.itemsize))
        return None


def checked_obs(
    bounds: ResultBounds | None, obs_dim: int, obs_stats: bytes, records: npt.NDArray[np.void], out: IngestOutcome
) -> tuple[tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]] | None, bool]:
    """A pushed batch's decoded observation statistics (None: none sent), and whether the batch
    can be trusted at all (False once they are malformed or inconsistent, counted in ``out``)."""
    if not obs_stats:
        return None, True
    try:
        obs = wire.decode_obs_stats(obs_stats, obs_dim)
    except wire.WireError:
        out.reject("malformed", len(records))
        return None, False
    if bounds is not None and bounds.obs_problem(obs, int(records["steps"].sum(dtype=np.int64))) is not None:
        out.reject("obs_stats", len(records))
        return None, False
    return obs, True


def failed_index(blob: bytes, held: npt.NDArray[np.integer], out: IngestOutcome) -> npt.NDArray[np.int64]:
    """The items of a closed lease (``held``) a worker reported failed: packed little-endian uint32
    indices; malformed ones, or ones not of the lease, are counted in ``out`` and left out."""
    if len(blob) % 4:
        out.reject("malformed", 1)
        return np.zeros(0, np.int64)
    index = np.frombuffer(blob, dtype="<u4").astype(np.int64)
    ours = np.isin(index, np.asarray(held, np.int64))
    out.reject("not_leased", int((~ours).sum()))
    return np.unique(index[ours])
