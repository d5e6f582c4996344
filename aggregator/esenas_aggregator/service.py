"""Thin gRPC servicer for esenas.api.v1.Aggregator, plus grpc.health.v1, on grpc.aio.

Handlers check the token (constant time, never logged) before reading the request, then
the request's size and encoding, then hand the packed bytes to :class:`Runtime`. ``GetParams`` answers with the Params message
serialised once per version, so 10,000 workers cost one serialisation, not 10,000.
The port is served by a group of grpc.aio servers, since each one accepts RPCs one at a time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import grpc
from esenas.spec_checks import MAX_OBS_DIM
from esenas_api import wire
from esenas_api.v1 import aggregator_pb2 as pb
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from esenas_aggregator.leases import Lease
from esenas_aggregator.runtime import MAX_BATCH_ITEMS, Runtime

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVICE_NAME: Final = "esenas.api.v1.Aggregator"
#: Largest request the protocol needs: a full batch of results, observation statistics of the
#: most dimensions a spec may have (the spec check refuses more: MAX_OBS_DIM), and 8 KiB for the
#: other fields. gRPC refuses anything larger before buffering it; the handler counts the
#: refusal as ``oversize``.
MAX_REQUEST_BYTES: Final = MAX_BATCH_ITEMS * wire.RESULT_DTYPE.itemsize + (1 + 2 * MAX_OBS_DIM) * 8 + 8 * 1024
TRANSPORT_MAX_SEND: Final = 64 * 1024 * 1024
#: Most concurrent streams (calls) on one connection. An honest worker has one or two in flight
#: (an Exchange, a GetParams); a client opening more has the rest held by its own HTTP/2 stack
#: until one ends, so one connection cannot tie up handlers and memory by the thousand.
MAX_CONCURRENT_STREAMS: Final = 16
#: How long a handler that got no request message waits to learn why: gRPC ends a call whose
#: message it refused as oversize (cancelling the handler) at once; otherwise the stream was empty.
NO_MESSAGE_SETTLE_S: Final = 0.05
#: Seconds between two log lines about malformed requests (each one is counted regardless).
MALFORMED_LOG_EVERY_S: Final = 60.0
#: grpc.aio servers sharing the port. One grpc.aio server accepts RPCs one at a time (each accept
#: is a round trip from gRPC's poller thread through the event loop), which capped a 10,000-worker
#: fleet at ~1,000 calls/s with queueing of hundreds of ms; the kernel spreads connections over these.
ACCEPTORS: Final = 8
SERVER_OPTIONS: Final = (
    ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
    ("grpc.max_send_message_length", TRANSPORT_MAX_SEND),
    ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS),
    ("grpc.so_reuseport", 1),  # for this process's acceptors; build_server checks the port is free first
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.max_connection_idle_ms", 600_000),
    *wire.HTTP2_OPTIONS,
)


class AggregatorService:
    """Converts RPCs to Runtime calls; rejects and counts bad tokens, sizes and encodings.

    Both methods are served as client-streaming handlers (the wire format of a unary call is
    the same), so that the token is checked on the call's headers before its message is read:
    an unauthenticated caller never gets a request body buffered, whatever its size or pace.
    """

    def __init__(self, runtime: Runtime, token: str) -> None:
        self.runtime = runtime
        self._token = token
        self._malformed_log = RateLimitedLog(log, MALFORMED_LOG_EVERY_S)

    async def _admit(self, context: grpc.aio.ServicerContext, parse: Callable[[bytes], T]) -> T:
        """Check the token, then read and decode the one request message; abort on failure."""
        await self._check_token(context)
        raw = await context.read()
        if not isinstance(raw, bytes):  # EOF: gRPC refused the message (over the size limit) or none came
            await self._no_message(context)
        return await self._decode(context, parse, raw)

    async def _check_token(self, context: grpc.aio.ServicerContext) -> None:
        header = None
        for key, value in context.invocation_metadata() or ():
            if key == wire.AUTH_METADATA_KEY:
                header = value if isinstance(value, str) else value.decode(errors="replace")
        if not wire.token_matches(self._token, header):
            self.runtime.metrics.rejected["token"].inc()
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")

    async def _decode(self, context: grpc.aio.ServicerContext, parse: Callable[[bytes], T], raw: bytes) -> T:
        try:
            return parse(raw)
        except DecodeError as exc:
            self.runtime.metrics.rejected["malformed"].inc()
            self._malformed_log.warning("malformed request refused (%d bytes): %s", len(raw), exc)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the request is not a valid protobuf message")
        raise AssertionError("unreachable")  # context.abort raises

    async def _no_message(self, context: grpc.aio.ServicerContext) -> None:
        """The stream ended without a message. gRPC refused one over the size limit: it has
        failed the call with RESOURCE_EXHAUSTED already and cancels this handler within moments
        (counted ``oversize``). Otherwise the stream was empty: ``malformed``, INVALID_ARGUMENT."""
        try:
            await asyncio.sleep(NO_MESSAGE_SETTLE_S)
        except asyncio.CancelledError:
            self.runtime.metrics.rejected["oversize"].inc()
            raise
        self.runtime.metrics.rejected["malformed"].inc()
        self._malformed_log.warning("malformed request refused: the stream carried no message")
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the call carried no request message")

    async def exchange(self, _: object, context: grpc.aio.ServicerContext) -> pb.ExchangeReply:
        request = await self._admit(context, pb.ExchangeRequest.FromString)
        reply, lease = await self._answer(request)
        if lease.items and context.cancelled():  # the worker gave up while we waited: hand them back
            self.runtime.release(lease)
            return pb.ExchangeReply(session=self.runtime.session)
        return reply

    async def exchange_stream(self, _: object, context: grpc.aio.ServicerContext) -> None:
        """ExchangeStream: the token once, on the stream's headers; then every request message is
        answered as ``exchange`` answers one, in order, until the worker closes the stream. A lease
        that cannot be delivered (the worker went away while it waited) is handed back at once."""
        await self._check_token(context)
        answered = 0
        self.runtime.metrics.streams_open.inc()
        try:
            while True:
                raw = await context.read()
                if not isinstance(raw, bytes):
                    # After its first message a stream's end is a close: gRPC shows an oversize
                    # message the same way as a worker that closed or cancelled its stream (an
                    # end, then a cancellation), so only a first message is told apart and counted.
                    if not answered:
                        await self._no_message(context)
                    return
                request = await self._decode(context, pb.ExchangeRequest.FromString, raw)
                reply, lease = await self._answer(request)
                try:
                    if context.cancelled():
                        raise asyncio.CancelledError
                    await context.write(reply)
                except BaseException:
                    if lease.items:
                        self.runtime.release(lease)
                    raise
                answered += 1
        finally:
            self.runtime.metrics.streams_open.dec()

    async def _answer(self, request: pb.ExchangeRequest) -> tuple[pb.ExchangeReply, Lease]:
        """Take the request's results, lease the next items (waiting up to its ``wait_ms``), and
        build the reply: the items, their topologies, and the parameters when the worker lacks them."""
        rt = self.runtime
        accepted = rejected = 0
        max_items = request.max_items
        if request.results or request.failed_items:
            out = rt.push(
                request.session, request.iteration, request.results, request.obs_stats, request.lease, request.worker_id,
                request.failed_items, request.failure, request.keep_lease,
            )
            accepted, rejected = out.accepted, out.rejected_total
            if out.rejected.get("reward_bound") or request.failed_items:
                max_items = 0  # those items go to another worker first (bounds.ItemWatch)
        samples = request.samples_topologies
        lease = await rt.pull(max_items, request.wait_ms, request.worker_id, samples)
        if lease.items:
            rt.metrics.topology_bytes["decisions"].inc(len(lease.topologies) + len(lease.topology_index))
            rt.metrics.topology_bytes["positions"].inc(len(lease.topology_samples))
        params = b""
        if lease.items and (request.held_session, request.held_version) != (rt.session, lease.version):
            params = rt.params_for(samples) or b""
        reply = pb.ExchangeReply(
            params=params,
            topology_index=lease.topology_index,
            topologies=lease.topologies,
            topology_samples=lease.topology_samples,
            session=rt.session,
            iteration=max(lease.iteration, 0),
            version=max(lease.version, 0),
            items=lease.items,
            done=lease.done,
            retry_after_ms=lease.retry_after_ms,
            accepted=accepted,
            rejected=rejected,
            lease=lease.lease_id,
        )
        return reply, lease

    async def get_params(self, _: object, context: grpc.aio.ServicerContext) -> bytes:
        request = await self._admit(context, pb.ParamsRequest.FromString)
        rt = self.runtime
        if rt.params_message is None or request.version != rt.version:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"parameter version {request.version} is not current (current: {rt.version})",
            )
        params = rt.params_for(request.samples_topologies)
        assert params is not None
        return params


class RateLimitedLog:
    """At most one line per ``every`` seconds; the lines skipped meanwhile are counted in the next."""

    def __init__(self, logger: logging.Logger, every: float) -> None:
        self._log = logger
        self._every = every
        self._last = -math.inf
        self._skipped = 0

    def warning(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self._every:
            self._skipped += 1
            return
        if self._skipped:
            msg += f" (and {self._skipped} more since the last such line)"
        self._log.warning(msg, *args)
        self._last, self._skipped = now, 0


def _identity(b: bytes) -> bytes:
    return b


class ServerGroup:
    """Several grpc.aio servers on one port serving the same service; started and stopped together."""

    def __init__(self, servers: Sequence[grpc.aio.Server]) -> None:
        self.servers = list(servers)

    async def start(self) -> None:
        for server in self.servers:
            await server.start()

    async def stop(self, grace: float | None) -> None:
        await asyncio.gather(*(server.stop(grace) for server in self.servers))


class HealthGroup:
    """The grpc.health.v1 servicers of a ServerGroup, set together."""

    def __init__(self, servicers: Sequence[Any]) -> None:
        self.servicers = list(servicers)

    async def set(self, name: str, status: Any) -> None:
        for servicer in self.servicers:
            result = servicer.set(name, status)
            if hasattr(result, "__await__"):
                await result


def reserve_port(host: str, port: int) -> int:
    """Check ``host:port`` is free (port 0: pick one) with a plain bind, so that the acceptors'
    SO_REUSEPORT never shares the port with another process; returns the port."""
    bind_host = host.strip("[]")
    infos = socket.getaddrinfo(bind_host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR: a restarted aggregator must bind although its killed predecessor's
        # connections linger in TIME_WAIT; a live listener on the port still makes bind fail.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(addr)
        except OSError as exc:
            raise OSError(f"cannot bind the gRPC port {host}:{port}: {exc.strerror}") from exc
        return int(probe.getsockname()[1])


def build_server(
    service: AggregatorService,
    host: str,
    port: int,
    acceptors: int = ACCEPTORS,
    tls: tuple[bytes, bytes] | None = None,
) -> tuple[ServerGroup, int, HealthGroup]:
    """``acceptors`` grpc.aio servers on one port with the Aggregator service and grpc.health.v1,
    over TLS when ``tls`` gives (certificate, key) PEM bytes; returns them, the bound port and
    their health servicers."""
    port = reserve_port(host, port)
    creds = None if tls is None else grpc.ssl_server_credentials([(tls[1], tls[0])])
    servers, healths = [], []
    for _ in range(max(1, acceptors)):
        server, health_servicer = _one_server(service, host, port, creds)
        servers.append(server)
        healths.append(health_servicer)
    return ServerGroup(servers), port, HealthGroup(healths)


def _one_server(
    service: AggregatorService, host: str, port: int, creds: grpc.ServerCredentials | None = None
) -> tuple[grpc.aio.Server, Any]:
    server = grpc.aio.server(options=SERVER_OPTIONS)
    handlers: dict[str, Any] = {
        # Client-streaming on the server side: see AggregatorService (token before body).
        "Exchange": grpc.stream_unary_rpc_method_handler(
            service.exchange,
            request_deserializer=None,  # bytes: decoded by the handler, malformed input counted
            response_serializer=pb.ExchangeReply.SerializeToString,
        ),
        "ExchangeStream": grpc.stream_stream_rpc_method_handler(
            service.exchange_stream,
            request_deserializer=None,
            response_serializer=pb.ExchangeReply.SerializeToString,
        ),
        "GetParams": grpc.stream_unary_rpc_method_handler(
            service.get_params,
            request_deserializer=None,
            response_serializer=_identity,  # already serialised once per version
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    health_servicer = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    address = f"{host}:{port}"
    bound = server.add_insecure_port(address) if creds is None else server.add_secure_port(address, creds)
    if bound != port:
        raise OSError(f"cannot bind the gRPC port {host}:{port}")
    return server, health_servicer


async def set_serving(health_servicer: Any, serving: bool) -> None:
    """Report the Aggregator service (and the server as a whole) in grpc.health.v1."""
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", SERVICE_NAME):
        result = health_servicer.set(name, status)
        if hasattr(result, "__await__"):
            await result
