"""The aggregator's gRPC server group (several acceptors on one port, health set on all, port
guarded) and its ExchangeStream handler."""

from __future__ import annotations

import asyncio
import socket
import time

import grpc
import pytest
from esenas_aggregator.metrics import Metrics
from esenas_aggregator.runtime import Runtime
from esenas_aggregator.service import AggregatorService, build_server, set_serving
from esenas_api.v1 import aggregator_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.unit.esenas_aggregator.workitems import work_items


def _service() -> AggregatorService:
    return AggregatorService(Runtime(Metrics("t", "ns"), item_timeout=5.0, obs_dim=0), "token")


async def _statuses(port: int, n: int) -> set[int]:
    """Health of the Aggregator service seen over ``n`` separate TCP connections."""
    opts = [("grpc.use_local_subchannel_pool", 1)]
    chans = [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=opts) for _ in range(n)]
    try:
        replies = await asyncio.gather(
            *(
                health_pb2_grpc.HealthStub(c).Check(health_pb2.HealthCheckRequest(service="esenas.api.v1.Aggregator"))
                for c in chans
            )
        )
        return {r.status for r in replies}
    finally:
        for c in chans:
            await c.close()


def test_every_acceptor_serves_and_reports_health() -> None:
    async def main() -> None:
        group, port, health = build_server(_service(), "127.0.0.1", 0, acceptors=4)
        assert len(group.servers) == 4 and port > 0
        await group.start()
        try:
            await set_serving(health, True)
            # 24 connections over 4 listeners: all on one listener is a 4**-23 chance.
            assert await _statuses(port, 24) == {health_pb2.HealthCheckResponse.SERVING}
            await set_serving(health, False)
            assert await _statuses(port, 24) == {health_pb2.HealthCheckResponse.NOT_SERVING}
        finally:
            await group.stop(0)

    asyncio.run(main())


def test_a_port_in_use_is_refused_even_by_our_reuseport_acceptors() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot bind the gRPC port 127.0.0.1:{taken}"):
            build_server(_service(), "127.0.0.1", taken)


def test_a_second_aggregator_cannot_share_the_port() -> None:
    async def main() -> None:
        group, port, _ = build_server(_service(), "127.0.0.1", 0, acceptors=2)
        await group.start()
        try:
            with pytest.raises(OSError, match="cannot bind"):
                build_server(_service(), "127.0.0.1", port)
        finally:
            await group.stop(0)

    asyncio.run(main())


class _StreamContext:
    """A grpc.aio context for ``exchange_stream``: the token, the given request messages, then
    EOF; ``write`` fails once the worker is gone (after ``deliverable`` replies)."""

    def __init__(self, messages: list[bytes], deliverable: int) -> None:
        self._messages = list(messages)
        self._deliverable = deliverable
        self.written: list[pb.ExchangeReply] = []

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", "Bearer token"),)

    async def read(self) -> object:
        return self._messages.pop(0) if self._messages else grpc.aio.EOF

    def cancelled(self) -> bool:
        return False

    async def write(self, reply: pb.ExchangeReply) -> None:
        if len(self.written) == self._deliverable:
            raise grpc.aio.AioRpcError(grpc.StatusCode.CANCELLED, grpc.aio.Metadata(), grpc.aio.Metadata())
        self.written.append(reply)

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise AssertionError(f"aborted: {code} {details}")


def test_a_stream_answers_each_message_in_order_and_hands_back_a_lease_it_cannot_deliver() -> None:
    async def main() -> None:
        service = _service()
        rt = service.runtime
        rt.start_iteration(0, 0, work_items(4), b"params")
        idle = pb.ExchangeRequest(worker_id="w", max_items=0).SerializeToString()
        ask = pb.ExchangeRequest(worker_id="w", max_items=4, wait_ms=0).SerializeToString()
        ctx = _StreamContext([idle, idle, ask], deliverable=2)
        with pytest.raises(grpc.aio.AioRpcError):
            await service.exchange_stream(None, ctx)
        assert [r.items for r in ctx.written] == [b"", b""]  # one reply per message, in order
        assert rt.queue.fresh_remaining == 0  # the third message's lease took all 4 items...
        assert rt.metrics.released._value.get() == 4  # ...and they were handed back at once
        again = rt.queue.lease(4, time.monotonic())  # the queue re-issues them now, not after the item timeout
        assert sorted(again["index"].tolist()) == [0, 1, 2, 3]

    asyncio.run(main())


def test_a_stream_closed_after_its_messages_ends_quietly() -> None:
    async def main() -> None:
        service = _service()
        service.runtime.start_iteration(0, 0, work_items(4), b"params")
        ask = pb.ExchangeRequest(worker_id="w", max_items=0).SerializeToString()
        ctx = _StreamContext([ask, ask], deliverable=2)
        await service.exchange_stream(None, ctx)  # EOF after two messages: a close, nothing counted
        assert len(ctx.written) == 2
        assert service.runtime.metrics.rejected["oversize"]._value.get() == 0
        assert service.runtime.metrics.rejected["malformed"]._value.get() == 0

    asyncio.run(main())
