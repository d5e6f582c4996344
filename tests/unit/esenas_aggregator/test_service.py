"""The aggregator's gRPC server group: several acceptors on one port, health set on all, port guarded."""

from __future__ import annotations

import asyncio
import socket

import grpc
import pytest
from esenas_aggregator.metrics import Metrics
from esenas_aggregator.runtime import Runtime
from esenas_aggregator.service import AggregatorService, build_server, set_serving
from grpc_health.v1 import health_pb2, health_pb2_grpc


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
