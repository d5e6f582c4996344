"""How the operator's per-job ServiceMonitor looks: on or off, its extra labels and scrape interval.

The chart sets these from `jobServiceMonitor.*` (helm/esenas/templates/deployment.yaml). Labels
matter most: kube-prometheus-stack's Prometheus selects ServiceMonitors by its `release` label, so
without it no job metric is scraped. A bad value stops the operator at start, naming the variable,
rather than failing every reconcile later (esenas_operator.settings reads them, once).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

ENABLED_ENV: Final = "ESENAS_JOB_SERVICEMONITOR_ENABLED"
LABELS_ENV: Final = "ESENAS_JOB_SERVICEMONITOR_LABELS"
INTERVAL_ENV: Final = "ESENAS_JOB_SERVICEMONITOR_INTERVAL"
DEFAULT_INTERVAL: Final = "15s"

# prometheus-operator's Duration pattern (monitoring.coreos.com/v1 Endpoint.interval), minus the empty string.
_DURATION: Final = re.compile(r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$")
# A Kubernetes label key (optional DNS-subdomain prefix, then a name) and value.
_LABEL_NAME: Final = r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)"
LABEL_KEY: Final = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}$")
LABEL_VALUE: Final = re.compile(rf"^({_LABEL_NAME})?$")
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class JobMonitoring:
    """Settings of the ServiceMonitor the operator makes for each job's aggregator."""

    enabled: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)
    interval: str = DEFAULT_INTERVAL

    def __post_init__(self) -> None:
        if not _DURATION.match(self.interval) or self.interval == "0":
            raise ValueError(f"{INTERVAL_ENV}: {self.interval!r} is not a scrape interval like 15s or 1m")
        for key, value in self.labels.items():
            if not isinstance(key, str) or not LABEL_KEY.match(key):
                raise ValueError(f"{LABELS_ENV}: {key!r} is not a Kubernetes label key")
            if not isinstance(value, str) or not LABEL_VALUE.match(value):
                raise ValueError(f"{LABELS_ENV}: the value of {key!r}, {value!r}, is not a Kubernetes label value")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> JobMonitoring:
        """Reads the three variables; unset ones keep the defaults (on, no extra labels, 15s)."""
        e = env
        enabled = e.get(ENABLED_ENV, "true").strip().lower()
        if enabled not in _TRUE | _FALSE:
            raise ValueError(f"{ENABLED_ENV}: {enabled!r} is neither true nor false")
        raw = e.get(LABELS_ENV, "").strip() or "{}"
        try:
            labels = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{LABELS_ENV}: not JSON ({exc.msg}): {raw[:80]!r}") from None
        if not isinstance(labels, dict):
            raise ValueError(f"{LABELS_ENV}: must be a JSON object of label names to values, got {raw[:80]!r}")
        return cls(enabled=enabled in _TRUE, labels=labels, interval=e.get(INTERVAL_ENV, "").strip() or DEFAULT_INTERVAL)
