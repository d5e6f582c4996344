"""Everything the operator reads from its flags and its environment, in one frozen value.

main.py reads it once at start (:func:`read`) and hands it to kopf as ``memo.settings``; nothing
else reads the environment, and nothing writes it. docs/contracts.md lists every flag and variable.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from esenas_operator.monitoring import JobMonitoring
from esenas_operator.netpol import HttpAccess

DEFAULT_URL_TEMPLATE: Final = "http://{name}-aggregator.{namespace}.svc:9090"


@dataclass(frozen=True)
class Settings:
    """The operator's settings; the defaults are those of an operator started with no flag and no variable."""

    # Job defaults a job may override (the chart's jobImages.* and jobServiceMonitor.* values).
    aggregator_image: str = "ghcr.io/esenas-fleet/aggregator:0.1.0"
    worker_image: str = "ghcr.io/esenas-fleet/worker:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    url_template: str = DEFAULT_URL_TEMPLATE
    job_monitoring: JobMonitoring = field(default_factory=JobMonitoring)
    #: Who may reach each job's HTTP port (the chart's jobNetworkPolicy.httpFrom): every pod by default.
    http_access: HttpAccess = field(default_factory=HttpAccess)
    # The process: what it watches, its endpoints, its status timer and its threads.
    namespaces: tuple[str, ...] = ()
    peering: str | None = None
    metrics_port: int = 8080
    liveness_port: int = 8081
    bind: str = "0.0.0.0"
    status_interval: float = 10.0
    workers: int = 8
    #: The Events' reportingInstance: the pod's name (HOSTNAME), else the manager's.
    instance: str = "esenas-operator"
    verbose: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """The settings only the environment gives (no flag); every other field keeps its default."""
        d = cls()
        return cls(
            aggregator_image=env.get("ESENAS_AGGREGATOR_IMAGE", d.aggregator_image),
            worker_image=env.get("ESENAS_WORKER_IMAGE", d.worker_image),
            image_pull_policy=env.get("ESENAS_IMAGE_PULL_POLICY", d.image_pull_policy),
            url_template=env.get("ESENAS_AGGREGATOR_URL_TEMPLATE", d.url_template),
            job_monitoring=JobMonitoring.from_env(env),
            http_access=HttpAccess.from_env(env),
            workers=int(env.get("ESENAS_OPERATOR_WORKERS", str(d.workers))),
            instance=env.get("HOSTNAME", d.instance),
        )

    def aggregator_url(self, job: str, namespace: str) -> str:
        return self.url_template.format(name=job, namespace=namespace)

    @property
    def liveness_endpoint(self) -> str | None:
        return f"http://{self.bind}:{self.liveness_port}/healthz" if self.liveness_port else None


def parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """The `esenas-operator` flags; those with a value fall back to a variable of ``env``, then to the default."""
    d = Settings()
    p = argparse.ArgumentParser(prog="esenas-operator", description="Runs the ESENASJob operator (kopf).")
    p.add_argument("-n", "--namespace", action="append", default=[], help="namespace to serve (repeatable); all namespaces when omitted")
    peering = p.add_mutually_exclusive_group()
    peering.add_argument("--standalone", action="store_true", help="no peering: the one replica the chart runs (the default)")
    peering.add_argument("--peering", default=None, help="kopf peering object name, to run several replicas safely")
    p.add_argument("--metrics-port", type=int, default=int(env.get("ESENAS_OPERATOR_METRICS_PORT", d.metrics_port)), help="Prometheus /metrics port (0: off)")
    p.add_argument("--liveness-port", type=int, default=int(env.get("ESENAS_OPERATOR_LIVENESS_PORT", d.liveness_port)), help="/healthz port (0: off)")
    p.add_argument("--bind", default=env.get("ESENAS_OPERATOR_BIND", d.bind), help="address of the metrics and liveness endpoints")
    p.add_argument("--status-interval", type=float, default=float(env.get("ESENAS_STATUS_INTERVAL", d.status_interval)), help="seconds between status reads of each job's aggregator")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def read(argv: Sequence[str] | None, env: Mapping[str, str]) -> Settings:
    """The settings of ``argv`` (sys.argv when None) and ``env``; a bad value exits with a usage error naming it."""
    p = parser(env)
    args = p.parse_args(argv)
    try:
        base = Settings.from_env(env)
    except ValueError as exc:  # a bad variable stops the operator at start, not every reconcile later
        p.error(str(exc))
    return dataclasses.replace(
        base,
        namespaces=tuple(args.namespace),
        peering=args.peering,
        metrics_port=args.metrics_port,
        liveness_port=args.liveness_port,
        bind=args.bind,
        status_interval=args.status_interval,
        verbose=args.verbose,
    )
