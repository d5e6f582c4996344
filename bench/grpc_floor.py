"""What one worker call costs the aggregator's process, against the floor grpc.aio itself sets.

Five servers, each in its own process, measured in turn by the same client process over real
gRPC on localhost, with ``--callers`` calls in flight:

* ``exchange``: the real ``AggregatorService`` holding one iteration of chromatic H41/17 at
  HalfCheetah-v5's dimensions (as bench/relay_lease.py), each call a worker's lease of
  ``--items`` items with their topologies' decisions and the token checked;
* ``exchange_stream``: the same server and leases, each caller on its own long-lived
  ``ExchangeStream`` (as the worker exchanges now), one request and one reply message per lease;
* ``noop_unary``: a grpc.aio unary method that returns a reply of the same size;
* ``noop_read``: the same, served as the aggregator serves Exchange: a client-streaming handler
  that reads its one request with ``context.read()`` (so that it sees the token before the body);
* ``noop_stream``: one message each way on a long-lived bidirectional stream per caller, the
  same reply size: what a call would cost if workers kept a stream open instead.

It reads each server process's CPU time around ``--calls`` calls, ``--rounds`` times, and ends
with ONE JSON line: the server's CPU in microseconds per call (median over rounds), the shares
of the real call that the unary floor and the stream floor are, and the real lease on a stream
over the real lease as a call.

    .venv/bin/python bench/grpc_floor.py [--calls 3000] [--callers 100] [--items 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/ is run as a script

from bench.relay_lease import ROOT, TOKEN, cpu_s

METHOD = "/bench.Floor/"
KINDS = ("exchange", "exchange_stream", "noop_unary", "noop_read", "noop_stream")


async def serve_exchange(pairs: int, port_file: Path) -> None:
    """The real service holding one iteration of the HalfCheetah example with ``pairs`` pairs,
    started again whenever half its fresh items are leased."""
    import yaml
    from esenas.algorithm import ESENAS
    from esenas.spec import parse_spec
    from esenas_aggregator.metrics import Metrics
    from esenas_aggregator.runtime import Runtime
    from esenas_aggregator.service import AggregatorService, build_server
    from esenas_aggregator.topologies import IterationTopologies
    from esenas_api.v1 import aggregator_pb2 as pb

    doc = yaml.safe_load((ROOT / "manifests/examples/halfcheetah-chromatic-h41.yaml").read_text())
    doc["spec"]["es"]["perturbations"] = pairs
    doc["spec"]["es"].pop("topDirections", None)  # the default quarter, as these figures were measured
    plan = ESENAS(parse_spec(doc["spec"]), 17, 6).ask()
    params = pb.Params(version=plan.version, params=plan.params.tobytes()).SerializeToString()
    rt = Runtime(Metrics("bench", "bench"), item_timeout=600.0, obs_dim=17)
    table = IterationTopologies(plan.topologies, plan.sample_position, None)
    rt.start_iteration(0, plan.version, plan.items, params, table)
    server, port, _ = build_server(AggregatorService(rt, TOKEN), "127.0.0.1", 0)
    await server.start()
    port_file.write_text(str(port))
    while True:  # until terminated
        if rt.queue.fresh_remaining < rt.queue.size // 2:
            rt.start_iteration(0, plan.version, plan.items, params, table)
        await asyncio.sleep(0.002)


async def serve_noop(reply_bytes: int, port_file: Path) -> None:
    import grpc

    reply = b"x" * reply_bytes

    async def unary(_: bytes, __: object) -> bytes:
        return reply

    async def read(_: object, context: grpc.aio.ServicerContext) -> bytes:
        await context.read()  # the aggregator's form: client-streaming, one message read
        return reply

    async def stream(requests: object, __: object) -> object:
        async for _ in requests:  # type: ignore[attr-defined]
            yield reply

    def same(b: bytes) -> bytes:
        return b

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, request_deserializer=same, response_serializer=same),
        "Read": grpc.stream_unary_rpc_method_handler(read, request_deserializer=same, response_serializer=same),
        "Stream": grpc.stream_stream_rpc_method_handler(stream, request_deserializer=same, response_serializer=same),
    }
    from esenas_api.wire import HTTP2_OPTIONS

    server = grpc.aio.server(options=HTTP2_OPTIONS)  # the aggregator's HTTP/2 settings
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Floor", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    port_file.write_text(str(port))
    await server.wait_for_termination()


async def drive(kind: str, port: int, pid: int, a: argparse.Namespace, reply_bytes: list[int]) -> list[float]:
    """Server CPU microseconds per call, one figure per round."""
    import grpc
    from esenas_api import wire
    from esenas_api.v1 import aggregator_pb2 as pb
    from esenas_api.v1 import aggregator_pb2_grpc as pb_grpc

    per_caller = max(1, a.calls // a.callers)
    request = b"y" * 300  # a worker's request with its results is a few hundred bytes
    from esenas_worker.worker import CHANNEL_OPTIONS

    # one channel (connection) per caller, as each worker has its own, with a worker's options
    opts = [*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=opts) for _ in range(a.callers)]
    meta = wire.bearer(TOKEN)

    async def caller(i: int) -> None:
        ch = channels[i]
        if kind in ("exchange", "exchange_stream"):
            stub = pb_grpc.AggregatorStub(ch)
            stream = stub.ExchangeStream(metadata=meta, timeout=600) if kind == "exchange_stream" else None
            for _ in range(per_caller):
                req = pb.ExchangeRequest(worker_id=f"w{i}", max_items=a.items, wait_ms=0)
                if stream is None:
                    reply = await stub.Exchange(req, metadata=meta, timeout=60)
                else:
                    await stream.write(req)
                    reply = await stream.read()
                if not reply.items:
                    raise RuntimeError("a lease came back empty")
                reply_bytes[:] = [reply.ByteSize()]
            if stream is not None:
                await stream.done_writing()
        elif kind in ("noop_unary", "noop_read"):
            unary = ch.unary_unary(METHOD + ("Unary" if kind == "noop_unary" else "Read"))
            for _ in range(per_caller):
                await unary(request, timeout=60)
        else:
            call = ch.stream_stream(METHOD + "Stream")(timeout=600)
            for _ in range(per_caller):
                await call.write(request)
                await call.read()
            await call.done_writing()

    try:
        await asyncio.gather(*(caller(i) for i in range(a.callers)))  # warm up: connections, handlers
        out = []
        for _ in range(a.rounds):
            c0 = cpu_s(pid)
            await asyncio.gather(*(caller(i) for i in range(a.callers)))
            out.append(1e6 * (cpu_s(pid) - c0) / (per_caller * a.callers))
        return out
    finally:
        await asyncio.gather(*(ch.close() for ch in channels))


def measure(kind: str, a: argparse.Namespace, reply_bytes: list[int]) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        serve = "exchange" if kind.startswith("exchange") else "noop"
        args = ["--serve", serve, "--port-file", str(port_file), "--reply-bytes", str(reply_bytes[0]), "--pairs", str(a.pairs)]
        server = subprocess.Popen([sys.executable, __file__, *args])
        try:
            end = time.monotonic() + 300
            while not port_file.exists():
                if server.poll() is not None or time.monotonic() > end:
                    raise RuntimeError(f"the {kind} server did not start")
                time.sleep(0.1)
            return asyncio.run(drive(kind, int(port_file.read_text()), server.pid, a, reply_bytes))
        finally:
            server.terminate()
            server.wait(30)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=3000, help="calls per round")
    p.add_argument("--callers", type=int, default=100, help="calls in flight")
    p.add_argument("--items", type=int, default=8, help="items per worker lease")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pairs", type=int, default=40_000, help="pairs of the exchange server's iteration")
    p.add_argument("--serve", choices=("exchange", "noop"), help=argparse.SUPPRESS)
    p.add_argument("--port-file", help=argparse.SUPPRESS)
    p.add_argument("--reply-bytes", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve == "exchange":
        asyncio.run(serve_exchange(a.pairs, Path(a.port_file)))
        return 0
    if a.serve == "noop":
        asyncio.run(serve_noop(a.reply_bytes, Path(a.port_file)))
        return 0
    reply_bytes = [0]
    us = {"exchange": measure("exchange", a, reply_bytes)}  # first: the noop replies copy its size
    for kind in KINDS[1:]:
        us[kind] = measure(kind, a, reply_bytes)
    med = {k: round(float(np.median(v)), 1) for k, v in us.items()}
    print(json.dumps({
        "bench": "grpc_floor", "calls_per_round": a.calls, "callers": a.callers, "items_per_lease": a.items,
        "reply_bytes": reply_bytes[0], "server_cpu_us_per_call": med,
        "unary_floor_share_of_exchange": round(med["noop_unary"] / med["exchange"], 3) if med["exchange"] else None,
        "read_floor_share_of_exchange": round(med["noop_read"] / med["exchange"], 3) if med["exchange"] else None,
        "stream_floor_share_of_exchange": round(med["noop_stream"] / med["exchange"], 3) if med["exchange"] else None,
        "exchange_stream_to_exchange": round(med["exchange_stream"] / med["exchange"], 3) if med["exchange"] else None,
        "server_cpu_us_per_call_all": {k: [round(x, 1) for x in v] for k, v in us.items()},
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
