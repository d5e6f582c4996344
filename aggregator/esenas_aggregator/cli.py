"""``esenas-aggregator`` (the pod's entry point) and ``esenas aggregator``: flags, each also read from an
environment variable, and process setup.

The CLI package is not needed: ``esenas-aggregator`` and ``python -m esenas_aggregator`` run :func:`run`,
and where the ``esenas`` command is installed it finds :func:`register` through the
``esenas.commands`` entry point this package declares.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from esenas.entrypoint import Command, exit_with_reason, report_missing, setup_logging
from esenas.envload import EnvironmentUnavailable, tidy_gymnasium_warnings
from esenas.spec import SpecError, load_job
from esenas_api.tls import read_pem
from esenas_api.wire import read_token

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``esenas-aggregator`` (docs/contracts.md)."""
    env = os.environ.get
    p.add_argument("--job", default=env("ESENAS_JOB_FILE"), help="ESENASJob YAML [ESENAS_JOB_FILE]")
    p.add_argument(
        "--checkpoint-dir",
        default=env("ESENAS_CHECKPOINT_DIR"),
        help="folder for checkpoints and the result; restarting on it resumes [ESENAS_CHECKPOINT_DIR]",
    )
    p.add_argument("--token-file", default=env("ESENAS_TOKEN_FILE"), help="file holding the job token [ESENAS_TOKEN_FILE]")
    p.add_argument(
        "--tls-cert-file",
        default=env("ESENAS_TLS_CERT_FILE"),
        help="PEM certificate to serve gRPC over TLS, with --tls-key-file; without both, plaintext [ESENAS_TLS_CERT_FILE]",
    )
    p.add_argument("--tls-key-file", default=env("ESENAS_TLS_KEY_FILE"), help="PEM private key of --tls-cert-file [ESENAS_TLS_KEY_FILE]")
    p.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=int(env("ESENAS_GRPC_PORT", "50051")), help="gRPC port; 0 picks one [ESENAS_GRPC_PORT]")
    p.add_argument("--http-port", type=int, default=int(env("ESENAS_HTTP_PORT", "9090")), help="HTTP port; 0 picks one [ESENAS_HTTP_PORT]")
    p.add_argument(
        "--max-lease-items",
        type=int,
        default=int(env("ESENAS_MAX_LEASE_ITEMS", "0")),
        help="most items one lease holds (default: the job's workers.batchSize); raise it for relays [ESENAS_MAX_LEASE_ITEMS]",
    )
    p.add_argument("--ports-file", default=None, help="write the bound ports here as JSON")
    p.add_argument("--exit-when-done", action="store_true", help="exit once the job is done (local runs)")
    p.add_argument("--log-level", default=env("ESENAS_LOG_LEVEL", "INFO"))


def main(args: argparse.Namespace) -> int:
    """Run the aggregator until done (with --exit-when-done) or SIGTERM; returns the exit code."""
    setup_logging(args.log_level)
    tidy_gymnasium_warnings()
    if report_missing("aggregator", (("--job", args.job), ("--checkpoint-dir", args.checkpoint_dir), ("--token-file", args.token_file))):
        return 2
    # Imported here, not at module level: `esenas` builds every subcommand's parser at start-up,
    # and the worker image must not need the aggregator's HTTP stack (aiohttp) for that.
    from esenas_aggregator.app import Aggregator, AggregatorConfig, prepare

    try:
        job = load_job(args.job)
        token = read_token(args.token_file)
        tls = tls_pair(args.tls_cert_file, args.tls_key_file)
        if args.max_lease_items < 0:
            raise ValueError(f"--max-lease-items: must be >= 0 (0: the job's workers.batchSize), got {args.max_lease_items}")
        obs_dim, act_dim = prepare(job)
    except EnvironmentUnavailable as exc:
        # The traceback (the user's module or constructor) for `kubectl logs`; then the one line
        # that the termination message, the job's Failed condition and `esenas run` all say.
        log.error("the environment cannot be built", exc_info=exc.__cause__ or exc)
        return exit_with_reason(str(exc))
    except (SpecError, ValueError) as exc:
        print(f"esenas aggregator: {exc}", file=sys.stderr)
        return 2
    cfg = AggregatorConfig(
        job=job,
        checkpoint_dir=Path(args.checkpoint_dir),
        token=token,
        host=args.host,
        grpc_port=args.port,
        http_port=args.http_port,
        ports_file=Path(args.ports_file) if args.ports_file else None,
        exit_when_done=args.exit_when_done,
        job_file=Path(args.job),
        tls=tls,
        max_lease_items=args.max_lease_items,
    )

    async def go() -> int:
        return await Aggregator(cfg, obs_dim, act_dim).run()

    return asyncio.run(go())


def tls_pair(cert_file: str | None, key_file: str | None) -> tuple[bytes, bytes] | None:
    """(certificate, key) PEM bytes, or None for plaintext; both flags or neither."""
    if bool(cert_file) != bool(key_file):
        raise ValueError("--tls-cert-file and --tls-key-file go together: give both, or neither for plaintext")
    if not cert_file or not key_file:
        return None
    return read_pem(cert_file, "--tls-cert-file"), read_pem(key_file, "--tls-key-file")


COMMAND = Command("aggregator", "serve one job's work queue over gRPC (the aggregator pod)", add_arguments, main)
#: The ``esenas.commands`` entry point (``esenas aggregator``) and the ``esenas-aggregator`` program.
register, run = COMMAND.register, COMMAND.run
