"""An item that workers say went wrong is replayed by the aggregator before the job fails for it.

:class:`~esenas_aggregator.bounds.ItemWatch` confirms a failure once two callers had the same item
go wrong (a rollout is a function of its item, so an honest worker re-running it goes wrong the same
way). But a caller's id is its own word: one client holding the job's token reported an item failed
under one made-up id, leased it again under a second and reported it again, and the job failed with
``EnvironmentFailed`` while its honest workers ran fine. So before failing the job the aggregator
rolls the item out itself (:class:`~esenas_aggregator.confirm.Confirmer`'s process, as it replays a
claimed best). The failure holds when the replay raises, hangs past the item's limit, returns a
non-finite or out-of-bounds return; else the reports were false: the item goes on to other workers,
and further reports of it this iteration are not believed. Counted in
``esenas_failed_items_replayed_total{outcome}``.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
from esenas.envload import one_line
from esenas.results import KIND_PAIR, Plan, Results

from esenas_aggregator.bounds import ResultBounds
from esenas_aggregator.confirm import Confirmer, Rollouts
from esenas_aggregator.runtime import Runtime

log = logging.getLogger(__name__)


def item_rollouts(plan: Plan, item: int) -> Rollouts:
    """Item ``item`` of ``plan``, as the replay process takes it."""
    items = plan.items[item : item + 1].copy()
    topology = plan.topologies[int(items["topology"][0])]
    items["topology"] = 0
    return Rollouts(items, plan.params, plan.obs_mean, plan.obs_std, plan.sigma, topology)


def what_went_wrong(replayed: Results | BaseException, kind: int, bounds: ResultBounds | None) -> str | None:
    """What the aggregator's own replay of one item found wrong, or None when it ran fine."""
    if isinstance(replayed, BaseException):
        return f"{type(replayed).__name__}: {one_line(replayed)}"
    rewards = [float(replayed.reward_pos[0])] + ([float(replayed.reward_neg[0])] if kind == KIND_PAIR else [])
    if not all(np.isfinite(rewards)):
        return f"a non-finite return ({', '.join(f'{r:g}' for r in rewards)})"
    if bounds is not None:
        record = np.zeros(1, dtype=[("steps", "<u4"), ("reward_pos", "<f8"), ("reward_neg", "<f8")])
        record["steps"], record["reward_pos"] = replayed.steps[0], rewards[0]
        record["reward_neg"] = rewards[-1]
        for reason, bad in bounds.check(record, np.array([kind], np.uint8)).items():
            if bad[0]:
                return f"{reason.replace('_', ' ')} ({', '.join(f'{r:.4g}' for r in rewards)} in {int(replayed.steps[0])} steps)"
    return None


async def failure_holds(rt: Runtime, confirm: Confirmer, plan: Plan) -> bool:
    """Whether the job must fail for what :attr:`Runtime.job_failure` says; when the aggregator's
    replay of the item runs fine, the confirmation is dismissed (logged) and training goes on."""
    suspect = rt.watch.suspect
    if suspect is None or suspect[0] != plan.iteration or not 0 <= suspect[1] < plan.items.size:
        return True  # nothing this aggregator can replay: as before, the workers' word
    item = suspect[1]
    kind = int(plan.items["kind"][item])
    found = what_went_wrong(await confirm.rerun(item_rollouts(plan, item)), kind, rt.bounds)
    if found is not None:
        rt.metrics.failed_items_replayed["confirmed"].inc()
        rt.watch.confirmed = f"{rt.job_failure}; the aggregator's own replay of it went wrong too: {found}"
        return True
    rt.metrics.failed_items_replayed["dismissed"].inc()
    log.warning(
        "iteration %d: item %d was reported %s by two workers, but the aggregator's replay of it ran fine: the reports "
        "were false (a bad worker, or one whose machine fails this task); it goes on to other workers",
        plan.iteration, item, "out of bounds" if (rt.job_failure or "").startswith("RewardOutOfBounds") else "failed",
    )
    rt.watch.dismiss()
    rt.iteration_complete.clear()  # set by the confirmation; wait_closable would spin on it
    return False


async def until_closable(rt: Runtime, stop: asyncio.Event, confirm: Confirmer, plan: Plan, timeout: float | None = None) -> bool:
    """Until the iteration may close (:meth:`Runtime.wait_closable`), a stop is asked for, or a
    confirmed failure holds (:func:`failure_holds`); a stop does not wait for a replay. False when
    ``timeout`` seconds (the training time left before ``spec.stopping.deadlineSeconds``) passed first."""
    try:
        await asyncio.wait_for(_until_closable(rt, stop, confirm, plan), timeout)
    except TimeoutError:
        return False
    return True


async def _until_closable(rt: Runtime, stop: asyncio.Event, confirm: Confirmer, plan: Plan) -> None:
    check: asyncio.Future[bool] | None = None
    while True:
        stopped = asyncio.ensure_future(stop.wait())
        complete = asyncio.ensure_future(rt.wait_closable())
        try:
            await asyncio.wait((complete, stopped), return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set() or rt.job_failure is None:
                return
            check = asyncio.ensure_future(failure_holds(rt, confirm, plan))
            await asyncio.wait((check, stopped), return_when=asyncio.FIRST_COMPLETED)
            if not check.done():
                check.cancel()
                return
            if check.result():
                return
        finally:
            complete.cancel()
            stopped.cancel()
            if check is not None:
                check.cancel()
