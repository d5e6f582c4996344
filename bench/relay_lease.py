"""The aggregator's CPU per relay-sized lease: topologies as decisions against sample positions.

A real aggregator service (``Runtime`` + ``AggregatorService`` on grpc.aio) in its own process
holds one iteration of chromatic H41/17 at HalfCheetah-v5's dimensions with 80,000 pairs, the
policy-gradient controller's plan. This process plays one relay over real gRPC: each ``Exchange``
leases ``--lease`` items (abandoning the previous lease, whose items go back to the queue), in
blocks of ``--calls`` calls that alternate between asking for decisions (what a worker or an
older relay gets) and for sample positions (``samples_topologies``, what a relay gets now). It
reads the server process's CPU time around each block. Ends with ONE JSON line: CPU ms per
lease of each form, their ratio, and the reply bytes.

    .venv/bin/python bench/relay_lease.py [--pairs 80000] [--lease 10000] [--calls 8] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def serve(pairs: int, lease: int, port_file: Path) -> None:
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
    assert plan.sampler is not None
    params = pb.Params(version=plan.version, params=plan.params.tobytes()).SerializeToString()
    sampling = params + pb.Params(topology_sampler=plan.sampler.to_bytes()).SerializeToString()
    rt = Runtime(Metrics("bench", "bench"), item_timeout=600.0, obs_dim=17, max_lease_items=16384)
    table = IterationTopologies(plan.topologies, plan.sample_position, sampling)
    rt.start_iteration(0, plan.version, plan.items, params, table)
    server, port, _ = build_server(AggregatorService(rt, TOKEN), "127.0.0.1", 0)
    await server.start()
    port_file.write_text(str(port))
    while True:  # until terminated: the same iteration again whenever fewer than a lease of fresh items is left
        if rt.queue.fresh_remaining < lease:
            rt.start_iteration(0, plan.version, plan.items, params, table)
        await asyncio.sleep(0.002)


async def play(port: int, pid: int, a: argparse.Namespace) -> dict[str, object]:
    import grpc
    from esenas_api import wire
    from esenas_api.v1 import aggregator_pb2 as pb
    from esenas_api.v1 import aggregator_pb2_grpc as pb_grpc

    cpu: dict[str, list[float]] = {"decisions": [], "positions": []}
    size: dict[str, int] = {}
    opts = [("grpc.max_receive_message_length", 256 << 20), *wire.HTTP2_OPTIONS]  # a relay's channel
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=opts) as channel:
        stub = pb_grpc.AggregatorStub(channel)
        meta = wire.bearer(TOKEN)

        async def lease(samples: bool) -> pb.ExchangeReply:
            # wait_ms: a lease that finds the pool drained waits for the server's next round (it
            # polls every 2 ms, far longer on a loaded machine) instead of coming back short
            req = pb.ExchangeRequest(worker_id="relay-0", max_items=a.lease, wait_ms=5000, samples_topologies=samples)
            reply: pb.ExchangeReply = await stub.Exchange(req, metadata=meta, timeout=60)
            return reply

        await lease(False)  # warm up the connection and the handlers
        for _ in range(a.rounds):
            for form in ("decisions", "positions"):
                c0 = cpu_s(pid)
                for _ in range(a.calls):
                    reply = await lease(form == "positions")
                cpu[form].append((cpu_s(pid) - c0) / a.calls)
                size[form] = len(reply.topologies) + len(reply.topology_index) + len(reply.topology_samples)
                if len(reply.items) != 17 * a.lease:
                    raise RuntimeError(f"leased {len(reply.items) // 17} items, not {a.lease}")
    # /proc counts CPU in clock ticks (10 ms): a tiny run can read 0 for a block
    ms = {form: round(1e3 * float(np.median(v)), 2) for form, v in cpu.items()}
    return {
        "bench": "relay_lease", "pairs": a.pairs, "lease_items": a.lease, "calls_per_block": a.calls, "rounds": a.rounds,
        "server_cpu_ms_per_lease": ms, "ratio_positions_to_decisions": round(ms["positions"] / ms["decisions"], 3) if ms["decisions"] else None,
        "topology_bytes_per_lease": size,
        "server_cpu_ms_per_lease_all": {form: [round(1e3 * x, 2) for x in v] for form, v in cpu.items()},
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=80_000)
    p.add_argument("--lease", type=int, default=10_000)
    p.add_argument("--calls", type=int, default=8)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--serve", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve:
        asyncio.run(serve(a.pairs, a.lease, Path(a.serve)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        server = subprocess.Popen([sys.executable, __file__, "--pairs", str(a.pairs), "--lease", str(a.lease), "--serve", str(port_file)])
        try:
            end = time.monotonic() + 300
            while not port_file.exists():
                if server.poll() is not None or time.monotonic() > end:
                    raise RuntimeError("the server did not start")
                time.sleep(0.1)
            result = asyncio.run(play(int(port_file.read_text()), server.pid, a))
        finally:
            server.terminate()
            server.wait(30)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
