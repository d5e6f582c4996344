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

This file is the command line only. The three programs it runs live in ``bench/fleetbench/``,
one module each: the driver (``driver``) starts this script again as the server under test
(``--serve-aggregator`` / ``--serve-noop``, module ``server``) and as the client processes
(``--client``, module ``client``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # bench/ is run as a script: import its package from the repo root

from bench.fleetbench.client import client  # noqa: E402
from bench.fleetbench.config import ClientSpec, FleetConfig, raise_nofile  # noqa: E402
from bench.fleetbench.driver import drive  # noqa: E402
from bench.fleetbench.server import serve_aggregator, serve_noop  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = FleetConfig(script=Path(__file__), batch=args.batch, client_gc=args.client_gc, trace=args.trace, acceptors=args.acceptors)
    raise_nofile()
    if args.serve_aggregator:
        port_file, stats_file, items = args.serve_aggregator
        asyncio.run(serve_aggregator(cfg, Path(port_file), Path(stats_file), int(items)))
    elif args.serve_noop:
        asyncio.run(serve_noop(Path(args.serve_noop)))
    elif args.client:
        spec = ClientSpec(port=args.port, workers=args.workers, think=args.think, go=Path(args.go), warmup=args.warmup,
                          measure=args.measure, out=Path(args.out), seq=args.seq, noop=args.noop)
        asyncio.run(client(cfg, spec))
    else:
        drive(cfg, [int(s) for s in args.scales.split(",")], args.clients, args.ceiling_workers, args.measure)


if __name__ == "__main__":
    main()
