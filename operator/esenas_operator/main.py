"""`esenas-operator`: runs the kopf operator with the project's handlers, metrics and liveness probe.

One replica (strategy Recreate) is the supported deployment, so kopf runs standalone unless a
peering name is given. The process keeps running through handler errors; it only exits on a signal.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Sequence

log = logging.getLogger("esenas_operator")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="esenas-operator", description=__doc__)
    p.add_argument("-n", "--namespace", action="append", default=[], help="namespace to serve (repeatable); all namespaces when omitted")
    p.add_argument("--standalone", action="store_true", help="no peering (the default unless --peering is given)")
    p.add_argument("--peering", default=None, help="kopf peering object name, to run several replicas safely")
    p.add_argument("--metrics-port", type=int, default=int(os.environ.get("ESENAS_OPERATOR_METRICS_PORT", "8080")), help="Prometheus /metrics port (0: off)")
    p.add_argument("--liveness-port", type=int, default=int(os.environ.get("ESENAS_OPERATOR_LIVENESS_PORT", "8081")), help="/healthz port (0: off)")
    p.add_argument("--bind", default=os.environ.get("ESENAS_OPERATOR_BIND", "0.0.0.0"), help="address of the metrics and liveness endpoints")
    p.add_argument("--status-interval", type=float, default=float(os.environ.get("ESENAS_STATUS_INTERVAL", "10")), help="seconds between status reads of each job's aggregator")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # The handlers module reads these when it is imported (decorator arguments).
    os.environ["ESENAS_OPERATOR_METRICS_PORT"] = str(args.metrics_port)
    os.environ["ESENAS_STATUS_INTERVAL"] = str(args.status_interval)
    import kopf

    import esenas_operator.handlers  # noqa: F401 - registers the handlers

    kopf.configure(verbose=args.verbose)
    liveness = f"http://{args.bind}:{args.liveness_port}/healthz" if args.liveness_port else None
    while True:
        try:
            kopf.run(
                standalone=args.peering is None,
                peering_name=args.peering,
                namespaces=args.namespace,
                clusterwide=not args.namespace,
                liveness_endpoint=liveness,
            )
            return  # a signal stopped it
        except Exception:
            # Never exit on an error: a crash-looping operator helps nobody; log and start again.
            log.exception("the operator stopped with an error; restarting in 5 s")
            time.sleep(5)


if __name__ == "__main__":
    main()
