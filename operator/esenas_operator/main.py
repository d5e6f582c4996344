"""`esenas-operator`: runs the kopf operator with the project's handlers, metrics and liveness probe.

One replica (strategy Recreate) is the supported deployment, so kopf runs standalone (``--standalone``,
the default) unless a peering name is given. The settings are read once, here, from the flags and the
environment, and reach the handlers as kopf's ``memo.settings``. The process keeps running through
handler errors; it only exits on a signal.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Mapping, Sequence

from esenas_operator import settings as operator_settings

log = logging.getLogger("esenas_operator")


def parse_args(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> argparse.Namespace:
    """The flags alone (the chart's tests check it takes every one the chart passes)."""
    return operator_settings.parser(os.environ if env is None else env).parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    settings = operator_settings.read(argv, os.environ)
    import kopf

    from esenas_operator import handlers

    kopf.configure(verbose=settings.verbose)
    registry = handlers.registry(settings)
    while True:
        try:
            kopf.run(
                registry=registry,
                memo=kopf.Memo(settings=settings),
                standalone=settings.peering is None,
                peering_name=settings.peering,
                namespaces=settings.namespaces,
                clusterwide=not settings.namespaces,
                liveness_endpoint=settings.liveness_endpoint,
            )
            return  # a signal stopped it
        except Exception:
            # Never exit on an error: a crash-looping operator helps nobody; log and start again.
            log.exception("the operator stopped with an error; restarting in 5 s")
            time.sleep(5)


if __name__ == "__main__":
    main()
