"""Many lightweight simulated workers against one aggregator: ingest rate, latency, RSS, bytes.

The aggregator process runs the real runtime (work queue, grpc.aio servicer with token and
size checks, metrics) with a synthetic plan source in place of ES-ENAS ask/tell, so the
figure is the runtime's own cost per result (ES maths is measured by the core's benches).
Each simulated worker has its own gRPC channel and TCP connection; they are asyncio tasks
in a few client processes. A worker loops: Exchange (push its last BATCH results, pull
BATCH items), then "rolls out" for a jittered think time chosen so the fleet offers ~60k results/s.
The ceiling is a no-op grpc.aio server driven by the same clients in a closed loop.

Latency is measured by the simulated worker from its request to the reply with work: ``p99_ms``
counts every such call; ``p99_ms_within_iteration`` those that got work of the iteration they
pushed results for; ``p99_ms_boundary`` those that waited for the next iteration (ES is
synchronous: that wait is the current iteration's slowest batch, not assignment). The server
side reports its CPU per call, time inside the Exchange handler and event-loop lag; ``--trace``
adds the legs client -> handler and handler -> client from metadata timestamps.
Ends with one JSON line.

    .venv/bin/python bench/fleet.py [--scales 100,1000,10000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import numpy as np

BATCH = 32  # results per Exchange; --batch overrides
OBS_DIM: Final = 4
TOKEN: Final = "fleet-bench-token"
NOOP_METHOD: Final = "/bench.Noop/Call"
OFFERED: Final = 60_000.0  # results/s the fleet offers in total
CLIENT_GC = False  # --client-gc: keep the collector on in the client processes
TRACE = False  # --trace: metadata timestamps on every call
ACCEPTORS = 0  # --acceptors: grpc.aio servers of the aggregator (0: its default)


async def _loop_lag(lags: list[float], period: float = 0.005) -> None:
    """Record how late the event loop wakes a periodic timer (ms): stalls from GC, CPU or long callbacks."""
    loop = asyncio.get_running_loop()
    while True:
        t = loop.time()
        await asyncio.sleep(period)
        lags.append((loop.time() - t - period) * 1000)


def _pct(values: list[float] | np.ndarray, q: float) -> float | None:
    a = np.asarray(values, dtype=np.float64)
    return round(float(np.percentile(a, q)), 2) if a.size else None


def _raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------------------- servers


async def serve_aggregator(port_file: Path, stats_file: Path, items_per_iteration: int) -> None:
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

    server, port, health = build_server(TimedService(rt, TOKEN), "127.0.0.1", 0, ACCEPTORS or DEFAULT_ACCEPTORS)
    lags: list[float] = []
    lag_task = asyncio.ensure_future(_loop_lag(lags))
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


# ---------------------------------------------------------------------------- clients


async def client(args: argparse.Namespace) -> None:
    """``workers`` simulated workers, each with its own channel; stats of the window to --out."""
    import grpc
    from esenas_api import wire
    from esenas_api.v1 import aggregator_pb2 as pb

    opts = [("grpc.use_local_subchannel_pool", 1)]  # one TCP connection per simulated worker
    target = f"127.0.0.1:{args.port}"
    chans = [grpc.aio.insecure_channel(target, options=opts) for _ in range(args.workers)]
    for i in range(0, len(chans), 200):
        await asyncio.gather(*(c.channel_ready() for c in chans[i : i + 200]))
    if not args.client_gc:
        # One client process stands in for thousands of worker processes: its collector walks every
        # simulated worker's objects (pauses of 100-300 ms were measured), which no real worker sees.
        gc.collect()
        gc.freeze()
        gc.disable()
    Path(args.out + ".ready").write_text("1")
    go_file = Path(args.go)
    while not go_file.exists():
        await asyncio.sleep(0.05)
    go = float(go_file.read_text())
    lags: list[float] = []
    lag_task = asyncio.ensure_future(_loop_lag(lags))
    w0, w1 = go + args.warmup, go + args.warmup + args.measure
    lat: list[float] = []
    outbound: list[float] = []  # handler returned (trailing metadata x-done) -> reply seen by the worker
    lat_same: list[float] = []  # calls that got items of the iteration they pushed results for
    lat_boundary: list[float] = []  # calls that waited for the next iteration (pushed a past one, or had no work)
    pushed = [0, 0, 0]  # results, payload bytes, calls
    md = wire.bearer(TOKEN)
    obs = wire.encode_obs_stats(1000.0, np.zeros(OBS_DIM), np.ones(OBS_DIM))

    async def noop(ch: Any) -> None:
        call = ch.unary_unary(NOOP_METHOD)
        payload = b"x" * (BATCH * wire.RESULT_DTYPE.itemsize)
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
        await asyncio.sleep(rnd.uniform(0, args.think))  # spread the fleet's first calls
        req = pb.ExchangeRequest(worker_id=wid, max_items=BATCH, wait_ms=2000)
        after_empty = False
        while time.time() < w1:
            t = time.perf_counter()
            n_res = len(req.results) // wire.RESULT_DTYPE.itemsize
            size = req.ByteSize()
            try:
                if args.trace:
                    call = exchange(req, metadata=(*md, ("x-sent", repr(time.time()))), timeout=60)
                    reply = await call
                    done_at = dict(await call.trailing_metadata() or ()).get("x-done")
                    back = time.time() - float(done_at) if done_at is not None else None
                else:
                    reply, back = await exchange(req, metadata=md, timeout=60), None
            except grpc.RpcError:
                req = pb.ExchangeRequest(worker_id=wid, max_items=BATCH, wait_ms=2000)
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
                req = pb.ExchangeRequest(worker_id=wid, max_items=BATCH, wait_ms=2000)
                continue
            items = wire.decode_items(reply.items)
            seeds = items["seed"].astype(np.float64)
            results = wire.encode_results(items["index"], seeds % 1000, -(seeds % 997), np.full(len(items), 1000), items["topology"])
            await asyncio.sleep(args.think * rnd.uniform(0.5, 1.5))  # the "rollouts"
            req = pb.ExchangeRequest(
                worker_id=wid, session=reply.session, iteration=reply.iteration, lease=reply.lease, results=results,
                obs_stats=obs, max_items=BATCH, wait_ms=2000,
            )

    if args.noop:
        await asyncio.gather(*(noop(c) for c in chans))
    else:
        await asyncio.gather(*(worker(c, f"w{args.seq}-{i}") for i, c in enumerate(chans)))
    lag_task.cancel()
    Path(args.out).write_text(json.dumps({"lat": lat, "lat_same": lat_same, "lat_boundary": lat_boundary, "results": pushed[0], "bytes": pushed[1],
                                          "calls": pushed[2], "lag": lags, "outbound": outbound}))
    for c in chans:
        await c.close()


# ---------------------------------------------------------------------------- driver


def _spawn(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, *argv], env=dict(os.environ, PYTHONUNBUFFERED="1"))


def _wait_file(path: Path, timeout: float, procs: list[subprocess.Popen[bytes]]) -> None:
    end = time.time() + timeout
    while not path.exists():
        if time.time() > end or any(p.poll() not in (None, 0) for p in procs):
            raise RuntimeError(f"timed out waiting for {path}")
        time.sleep(0.05)


def _proc_status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tcp_bytes_received(port: str) -> int:
    """Bytes the server's sockets on ``port`` received (TCP payload: HTTP/2 + gRPC framing included)."""
    text = subprocess.run(["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
                          capture_output=True, text=True, check=True).stdout
    return sum(int(tok.split(":")[1]) for tok in text.split() if tok.startswith("bytes_received:"))


def run_scale(tmp: Path, workers: int, clients: int, warmup: float, measure: float, noop: bool) -> dict[str, Any]:
    tag = f"{'noop' if noop else 'agg'}-{workers}"
    port_file, stats_file, go = tmp / f"{tag}.port", tmp / f"{tag}.stats", tmp / f"{tag}.go"
    think = workers * BATCH / OFFERED
    items = max(4 * workers * BATCH, 65_536)
    server = (_spawn("--serve-noop", str(port_file)) if noop
              else _spawn("--acceptors", str(ACCEPTORS), "--serve-aggregator", str(port_file), str(stats_file), str(items)))
    procs = [server]
    try:
        _wait_file(port_file, 60, procs)
        port = port_file.read_text()
        outs = [tmp / f"{tag}.client{i}.json" for i in range(clients)]
        for i, out in enumerate(outs):
            share = workers // clients + (1 if i < workers % clients else 0)
            argv = ["--acceptors", str(ACCEPTORS), "--client", "--port", port, "--workers", str(share), "--think", str(think), "--go", str(go),
                    "--warmup", str(warmup), "--measure", str(measure), "--out", str(out), "--seq", str(i)]
            procs.append(_spawn(*argv, "--batch", str(BATCH), *(["--noop"] if noop else []),
                                *(["--client-gc"] if CLIENT_GC else []), *(["--trace"] if TRACE else [])))
        t_conn = time.time()
        for out in outs:
            _wait_file(Path(str(out) + ".ready"), 300, procs)
        print(f"  {tag}: {workers} channels connected in {time.time() - t_conn:.1f} s", flush=True)
        go_tmp = go.with_suffix(".gotmp")
        go_tmp.write_text(str(time.time() + 0.5))
        go_tmp.replace(go)
        time.sleep(0.5 + warmup)
        s0 = json.loads(stats_file.read_text()) if not noop else None
        r0, c0 = _tcp_bytes_received(port), _cpu_seconds(server.pid)
        time.sleep(measure)
        s1 = json.loads(stats_file.read_text()) if not noop else None
        r1, c1 = _tcp_bytes_received(port), _cpu_seconds(server.pid)
        for p in procs[1:]:
            p.wait(timeout=120)
        rss_peak = _proc_status(server.pid, "VmHWM")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    data = [json.loads(o.read_text()) for o in outs]
    lat = np.array([x for d in data for x in d["lat"]]) * 1000
    calls = sum(d["calls"] for d in data)
    res = sum(d["results"] for d in data)
    row: dict[str, Any] = {"workers": workers, "calls_per_s": round(calls / measure),
                           "p50_ms": round(float(np.percentile(lat, 50)), 2) if lat.size else None,
                           "p99_ms": round(float(np.percentile(lat, 99)), 2) if lat.size else None,
                           "server_peak_rss_mib": round(rss_peak / 2**20, 1),
                           "server_cpu_us_per_call": round((c1 - c0) / max(calls, 1) * 1e6),
                           "server_cpu_share": round((c1 - c0) / measure, 2),
                           "client_loop_lag_p99_ms": _pct([x for d in data for x in d["lag"]], 99)}
    if not noop:
        assert s0 is not None and s1 is not None
        srv = json.loads(Path(str(stats_file) + ".lat").read_text())
        handler = srv["handler_ms"][s0["n_handler"] : s1["n_handler"]]
        inbound = srv["inbound_ms"][s0["n_handler"] : s1["n_handler"]]
        outbound = [x for d in data for x in d["outbound"]]
        row.update(server_handler_p50_ms=_pct(handler, 50), server_handler_p99_ms=_pct(handler, 99),
                   inbound_p50_ms=_pct(inbound, 50), inbound_p99_ms=_pct(inbound, 99),
                   outbound_p50_ms=_pct(outbound, 50), outbound_p99_ms=_pct(outbound, 99),
                   server_loop_lag_p99_ms=_pct(srv["lag_ms"][s0["n_lag"] : s1["n_lag"]], 99))
        lat_same = np.array([x for d in data for x in d["lat_same"]]) * 1000
        row.update(
            results_per_s=round((s1["accepted"] - s0["accepted"]) / (s1["t"] - s0["t"])),
            pushed_per_s=round(res / measure),
            offered_per_s=round(OFFERED),
            payload_bytes_per_result=round(sum(d["bytes"] for d in data) / max(res, 1), 2),
            tcp_bytes_in_per_result=round((r1 - r0) / max(s1["accepted"] - s0["accepted"], 1), 2),
            p99_ms_within_iteration=round(float(np.percentile(lat_same, 99)), 2) if lat_same.size else None,
            p50_ms_within_iteration=_pct(lat_same, 50),
            boundary_calls=sum(len(d["lat_boundary"]) for d in data),
            p99_ms_boundary=_pct([x * 1000 for d in data for x in d["lat_boundary"]], 99),
            connected=s1["connected"], iterations=s1["iterations"],
        )
    print(f"  {tag}: {row}", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="100,1000,10000")
    ap.add_argument("--clients", type=int, default=2, help="client processes")
    ap.add_argument("--ceiling-workers", type=int, default=1000, help="closed-loop clients of the no-op ceiling")
    ap.add_argument("--measure", type=float, default=15.0)
    ap.add_argument("--serve-aggregator", nargs=3, default=None)
    ap.add_argument("--serve-noop", default=None)
    ap.add_argument("--client", action="store_true")
    ap.add_argument("--noop", action="store_true")
    ap.add_argument("--client-gc", action="store_true", help="leave the client processes' garbage collector on")
    ap.add_argument("--acceptors", type=int, default=0, help="aggregator grpc.aio acceptors (0: its default)")
    ap.add_argument("--trace", action="store_true",
                    help="time each leg of a call with metadata timestamps (costs CPU on both sides)")
    ap.add_argument("--port"), ap.add_argument("--workers", type=int), ap.add_argument("--think", type=float)
    ap.add_argument("--go"), ap.add_argument("--warmup", type=float), ap.add_argument("--out")
    ap.add_argument("--seq", type=int, default=0)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    global BATCH, CLIENT_GC, TRACE, ACCEPTORS
    BATCH, CLIENT_GC, TRACE, ACCEPTORS = args.batch, args.client_gc, args.trace, args.acceptors
    _raise_nofile()
    if args.serve_aggregator:
        asyncio.run(serve_aggregator(Path(args.serve_aggregator[0]), Path(args.serve_aggregator[1]), int(args.serve_aggregator[2])))
        return
    if args.serve_noop:
        asyncio.run(serve_noop(Path(args.serve_noop)))
        return
    if args.client:
        asyncio.run(client(args))
        return
    scales = [int(s) for s in args.scales.split(",")]
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        print(f"ceiling: no-op grpc.aio server, {args.ceiling_workers} closed-loop clients", flush=True)
        ceiling = run_scale(tmp, args.ceiling_workers, args.clients, 3.0, 8.0, noop=True)
        rows = []
        for w in scales:
            print(f"fleet of {w} simulated workers (batch {BATCH}, offered {OFFERED:,.0f} results/s)", flush=True)
            rows.append(run_scale(tmp, w, args.clients, warmup=max(3.0, 1.5 * w * BATCH / OFFERED), measure=args.measure, noop=False))
    print(json.dumps({
        "bench": "fleet", "batch": BATCH, "client_processes": args.clients, "cores": os.cpu_count(),
        "noop_calls_per_s": ceiling["calls_per_s"], "noop_p50_ms": ceiling["p50_ms"], "noop_p99_ms": ceiling["p99_ms"],
        "noop_results_per_s_ceiling": ceiling["calls_per_s"] * BATCH,
        "scales": rows, "load_avg_1m": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
