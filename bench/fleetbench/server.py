"""The servers under test: the real aggregator runtime on a synthetic plan, and a no-op ceiling.

The aggregator process runs the real runtime (work queue, grpc.aio servicer with token and
size checks, metrics) with a synthetic plan source in place of ES-ENAS ask/tell. Every 0.2 s it
writes its counters to the stats file the driver reads; on SIGTERM it writes the latencies of the
Exchange handler and of its event loop next to it (``<stats>.lat``).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

from .config import OBS_DIM, TOKEN, FleetConfig, loop_lag


async def serve_aggregator(cfg: FleetConfig, port_file: Path, stats_file: Path, items_per_iteration: int) -> None:
    """The real runtime + servicer; a new synthetic iteration starts when one completes."""
    from esenas_aggregator.metrics import Metrics
    from esenas_aggregator.runtime import Runtime
    from esenas_aggregator.service import ACCEPTORS as DEFAULT_ACCEPTORS
    from esenas_aggregator.service import AggregatorService, build_server, set_serving

    metrics = Metrics("fleet-bench", "bench")
    rt = Runtime(metrics, item_timeout=60.0, obs_dim=OBS_DIM)
    handler_ms: list[float] = []  # time inside the servicer's Exchange (admit + push + pull), work replies only
    inbound_ms: list[float] = []  # client's send (metadata x-sent) -> handler entered

    class TimedService(AggregatorService):
        async def exchange(self, request: Any, context: Any) -> Any:
            t = time.perf_counter()
            arrived = time.time()
            reply = await super().exchange(request, context)
            if reply.items:
                handler_ms.append((time.perf_counter() - t) * 1000)
                sent = dict(context.invocation_metadata() or ()).get("x-sent")
                if sent is not None:
                    inbound_ms.append((arrived - float(sent)) * 1000)
                context.set_trailing_metadata((("x-done", repr(time.time())),))
            return reply

    server, port, health = build_server(TimedService(rt, TOKEN), "127.0.0.1", 0, cfg.acceptors or DEFAULT_ACCEPTORS)
    lags: list[float] = []
    lag_task = asyncio.ensure_future(loop_lag(lags))
    await server.start()
    await set_serving(health, True)
    rng = np.random.default_rng(0)
    iteration = 0

    def new_iteration() -> None:
        nonlocal iteration
        items = np.zeros(items_per_iteration, dtype=[("index", "<u4"), ("seed", "<u8"), ("topology", "<u4"), ("kind", "u1")])
        items["index"] = np.arange(items_per_iteration)
        items["seed"] = rng.integers(1, 2**63, items_per_iteration, dtype=np.uint64)
        rt.start_iteration(iteration, iteration, items, b"\x08" + bytes([iteration % 128]))
        iteration += 1

    new_iteration()
    port_file.write_text(str(port))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    accepted = 0
    last_dump = 0.0
    while not stop.is_set():
        waiter = asyncio.ensure_future(rt.iteration_complete.wait())
        done, _ = await asyncio.wait({waiter}, timeout=0.2)
        if not done:
            waiter.cancel()
        else:
            accepted += rt.queue.size
            new_iteration()
        now = time.time()
        if now - last_dump > 0.2:
            in_flight = rt.queue.size - rt.queue.outstanding
            tmp = stats_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({
                "t": now, "accepted": accepted + in_flight, "iterations": iteration, "connected": rt.connected(),
                "n_handler": len(handler_ms), "n_lag": len(lags),
            }))
            tmp.replace(stats_file)
            last_dump = now
    lag_task.cancel()
    Path(str(stats_file) + ".lat").write_text(json.dumps({"handler_ms": handler_ms, "inbound_ms": inbound_ms, "lag_ms": lags}))
    await server.stop(0.5)


async def serve_noop(port_file: Path) -> None:
    """The ceiling: a grpc.aio server whose one method returns at once."""
    import grpc

    async def call(request: bytes, context: Any) -> bytes:
        return b""

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(call, request_deserializer=None, response_serializer=None)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Noop", {"Call": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    port_file.write_text(str(port))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(0.5)
