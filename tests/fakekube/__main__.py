"""`python -m tests.fakekube --port N --kubeconfig PATH`: run the fake API server standalone.

Prints `fakekube listening on URL` once it serves, writes a kubeconfig pointing at it, and
runs until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web

from .app import make_app
from .cluster import Cluster
from .harness import write_kubeconfig


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.fakekube", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    p.add_argument("--kubeconfig", type=Path, help="write a kubeconfig for this server here")
    p.add_argument("--bookmark-interval", type=float, default=15.0,
                   help="seconds between BOOKMARK events on watches that allow them")
    p.add_argument("--history", type=int, default=10_000,
                   help="watch events kept for resumption; older resourceVersions get 410")
    p.add_argument("--access-log", action="store_true", help="log every request to stderr")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    app = make_app(Cluster(history=args.history), bookmark_interval=args.bookmark_interval)
    if args.access_log:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    runner = web.AppRunner(app, shutdown_timeout=1.0,
                           access_log=logging.getLogger("fakekube") if args.access_log else None,
                           access_log_format='%r %s %b %Tfs')
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    server = runner.server
    assert server is not None
    port = runner.addresses[0][1]
    url = f"http://{args.host}:{port}"
    if args.kubeconfig:
        write_kubeconfig(args.kubeconfig, url)
    print(f"fakekube listening on {url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    asyncio.run(serve(parse(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
