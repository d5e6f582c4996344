"""`python -m tests.simcluster --kubeconfig PATH --workdir DIR`: run the pod runner.

Prints `simcluster ready proxy=http://127.0.0.1:PORT` once its watches are synced; give that URL
as `http_proxy`/`grpc_proxy` (with `no_proxy=127.0.0.1,localhost`) to any process outside the
simulated pods that must reach a Service by its DNS name, such as the operator. On SIGTERM or
SIGINT it stops every pod's processes (SIGTERM, SIGKILL after --grace) and exits.
With --containers, every pod runs as OCI containers with runc from the images `make images` built.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from tests.simcluster import oci
from tests.simcluster.kubeapi import Kube, read_kubeconfig
from tests.simcluster.runner import Runner


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.simcluster", description=__doc__)
    p.add_argument("--kubeconfig", type=Path, required=True, help="kubeconfig of the API server")
    p.add_argument("--workdir", type=Path, required=True, help="per-pod folders, volumes, claims and logs go here")
    p.add_argument("--backoff", type=float, default=1.0, help="first restart back-off in seconds (doubles up to 30)")
    p.add_argument("--probe-period", type=float, default=1.0, help="cap on probe periods, in seconds")
    p.add_argument("--grace", type=float, default=10.0, help="grace seconds for pods still running at exit")
    p.add_argument("--containers", action="store_true", help="run pods as runc containers of the built images")
    p.add_argument("--images", type=Path, default=oci.IMAGES_JSON, help="images.json written by `make images`")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    server, token = read_kubeconfig(args.kubeconfig)
    kube = Kube(server, token)
    args.workdir.mkdir(parents=True, exist_ok=True)
    images = oci.load_images(args.images) if args.containers else None
    runner = Runner(kube, args.workdir.resolve(), backoff=args.backoff, probe_period=args.probe_period, images=images)
    port = await runner.start()
    print(f"simcluster ready proxy=http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.shutdown(args.grace)
    await kube.close()


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
