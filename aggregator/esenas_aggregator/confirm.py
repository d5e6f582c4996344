"""A new best is rolled out again by the aggregator before it is adopted: no worker's word sets it.

The bounds (:mod:`bounds`) refuse only what no rollout can return. Within them, one worker holding
the job's token could report 999,999 for the exact evals of one topology and make that the best
policy, its ``bestReward`` and, with a ``targetReward``, the end of the job. A rollout is a
function of its item, the plan's weights, normaliser and topology (:class:`esenas.rollout.Evaluator`),
so the aggregator replays a claimed best's items (:class:`esenas.best.Claim`: the four or so exact
evals of its topology, or its one pair) in a process of its own, while the next iteration runs:
``tell`` never waits for it. The best is then adopted at the reported reward when the replay
agrees (``confirmed``), else at the lower of the two (``corrected``, logged), so a lie can only
lower it. A replay that fails (the aggregator cannot build or step the task) adopts the claim as
reported (``unchecked``, logged once). Counted in ``esenas_best_claims_total{outcome}``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from esenas import checkpoint
from esenas.algorithm import ESENAS
from esenas.best import Claim
from esenas.hang import HANG_FACTOR
from esenas.process_pool import ProcessPool, quiet_child
from esenas.results import Results
from esenas.spec import JobSpec
from esenas.topology import Topology

from esenas_aggregator.metrics import Metrics

if TYPE_CHECKING:
    from esenas.rollout import Evaluator

log = logging.getLogger(__name__)

#: The replay process's nice value once started: it runs mostly on what the aggregator's loop and, on
#: a shared machine, the workers leave (at 0 it slowed the first leases of each iteration,
#: bench/results/scale.md), yet still gets ~10% of a core that they keep busy (CFS weight 110 against
#: 1024; at 19, 15: HalfCheetah's 4 exact evals would take ~13 s beside `esenas run`'s workers).
NICE: Final = 10
#: A replay starts this long after its claim (the end of an iteration): the new iteration's first
#: leases go out meanwhile (0.2 s for 1,000 workers on 2 cores, scale.md), undisturbed.
START_DELAY_S: Final = 0.5
#: Replayed and reported rewards agree within this (relative, and absolute near zero): one build of
#: the task on one kind of machine reproduces a rollout bit for bit; other CPUs may round otherwise.
AGREE: Final = 1e-6

_EVALUATOR: Evaluator | None = None


def _init(spec: JobSpec, parent: int) -> None:
    """The replay process: SIGINT and SIGTERM as in a rollout process, ends with the aggregator."""
    global _EVALUATOR
    quiet_child(parent)
    from esenas.envload import tidy_gymnasium_warnings
    from esenas.rollout import Evaluator  # gymnasium: only in the replay process

    tidy_gymnasium_warnings()  # spawned: the aggregator's own hook is not inherited

    _EVALUATOR = Evaluator(spec)
    os.nice(NICE)  # only now: it starts up at full speed, once


@dataclass(frozen=True)
class Rollouts:
    """Items to roll out again under one topology (their ``topology`` entries 0), as the plan sent
    them: a claimed best's, or one that workers say went wrong (:mod:`verify`)."""

    items: np.ndarray
    centre: np.ndarray
    obs_mean: np.ndarray
    obs_std: np.ndarray
    sigma: float
    topology: Topology

    @classmethod
    def of(cls, claim: Claim) -> Rollouts:
        return cls(claim.items, claim.centre, claim.obs_mean, claim.obs_std, claim.sigma, claim.found.topology)


def replay(evaluator: Evaluator, claim: Claim | Rollouts, limit_s: float | None = None) -> Results:
    """The claim's items rolled out again, as a worker rolled them out."""
    r = claim if isinstance(claim, Rollouts) else Rollouts.of(claim)
    evaluator.set_plan(r.centre, r.obs_mean, r.obs_std, r.sigma, [r.topology])
    return evaluator.run(r.items, limit_s)


def _replay(task: tuple[Claim | Rollouts, float]) -> Results:
    assert _EVALUATOR is not None
    return replay(_EVALUATOR, *task)


def agrees(reported: float, replayed: float) -> bool:
    return math.isclose(reported, replayed, rel_tol=AGREE, abs_tol=AGREE)


class Confirmer:
    """Replays claimed bests one after another and adopts them into the algorithm."""

    def __init__(self, spec: JobSpec, metrics: Metrics, item_timeout: float, ended: Callable[[], None] = lambda: None) -> None:
        """``ended`` runs on the event loop whenever a replay ends (the owner calls :meth:`settle`)."""
        self.spec = spec
        self.ended = ended
        self.metrics = metrics
        self.limit_s = HANG_FACTOR * item_timeout
        #: Longest a job that ends waits for the replays still running (one item's limit, and start-up).
        self.drain_s = self.limit_s + 60.0
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="confirm")  # one replay at a time
        self._pool: ProcessPool | None = None
        self._pending: list[tuple[Claim, asyncio.Future[Any]]] = []  # started, in order
        self._waiting: Claim | None = None  # the next to start
        self._warned = self._closed = False
        self.start_delay_s = START_DELAY_S

    def submit(self, claim: Claim | None) -> None:
        """Replay ``claim`` (None: nothing to do): now, or once the replay running has ended. Of the
        claims that wait meanwhile only the highest is kept (the others could only lose to it, unless
        it is a lie: then the best updates at the next claim instead, and is never wrong)."""
        if claim is None:
            return
        if any(not f.done() for _, f in self._pending):
            if self._waiting is None or claim.reward >= self._waiting.reward:
                self._waiting = claim
            return
        self._start(claim, self.start_delay_s)

    def _start(self, claim: Claim, delay_s: float) -> None:
        fut = asyncio.get_running_loop().run_in_executor(self._thread, self._run, claim, delay_s)
        self._pending.append((claim, fut))
        fut.add_done_callback(self._done)

    def _done(self, _: asyncio.Future[Any]) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is not None and not self._closed:
            self._start(waiting, 0.0)  # it has waited already
        self.ended()

    async def rerun(self, rollouts: Rollouts) -> Results | BaseException:
        """``rollouts`` replayed now, after any replay running; what the replay raised, if it did."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, self._run, rollouts)
        except Exception as exc:  # the task's own error, a hang (esenas.hang), a replay process that died
            return exc

    def _run(self, claim: Claim | Rollouts, delay_s: float = 0.0) -> Results:
        time.sleep(delay_s)  # past the barrier's burst of first leases, which the replay would slow
        if self._pool is None:  # spawned, not forked: this process runs gRPC's threads
            self._pool = ProcessPool(1, _replay, _init, (self.spec, os.getpid()), start="spawn")
        try:
            result: Results = self._pool.map([(claim, self.limit_s)])[0]
        except BaseException:
            self._pool.close()  # a process that failed or died is not trusted with the next claim
            self._pool = None
            raise
        return result

    def settle(self, algo: ESENAS) -> bool:
        """Adopt every claim whose replay has ended; True if the best changed."""
        changed = False
        while self._pending and self._pending[0][1].done():
            claim, fut = self._pending.pop(0)
            changed |= self._adopt(algo, claim, fut.exception() or fut.result())
        return changed

    async def wait(self, timeout: float | None = None) -> None:
        """Until every replay still running has ended, or ``timeout``; the claims of those that
        have not are dropped (logged): a best nobody confirmed is not adopted."""
        end = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while running := [f for _, f in self._pending if not f.done()]:
            left = None if end is None else end - asyncio.get_running_loop().time()
            if left is not None and left <= 0:
                break
            await asyncio.wait(running, timeout=left)
        late = [claim for claim, fut in self._pending if not fut.done()] + ([self._waiting] if self._waiting else [])
        if late:
            self._pending, self._waiting = [(c, f) for c, f in self._pending if f.done()], None
            log.warning("%d claimed best(s) dropped: the replay did not end within %.3g s", len(late), timeout or 0)

    def _adopt(self, algo: ESENAS, claim: Claim, replayed: Results | BaseException) -> bool:
        if isinstance(replayed, BaseException):
            self.metrics.best_claims["unchecked"].inc()
            if not self._warned:
                self._warned = True
                log.warning("could not replay a claimed best, so it is adopted as reported (%s: %s)", type(replayed).__name__, replayed)
            return algo.adopt(claim, claim.reward)
        measured = claim.reward_of(replayed)
        if agrees(claim.reward, measured):
            self.metrics.best_claims["confirmed"].inc()
            log.info("iteration %d's best %.6g confirmed by the aggregator's replay", claim.policy.get("iteration", -1), claim.reward)
            return algo.adopt(claim, claim.reward)
        self.metrics.best_claims["corrected"].inc()
        items = claim.items["index"].tolist()
        log.warning(
            "iteration %d's best was reported at %.6g, but replaying its items %s scored %.6g: a worker's results "
            "were wrong (a bad worker, or a task that does not repeat an episode from its seed); the best takes %.6g",
            claim.policy.get("iteration", -1), claim.reward, items, measured, min(claim.reward, measured),
        )
        return algo.adopt(claim, min(claim.reward, measured))

    def close(self) -> None:
        self._closed = True
        for _, fut in self._pending:
            fut.cancel()
        self._thread.shutdown(wait=False, cancel_futures=True)
        if self._pool is not None:
            self._pool.close()


def with_best(snapshot: bytes, algo: ESENAS) -> bytes:
    """An encoded checkpoint state with ``algo``'s best: an adopted best for the snapshot of the
    last completed iteration, which checkpoints and a stopped job write."""
    state = checkpoint.decode(snapshot)
    state["algo"].update(best_reward=float(algo.best_reward), best=algo.best)
    return checkpoint.encode(state)


__all__ = ["AGREE", "Confirmer", "Rollouts", "agrees", "replay", "with_best"]
