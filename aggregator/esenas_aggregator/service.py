"""Thin gRPC servicer for esenas.api.v1.Aggregator, plus grpc.health.v1, on grpc.aio.

Handlers check the token (constant time, never logged) and the request size, then hand
the packed bytes to :class:`Runtime`. ``GetParams`` answers with the Params message
serialised once per version, so 10,000 workers cost one serialisation, not 10,000.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import grpc
from esenas.api import wire
from esenas.api.v1 import aggregator_pb2 as pb
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from esenas_aggregator.runtime import MAX_BATCH_ITEMS, Runtime

log = logging.getLogger(__name__)

SERVICE_NAME: Final = "esenas.api.v1.Aggregator"
#: Application limit on one worker request: a full batch plus generous observation stats.
MAX_REQUEST_BYTES: Final = MAX_BATCH_ITEMS * wire.RESULT_DTYPE.itemsize + 256 * 1024
#: Transport limits. Requests past MAX_REQUEST_BYTES but under this are read and counted as
#: ``oversize``; anything larger is refused by gRPC itself before it is buffered.
TRANSPORT_MAX_RECEIVE: Final = 8 * 1024 * 1024
TRANSPORT_MAX_SEND: Final = 64 * 1024 * 1024
SERVER_OPTIONS: Final = (
    ("grpc.max_receive_message_length", TRANSPORT_MAX_RECEIVE),
    ("grpc.max_send_message_length", TRANSPORT_MAX_SEND),
    ("grpc.so_reuseport", 0),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.max_connection_idle_ms", 600_000),
)


class AggregatorService:
    """Converts RPCs to Runtime calls; rejects and counts bad tokens and oversized requests."""

    def __init__(self, runtime: Runtime, token: str) -> None:
        self.runtime = runtime
        self._token = token

    async def _admit(self, request_bytes: int, context: grpc.aio.ServicerContext) -> None:
        header = None
        for key, value in context.invocation_metadata() or ():
            if key == wire.AUTH_METADATA_KEY:
                header = value if isinstance(value, str) else value.decode(errors="replace")
        if not wire.token_matches(self._token, header):
            self.runtime.metrics.rejected["token"].inc()
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
        if request_bytes > MAX_REQUEST_BYTES:
            self.runtime.metrics.rejected["oversize"].inc()
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request of {request_bytes} bytes exceeds the limit of {MAX_REQUEST_BYTES} bytes",
            )

    async def exchange(self, request: pb.ExchangeRequest, context: grpc.aio.ServicerContext) -> pb.ExchangeReply:
        await self._admit(request.ByteSize(), context)
        rt = self.runtime
        rt.seen(request.worker_id)
        accepted = rejected = 0
        if request.results:
            out = rt.push(request.session, request.iteration, request.results, request.obs_stats)
            accepted, rejected = out.accepted, out.rejected_total
        lease = await rt.pull(request.max_items, request.wait_ms)
        return pb.ExchangeReply(
            session=rt.session,
            iteration=max(lease.iteration, 0),
            version=max(lease.version, 0),
            items=lease.items,
            done=lease.done,
            retry_after_ms=lease.retry_after_ms,
            accepted=accepted,
            rejected=rejected,
        )

    async def get_params(self, request: pb.ParamsRequest, context: grpc.aio.ServicerContext) -> bytes:
        await self._admit(request.ByteSize(), context)
        rt = self.runtime
        if rt.params_message is None or request.version != rt.version:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"parameter version {request.version} is not current (current: {rt.version})",
            )
        assert rt.params_message is not None
        return rt.params_message


def _identity(b: bytes) -> bytes:
    return b


def build_server(service: AggregatorService, host: str, port: int) -> tuple[grpc.aio.Server, int, health.HealthServicer]:
    """A grpc.aio server with the Aggregator service and grpc.health.v1; returns the bound port."""
    server = grpc.aio.server(options=SERVER_OPTIONS)
    handlers: dict[str, Any] = {
        "Exchange": grpc.unary_unary_rpc_method_handler(
            service.exchange,
            request_deserializer=pb.ExchangeRequest.FromString,
            response_serializer=pb.ExchangeReply.SerializeToString,
        ),
        "GetParams": grpc.unary_unary_rpc_method_handler(
            service.get_params,
            request_deserializer=pb.ParamsRequest.FromString,
            response_serializer=_identity,  # already serialised once per version
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    health_servicer = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind the gRPC port {host}:{port}")
    return server, bound, health_servicer


async def set_serving(health_servicer: Any, serving: bool) -> None:
    """Report the Aggregator service (and the server as a whole) in grpc.health.v1."""
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", SERVICE_NAME):
        result = health_servicer.set(name, status)
        if hasattr(result, "__await__"):
            await result
