"""A relay's rounds: an upstream lease renumbered for the local queue, its results packed back in
upstream terms, and rounds carried under the straggler policy (see :mod:`esenas_aggregator.relay`).

A round closed early (``es.minPairsFraction`` < 1) hands in what is in at once with ``keep_lease``,
so the aggregator counts it towards its own close and the relay may lease the next round, and its
stragglers under the same lease as they finish. A mixin of the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Final

import grpc
import numpy as np
from esenas_api import wire
from esenas_api.v1 import aggregator_pb2 as pb

from esenas_aggregator.carry import LateBook
from esenas_aggregator.queue import WorkQueue
from esenas_aggregator.runtime import Runtime

log = logging.getLogger(__name__)

CARRY_POLL_S: Final = 0.02  # how often a carried round looks for its stragglers' results
#: Status codes after which the relay retries the aggregator (anything else is fatal).
RETRYABLE: Final = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED,
     grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.ABORTED}
)
RETRY_S: Final = (0.2, 0.8)  # delays between the tries of one push


@dataclass(frozen=True)
class Round:
    """One upstream lease being rolled out by the relay's workers."""

    session: int
    iteration: int
    lease: int
    #: Upstream index and topology index of each local item (local index = position).
    index: np.ndarray
    topology: np.ndarray


def local_items(items: np.ndarray) -> np.ndarray:
    """The upstream lease's items renumbered 0..n-1 for the local queue, all else kept."""
    local = np.array(items, dtype=wire.WORK_DTYPE, copy=True)
    local["index"] = np.arange(len(local), dtype=np.uint32)
    return local


@dataclass
class CarriedRound:
    """A round closed under the straggler policy whose stragglers are still out: its upstream lease
    takes their results until they are all in, the round times out, or ``flush`` (the next round
    closes early too)."""

    rnd: Round
    late: LateBook  # the round's queue and leases, kept by the runtime
    due: float  # time.monotonic() past which the lease is closed with what came
    flush: bool = False
    task: asyncio.Future[None] | None = None


def upstream_results(rnd: Round, queue: WorkQueue, since: LateBook | None = None) -> tuple[bytes, bytes]:
    """The finished round's results, packed for the aggregator: upstream indices, the items'
    own topology indices, and the observation statistics summed over the round (b"" when none);
    ``since``: only what came in after the round closed (a :class:`CarriedRound`'s stragglers)."""
    res = queue.results()
    local = np.asarray(res.index, np.int64)
    count, total, sumsq = res.obs_count, res.obs_sum, res.obs_sumsq
    keep = np.ones(len(local), bool)
    if since is not None:
        keep = ~since.done_at_close[local]
        c0, t0, s0 = since.obs_at_close
        count, total, sumsq = count - c0, total - t0, sumsq - s0
    packed = wire.encode_results(
        rnd.index[local[keep]], res.reward_pos[keep], res.reward_neg[keep], res.steps[keep], rnd.topology[local[keep]]
    )
    obs = wire.encode_obs_stats(count, total, sumsq) if count > 0 else b""
    return packed, obs


class CarryingRelay:
    """The relay's carried rounds (mixed into :class:`esenas_aggregator.relay.Relay`)."""

    runtime: Runtime
    relay_id: str
    round_timeout: float
    stub: Any
    _metadata: Any
    _carried: CarriedRound | None
    carried_rounds: int
    rounds: int
    items: int

    def _request(self, **fields: object) -> pb.ExchangeRequest:
        raise NotImplementedError

    async def _carry(self, rnd: Round) -> None:
        """Close ``rnd`` with stragglers still out (the straggler policy allows it): hand in what is in,
        keeping the lease open, and the rest as it comes."""
        await self._hand_in_carried()
        self.runtime.close_iteration()
        if (late := self.runtime.late) is None:
            return
        results, obs = upstream_results(rnd, late.queue)
        carried = CarriedRound(rnd, late, time.monotonic() + self.round_timeout)
        if await self._hand_in(carried, results, obs, keep=True):
            carried.task = asyncio.ensure_future(self._stragglers(carried))
            self._carried, self.carried_rounds = carried, self.carried_rounds + 1

    async def _hand_in_carried(self) -> None:
        """Close the carried round's lease now, with what came (the aggregator takes the rest back)."""
        carried, self._carried = self._carried, None
        if carried is not None and carried.task is not None:
            carried.flush = True
            with contextlib.suppress(asyncio.CancelledError):
                await carried.task

    async def _stragglers(self, c: CarriedRound) -> None:
        """Wait for the carried round's stragglers, then hand them in, closing its lease."""
        while not (c.late.queue.complete or c.flush or self.runtime.stopping or time.monotonic() > c.due):
            await asyncio.sleep(CARRY_POLL_S)
        if await self._hand_in(c, *upstream_results(c.rnd, c.late.queue, since=c.late), keep=False):
            self.rounds += 1
            self.items += int(c.late.queue.progress()[0].sum())

    async def _hand_in(self, c: CarriedRound, results: bytes, obs: bytes, keep: bool) -> bool:
        """One push for the carried round's lease, retried while the aggregator is unreachable."""
        request = self._request(
            session=c.rnd.session, iteration=c.rnd.iteration, lease=c.rnd.lease,
            results=results, obs_stats=obs, max_items=0, keep_lease=keep,
        )
        for delay in (*RETRY_S, None):
            try:
                await self.stub.Exchange(request, metadata=self._metadata, timeout=30)
                return True
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRYABLE or delay is None:
                    log.warning("relay %s: carried round not handed in: %s", self.relay_id, exc.code().name)
                    return False
                await asyncio.sleep(delay)
        return False
