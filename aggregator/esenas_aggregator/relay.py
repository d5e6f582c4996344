"""A relay between many workers and the aggregator (docs/relay-tier.md).

Downstream a relay is an aggregator: the same token, ``Exchange`` and ``GetParams``, served by
this package's own :class:`Runtime` and :class:`AggregatorService`, so fair shares, straggler
backups, result bounds and every refusal count work as they do at the aggregator.

Upstream it is one large worker. One ``Exchange`` leases up to ``lease_items`` items, which
become a local *round*: they are renumbered ``0..n-1`` for the local queue and keep their
seed, kind and topology. Once every item of the round is in, the next ``Exchange`` pushes all
their results under the round's lease, with the workers' observation statistics summed, and
leases the next round. The aggregator so handles a few calls per relay per iteration instead of
one per worker.

Workers see the relay's own session and a local parameter version that bumps whenever the
aggregator's (session, version) changes, so a restarted aggregator's parameters always reach them.

Under the straggler policy (``es.minPairsFraction`` F < 1) a round closes as an iteration does at
the aggregator: once F of its pairs and every exact eval are in and every item was handed out. The
relay hands in what is in at once, keeping the lease open (``keep_lease``), leases the next round
for its idle workers, and hands the stragglers in under the old lease as they finish (a
:class:`CarriedRound`, :mod:`esenas_aggregator.relay_rounds`). At most one round is carried:
closing the next early first hands in what the carried one has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Final

import grpc
import numpy as np
from esenas.sampling import BlockSampler
from esenas.topology import Topology, decode_topologies
from esenas_api import wire
from esenas_api.v1 import aggregator_pb2 as pb
from esenas_api.v1 import aggregator_pb2_grpc as pb_grpc

from esenas_aggregator.relay_rounds import (
    RETRYABLE,
    CarriedRound,
    CarryingRelay,
    Round,
    local_items,
    upstream_results,
)
from esenas_aggregator.runtime import Runtime

__all__ = ["CarriedRound", "Relay", "RelayRefused", "Round", "TopologyTable", "local_items", "upstream_results"]

log = logging.getLogger(__name__)

#: The long poll of the relay's upstream Exchange, as a worker's (esenas_worker.worker.WAIT_MS).
WAIT_MS: Final = 20_000
IDLE_POLL_S: Final = 0.1  # how often a relay with no worker yet looks again
BACKOFF_S: Final = (0.2, 5.0)  # first and largest delay between retries of an unreachable aggregator


class RelayRefused(RuntimeError):
    """The aggregator refused the relay for good (a wrong token, say): the relay exits."""


def round_topologies(reply: pb.ExchangeReply, sampler: BlockSampler | None) -> Mapping[int, Topology]:
    """A lease's topologies by upstream table index: those sent as decisions, and those named by
    sample position, drawn from the version's ``sampler`` (see esenas_aggregator.topologies)."""
    index = np.frombuffer(reply.topology_index, dtype="<u4")
    topos = decode_topologies(reply.topologies) if reply.topologies else []
    if reply.topology_samples:
        if sampler is None or len(reply.topology_samples) % 8:
            raise wire.WireError(f"topology samples: {len(reply.topology_samples)} bytes, sampler {sampler is not None}")
        pairs = np.frombuffer(reply.topology_samples, dtype="<u4").reshape(-1, 2)
        index, topos = np.concatenate([index, pairs[:, 0]]), topos + sampler.at(pairs[:, 1])
    return TopologyTable(index, topos) if len(index) else {}


class TopologyTable(Mapping[int, Topology]):
    """The topologies of the current round by their upstream table index (Runtime looks them up)."""

    def __init__(self, index: np.ndarray, topologies: list[Topology]) -> None:
        if len(index) != len(topologies):
            raise wire.WireError(f"topologies: {len(topologies)} for {len(index)} indices")
        self._by_index: dict[int, Topology] = dict(zip(index.tolist(), topologies, strict=True))

    def __getitem__(self, key: int) -> Topology:
        return self._by_index[key]

    def __iter__(self) -> Iterator[int]:
        return iter(self._by_index)

    def __len__(self) -> int:
        return len(self._by_index)


class Relay(CarryingRelay):
    """The upstream half of a relay: leases rounds for ``runtime`` and hands their results in."""

    def __init__(
        self,
        runtime: Runtime,
        channel: grpc.aio.Channel,
        token: str,
        relay_id: str,
        lease_items: int,
        round_timeout: float,
        min_pairs_fraction: float = 1.0,
    ) -> None:
        self.runtime = runtime
        self.min_pairs_fraction = min_pairs_fraction
        self.stub = pb_grpc.AggregatorStub(channel)
        self._metadata = wire.bearer(token)
        self.relay_id = relay_id
        self._carried: CarriedRound | None = None
        self.lease_items = max(1, lease_items)
        #: A round not finished by then is dropped: the aggregator re-issued its lease already.
        self.round_timeout = round_timeout
        self._upstream: tuple[int, int] | None = None  # (session, version) of the params held
        self._local_version = 0
        self._params = pb.Params()
        self._sampler: BlockSampler | None = None  # the held version's, when its controller samples
        self._round_no = 0
        self.rounds = self.items = self.dropped_rounds = self.sampled = self.carried_rounds = 0

    async def run(self) -> None:
        """Lease, roll out and hand in rounds until the aggregator says the job is done."""
        pending: pb.ExchangeRequest | None = None
        pending_items = 0  # the round in ``pending``: counted once the aggregator has taken it
        delay = BACKOFF_S[0]
        while not self.runtime.stopping:
            if pending is None:  # a lease only once some worker is there to roll it out
                while not self.runtime.roster.any_seen:
                    await asyncio.sleep(IDLE_POLL_S)
            request = pending or self._request()
            try:
                reply: pb.ExchangeReply = await self.stub.Exchange(
                    request, metadata=self._metadata, timeout=WAIT_MS / 1000 + 30
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRYABLE:
                    raise RelayRefused(f"the aggregator refused the relay: {exc.code().name} {exc.details()}") from exc
                log.warning("relay %s: aggregator unreachable (%s); retrying in %.1f s", self.relay_id, exc.code().name, delay)
                await asyncio.sleep(delay)
                delay = min(BACKOFF_S[1], delay * 2)
                continue
            delay = BACKOFF_S[0]
            if pending is not None:  # handed in: the aggregator has counted these results
                self.rounds += 1
                self.items += pending_items
            pending, pending_items = None, 0
            if reply.done:
                log.info("relay %s: the job is done after %d rounds (%d items)", self.relay_id, self.rounds, self.items)
                if self._carried is not None and self._carried.task is not None:
                    self._carried.task.cancel()
                self.runtime.finish()
                return
            if not reply.items:
                continue  # the long poll ran out, or come back later: ask again at once
            if not await self._hold_params(reply):
                continue
            rnd = self._start_round(reply)
            if await self._finished(rnd) or self.runtime.forward_failures:
                failed, failure = self._failures(rnd)
                results, obs = upstream_results(rnd, self.runtime.queue)
                pending = self._request(
                    session=rnd.session, iteration=rnd.iteration, lease=rnd.lease, results=results, obs_stats=obs,
                    failed_items=failed, failure=failure,
                )
                pending_items = len(results) // wire.RESULT_DTYPE.itemsize
            elif not self.runtime.stopping and self.runtime.queue.closable(time.monotonic()):
                await self._carry(rnd)
            else:
                self.dropped_rounds += 1
                log.warning("relay %s: round of %d items not finished in %.0f s; dropped (the aggregator re-issues them)",
                            self.relay_id, len(rnd.index), self.round_timeout)

    def status(self) -> dict[str, object]:
        """The relay's ``/status``: its id, rounds handed in, items relayed, rounds dropped, topologies
        it drew from samplers, workers."""
        return {
            "relay": self.relay_id, "leaseItems": self.lease_items, "rounds": self.rounds, "items": self.items,
            "droppedRounds": self.dropped_rounds, "carriedRounds": self.carried_rounds, "sampledTopologies": self.sampled,
            "workers": self.runtime.connected(), "done": self.runtime.done,
        }

    def _request(self, **fields: object) -> pb.ExchangeRequest:
        session, version = self._upstream or (0, 0)
        fields.setdefault("worker_id", self.relay_id)
        fields.setdefault("max_items", self.lease_items)
        return pb.ExchangeRequest(
            wait_ms=WAIT_MS, samples_topologies=True, held_session=session, held_version=version,
            **fields,  # type: ignore[arg-type]
        )

    async def _hold_params(self, reply: pb.ExchangeReply) -> bool:
        """Take the lease's parameters (inline, or fetched); False when they cannot be had."""
        if reply.params:
            self._set_params(pb.Params.FromString(reply.params))
        if self._upstream == (reply.session, reply.version):
            return True
        try:
            params = await self.stub.GetParams(
                pb.ParamsRequest(version=reply.version, samples_topologies=True), metadata=self._metadata, timeout=60
            )
        except grpc.aio.AioRpcError as exc:
            log.info("relay %s: parameters v%d unavailable: %s", self.relay_id, reply.version, exc.code().name)
            return False
        self._set_params(params)
        return self._upstream == (reply.session, reply.version)

    def _set_params(self, params: pb.Params) -> None:
        key = (params.session, params.version)
        if key != self._upstream:
            self._upstream = key
            self._local_version += 1
            # the relay draws sampled topologies itself; its workers get their decisions
            self._sampler = BlockSampler.from_bytes(params.topology_sampler) if params.topology_sampler else None
            params.ClearField("topology_sampler")
            self._params = params

    def _start_round(self, reply: pb.ExchangeReply) -> Round:
        items = wire.decode_items(reply.items)
        table = round_topologies(reply, self._sampler)
        self.sampled += len(reply.topology_samples) // 8
        rt = self.runtime
        obs_dim = len(self._params.obs_mean) // 4
        if rt.obs_dim != obs_dim:
            rt.set_obs_dim(obs_dim)
        local = pb.Params()
        local.CopyFrom(self._params)
        local.session, local.version = rt.session, self._local_version
        self._round_no += 1
        rt.forward_failures = {}
        rt.start_iteration(
            self._round_no, self._local_version, local_items(items), local.SerializeToString(), table, self.min_pairs_fraction
        )
        return Round(
            reply.session, reply.iteration, reply.lease, items["index"].copy(), items["topology"].copy()
        )

    def _failures(self, rnd: Round) -> tuple[bytes, str]:
        """Items of the round two of the relay's workers failed on (Runtime.forward_failures), packed
        as upstream indices, and the first failure's line; the round closes with what is in, and the
        aggregator judges them (bounds.ItemWatch)."""
        failures, self.runtime.forward_failures = self.runtime.forward_failures, {}
        if not failures:
            return b"", ""
        self.runtime.close_iteration()
        local = np.fromiter(failures, np.int64, len(failures))
        return rnd.index[local].astype("<u4").tobytes(), next(iter(failures.values()))

    async def _finished(self, rnd: Round) -> bool:
        """Wait until every item of the round is in; False when the round timed out or the
        relay is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.runtime.wait_closable(), timeout=self.round_timeout)
        return self.runtime.queue.complete and not self.runtime.stopping
