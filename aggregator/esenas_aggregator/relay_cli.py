"""``esenas-relay`` and ``esenas relay``: a relay pod between many workers and the aggregator
(docs/relay-tier.md). Its workers dial it with ``--aggregator``; it dials the aggregator with ``--upstream``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from esenas.entrypoint import Command, exit_with_reason, report_missing, setup_logging
from esenas.spec import Job, SpecError, load_job
from esenas_api.tls import read_pem
from esenas_api.wire import HTTP2_OPTIONS, read_token

from esenas_aggregator.cli import tls_pair

log = logging.getLogger(__name__)

#: Items one upstream lease asks for, per item of a worker's batch: a relay of ~64 workers
#: takes one lease per iteration (the aggregator caps it with its own --max-lease-items).
DEFAULT_LEASE_BATCHES = 64
#: Seconds a relay with --exit-when-done keeps answering "done" after the job ends, so its workers hear it.
LINGER_S = 3.0
#: The relay's channel to the aggregator: a lease of a relay's share of an iteration is large.
UPSTREAM_OPTIONS = (("grpc.max_receive_message_length", 64 * 1024 * 1024), *HTTP2_OPTIONS)


def add_arguments(p: argparse.ArgumentParser) -> None:
    env = os.environ.get
    p.add_argument("--upstream", default=env("ESENAS_UPSTREAM"), help="the aggregator's gRPC address, host:port [ESENAS_UPSTREAM]")
    p.add_argument("--job", default=env("ESENAS_JOB_FILE"), help="ESENASJob YAML: result bounds, item timeout, batch size [ESENAS_JOB_FILE]")
    p.add_argument("--token-file", default=env("ESENAS_TOKEN_FILE"), help="file holding the job token, for both sides [ESENAS_TOKEN_FILE]")
    p.add_argument("--tls-ca-file", default=env("ESENAS_TLS_CA_FILE"), help="PEM CA: dial the aggregator over TLS [ESENAS_TLS_CA_FILE]")
    p.add_argument("--tls-cert-file", default=env("ESENAS_TLS_CERT_FILE"), help="PEM certificate: serve the workers over TLS [ESENAS_TLS_CERT_FILE]")
    p.add_argument("--tls-key-file", default=env("ESENAS_TLS_KEY_FILE"), help="PEM key of --tls-cert-file [ESENAS_TLS_KEY_FILE]")
    p.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=int(env("ESENAS_GRPC_PORT", "50051")), help="gRPC port for the workers; 0 picks one [ESENAS_GRPC_PORT]")
    p.add_argument("--http-port", type=int, default=int(env("ESENAS_HTTP_PORT", "9090")), help="/metrics and /healthz; 0 picks one [ESENAS_HTTP_PORT]")
    p.add_argument("--lease-items", type=int, default=int(env("ESENAS_LEASE_ITEMS", "0")),
                   help=f"items per upstream lease (default {DEFAULT_LEASE_BATCHES} x workers.batchSize) [ESENAS_LEASE_ITEMS]")
    p.add_argument("--relay-id", default=env("ESENAS_RELAY_ID") or f"relay-{socket.gethostname()}", help="this relay's id at the aggregator")
    p.add_argument("--ports-file", default=None, help="write the bound ports here as JSON")
    p.add_argument("--exit-when-done", action="store_true", help="exit once the job is done (local runs); else answer done until stopped")
    p.add_argument("--log-level", default=env("ESENAS_LOG_LEVEL", "INFO"))


def main(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    if report_missing("relay", (("--upstream", args.upstream), ("--job", args.job), ("--token-file", args.token_file))):
        return 2
    try:
        job = load_job(args.job)
        token = read_token(args.token_file)
        ca = read_pem(args.tls_ca_file, "--tls-ca-file") if args.tls_ca_file else None
        tls = tls_pair(args.tls_cert_file, args.tls_key_file)
        if args.lease_items < 0:
            raise ValueError(f"--lease-items: must be >= 0 (0: the default), got {args.lease_items}")
    except (SpecError, ValueError) as exc:
        print(f"esenas relay: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(serve(args, job, token, ca, tls))


async def serve(args: argparse.Namespace, job: Job, token: str, ca: bytes | None, tls: tuple[bytes, bytes] | None) -> int:
    import grpc

    from esenas_aggregator import http
    from esenas_aggregator.bounds import ResultBounds
    from esenas_aggregator.listen import listen
    from esenas_aggregator.metrics import Metrics
    from esenas_aggregator.relay import Relay, RelayRefused
    from esenas_aggregator.runtime import MAX_BATCH_ITEMS, Runtime
    from esenas_aggregator.service import AggregatorService, set_serving

    spec = job.spec
    metrics = Metrics(job.name, job.namespace)
    bounds = ResultBounds.of(spec)
    runtime = Runtime(metrics, spec.workers.item_timeout_seconds, 0, bounds, spec.workers.batch_size)
    runtime.forward_confirmed = True  # items two workers agree went wrong: the aggregator judges them
    # under the straggler policy a round closed early keeps taking its stragglers (relay.CarriedRound);
    # otherwise a round handed upstream is over and its late results are stale
    runtime.carries = spec.es.min_pairs_fraction < 1.0
    runtime.watch.unit = "round"
    creds = grpc.ssl_channel_credentials(root_certificates=ca) if ca else None
    channel = (
        grpc.aio.secure_channel(args.upstream, creds, UPSTREAM_OPTIONS) if creds
        else grpc.aio.insecure_channel(args.upstream, UPSTREAM_OPTIONS)
    )
    lease_items = min(MAX_BATCH_ITEMS, args.lease_items or DEFAULT_LEASE_BATCHES * spec.workers.batch_size)
    relay = Relay(runtime, channel, token, args.relay_id, lease_items, round_timeout=spec.workers.item_timeout_seconds,
                  min_pairs_fraction=spec.es.min_pairs_fraction)
    app = http.build_app(metrics, relay.status, lambda: None, lambda: {}, lambda: {})
    bound = await listen(AggregatorService(runtime, token), app, args.host, args.port, args.http_port, tls)
    if isinstance(bound, str):
        await channel.close()
        return exit_with_reason(bound)
    server, grpc_port, health, runner, http_port = bound.server, bound.grpc_port, bound.health, bound.runner, bound.http_port
    await set_serving(health, True)
    if args.ports_file:
        tmp = Path(args.ports_file).with_suffix(".tmp")
        tmp.write_text(json.dumps({"grpc": grpc_port, "http": http_port}))
        tmp.replace(args.ports_file)
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(relay.run())
    stopped = asyncio.Event()

    def stop() -> None:
        stopped.set()
        task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    log.info("relay %s: serving workers on %s:%d, leasing up to %d items from %s",
             args.relay_id, args.host, grpc_port, lease_items, args.upstream)
    code = 0
    try:
        await task
        # Done: keep answering "done" (a pod, until the operator stops it), or for LINGER_S.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopped.wait(), LINGER_S if args.exit_when_done else None)
    except asyncio.CancelledError:
        log.info("relay %s: stopping", args.relay_id)
    except RelayRefused as exc:
        log.error("relay %s: %s", args.relay_id, exc)
        code = 1
    finally:
        runtime.stopping = True
        await set_serving(health, False)
        await server.stop(1.0)
        await runner.cleanup()
        await channel.close()
    return code


COMMAND = Command("relay", "relay many workers' calls to the aggregator in batches (a relay pod)", add_arguments, main)
register, run = COMMAND.register, COMMAND.run
