"""``esenas-worker`` (the pod's entry point) and ``esenas worker``: flags, each also read from an
environment variable, and process setup.

The CLI package is not needed: ``esenas-worker`` and ``python -m esenas_worker`` run :func:`run`,
and where the ``esenas`` command is installed it finds :func:`register` through the
``esenas.commands`` entry point this package declares.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from esenas.entrypoint import Command, exit_with_reason, report_missing, setup_logging
from esenas.envload import EnvironmentUnavailable, tidy_gymnasium_warnings
from esenas.spec import SpecError, load_job
from esenas_api.tls import read_pem
from esenas_api.wire import read_token

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``esenas-worker`` (docs/contracts.md)."""
    env = os.environ.get
    p.add_argument("--job", default=env("ESENAS_JOB_FILE"), help="ESENASJob YAML [ESENAS_JOB_FILE]")
    p.add_argument("--aggregator", default=env("ESENAS_AGGREGATOR"), help="host:port of the aggregator [ESENAS_AGGREGATOR]")
    p.add_argument("--token-file", default=env("ESENAS_TOKEN_FILE"), help="file holding the job token [ESENAS_TOKEN_FILE]")
    p.add_argument(
        "--tls-ca-file",
        default=env("ESENAS_TLS_CA_FILE"),
        help="PEM CA certificate: dial the aggregator over TLS and trust only this CA (default: plaintext) [ESENAS_TLS_CA_FILE]",
    )
    p.add_argument("--worker-id", default=None, help="id for the aggregator's bookkeeping (default: hostname-pid)")
    p.add_argument("--batch-size", type=int, default=None, help="items per request (default: spec.workers.batchSize)")
    p.add_argument(
        "--give-up-after",
        type=float,
        default=None,
        help="exit 3 after the aggregator was unreachable this many seconds (default: retry forever)",
    )
    p.add_argument("--log-level", default=env("ESENAS_LOG_LEVEL", "INFO"))


def main(args: argparse.Namespace) -> int:
    """Run one worker until the job is done or SIGTERM; returns the exit code."""
    setup_logging(args.log_level)
    tidy_gymnasium_warnings()
    if report_missing("worker", (("--job", args.job), ("--aggregator", args.aggregator), ("--token-file", args.token_file))):
        return 2
    try:
        job = load_job(args.job)
        token = read_token(args.token_file)
        ca = read_pem(args.tls_ca_file, "--tls-ca-file") if args.tls_ca_file else None
    except (SpecError, ValueError) as exc:
        print(f"esenas worker: {exc}", file=sys.stderr)
        return 2
    from esenas_worker.worker import Worker  # grpc and MuJoCo: not needed for `esenas --help`

    worker = Worker(job, args.aggregator, token, args.worker_id, args.batch_size, args.give_up_after, tls_ca=ca)
    worker.install_signal_handlers()
    try:
        return worker.run()
    except EnvironmentUnavailable as exc:  # the aggregator's own line (esenas.envload)
        log.error("the environment cannot be built", exc_info=exc.__cause__ or exc)
        return exit_with_reason(str(exc))


COMMAND = Command("worker", "run rollouts for an aggregator (the worker pod)", add_arguments, main)
#: The ``esenas.commands`` entry point (``esenas worker``) and the ``esenas-worker`` program.
register, run = COMMAND.register, COMMAND.run
