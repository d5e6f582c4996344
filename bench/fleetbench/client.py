"""A client process: many simulated workers, each with its own gRPC channel and TCP connection.

A worker loops: Exchange (push its last batch of results, pull a batch of items), then "rolls
out" for a jittered think time. Against the no-op ceiling the workers call in a closed loop.
The stats of the measurement window go to ``spec.out`` as JSON.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from .config import NOOP_METHOD, OBS_DIM, TOKEN, ClientSpec, FleetConfig, loop_lag


async def client(cfg: FleetConfig, spec: ClientSpec) -> None:
    """``spec.workers`` simulated workers, each with its own channel; stats of the window to ``spec.out``."""
    import grpc
    from esenas_api import wire
    from esenas_api.v1 import aggregator_pb2 as pb

    batch = cfg.batch
    opts = [("grpc.use_local_subchannel_pool", 1), *wire.HTTP2_OPTIONS]  # one TCP connection per simulated worker
    target = f"127.0.0.1:{spec.port}"
    chans = [grpc.aio.insecure_channel(target, options=opts) for _ in range(spec.workers)]
    for i in range(0, len(chans), 200):
        await asyncio.gather(*(c.channel_ready() for c in chans[i : i + 200]))
    if not cfg.client_gc:
        # One client process stands in for thousands of worker processes: its collector walks every
        # simulated worker's objects (pauses of 100-300 ms were measured), which no real worker sees.
        gc.collect()
        gc.freeze()
        gc.disable()
    Path(str(spec.out) + ".ready").write_text("1")
    while not spec.go.exists():
        await asyncio.sleep(0.05)
    go = float(spec.go.read_text())
    lags: list[float] = []
    lag_task = asyncio.ensure_future(loop_lag(lags))
    w0, w1 = go + spec.warmup, go + spec.warmup + spec.measure
    lat: list[float] = []
    outbound: list[float] = []  # handler returned (trailing metadata x-done) -> reply seen by the worker
    lat_same: list[float] = []  # calls that got items of the iteration they pushed results for
    lat_boundary: list[float] = []  # calls that waited for the next iteration (pushed a past one, or had no work)
    pushed = [0, 0, 0]  # results, payload bytes, calls
    md = wire.bearer(TOKEN)
    obs = wire.encode_obs_stats(1000.0, np.zeros(OBS_DIM), np.ones(OBS_DIM))

    async def noop(ch: Any) -> None:
        call = ch.unary_unary(NOOP_METHOD)
        payload = b"x" * (batch * wire.RESULT_DTYPE.itemsize)
        while time.time() < w1:
            t = time.perf_counter()
            try:
                await call(payload, timeout=60)
            except grpc.RpcError:
                await asyncio.sleep(0.1)
                continue
            now = time.time()
            if w0 <= now < w1:
                lat.append(time.perf_counter() - t)
                pushed[2] += 1

    async def worker(ch: Any, wid: str) -> None:
        exchange = ch.unary_unary(
            "/esenas.api.v1.Aggregator/Exchange",
            request_serializer=pb.ExchangeRequest.SerializeToString,
            response_deserializer=pb.ExchangeReply.FromString,
        )
        rnd = random.Random(wid)
        await asyncio.sleep(rnd.uniform(0, spec.think))  # spread the fleet's first calls
        req = pb.ExchangeRequest(worker_id=wid, max_items=batch, wait_ms=2000)
        after_empty = False
        while time.time() < w1:
            t = time.perf_counter()
            n_res = len(req.results) // wire.RESULT_DTYPE.itemsize
            size = req.ByteSize()
            try:
                if cfg.trace:
                    call = exchange(req, metadata=(*md, ("x-sent", repr(time.time()))), timeout=60)
                    reply = await call
                    done_at = dict(await call.trailing_metadata() or ()).get("x-done")
                    back = time.time() - float(done_at) if done_at is not None else None
                else:
                    reply, back = await exchange(req, metadata=md, timeout=60), None
            except grpc.RpcError:
                req = pb.ExchangeRequest(worker_id=wid, max_items=batch, wait_ms=2000)
                await asyncio.sleep(0.5)
                continue
            now = time.time()
            if w0 <= now < w1:
                pushed[0] += n_res
                pushed[1] += size
                pushed[2] += 1
                if reply.items:
                    lat.append(time.perf_counter() - t)
                    if back is not None:
                        outbound.append(back * 1000)
                    if n_res and reply.iteration == req.iteration:
                        lat_same.append(lat[-1])
                    elif after_empty or (n_res and reply.iteration != req.iteration):
                        lat_boundary.append(lat[-1])
            after_empty = not reply.items
            if not reply.items:
                req = pb.ExchangeRequest(worker_id=wid, max_items=batch, wait_ms=2000)
                continue
            items = wire.decode_items(reply.items)
            seeds = items["seed"].astype(np.float64)
            results = wire.encode_results(items["index"], seeds % 1000, -(seeds % 997), np.full(len(items), 1000), items["topology"])
            await asyncio.sleep(spec.think * rnd.uniform(0.5, 1.5))  # the "rollouts"
            req = pb.ExchangeRequest(
                worker_id=wid, session=reply.session, iteration=reply.iteration, lease=reply.lease, results=results,
                obs_stats=obs, max_items=batch, wait_ms=2000,
            )

    if spec.noop:
        await asyncio.gather(*(noop(c) for c in chans))
    else:
        await asyncio.gather(*(worker(c, f"w{spec.seq}-{i}") for i, c in enumerate(chans)))
    lag_task.cancel()
    spec.out.write_text(json.dumps({"lat": lat, "lat_same": lat_same, "lat_boundary": lat_boundary, "results": pushed[0], "bytes": pushed[1],
                                    "calls": pushed[2], "lag": lags, "outbound": outbound}))
    for c in chans:
        await c.close()
