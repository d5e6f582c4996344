"""The aggregator's Prometheus metrics (names fixed in docs/contracts.md).

Every series carries only the job's ``esenas_job`` and ``esenas_namespace`` labels (one
value each) and, for rejections, ``reason``: never a per-worker label, so a fleet of
thousands of pods stays a handful of series.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from esenas_aggregator.outcome import REJECT_REASONS, IngestOutcome

if TYPE_CHECKING:
    from esenas.algorithm import ESENAS
    from esenas.results import IterationReport

_DURATION_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
#: The broadcast is tenths of a second to seconds: finer where the 0.80 efficiency goal is decided.
_BROADCAST_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 30)


class Metrics:
    """Owns one registry; the aggregator updates it, ``/metrics`` renders it."""

    def __init__(self, job: str, namespace: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("esenas_job", "esenas_namespace")
        values = (job, namespace)
        r = self.registry

        def gauge(name: str, doc: str) -> Any:
            return Gauge(name, doc, labels, registry=r).labels(*values)

        def counter(name: str, doc: str) -> Any:
            return Counter(name, doc, labels, registry=r).labels(*values)

        self.iteration = gauge("esenas_iteration", "Completed ES iterations.")
        self.reward_best = gauge(
            "esenas_reward_best",
            "Reward of the saved best policy, that policy's own evaluated reward (the targetReward check).",
        )
        self.reward_mean = gauge("esenas_reward_mean", "Mean rollout reward of the last iteration.")
        self.reward_max = gauge("esenas_reward_max", "Max rollout reward of the last iteration.")
        self.reward_eval = gauge("esenas_reward_eval", "Mean reward of the unperturbed policy (exact evals).")
        # Created at the first value, so a controller without a distribution exports no series.
        self._controller_entropy = Gauge(
            "esenas_controller_entropy_nats",
            "Mean entropy per decision of the NAS controller's sampling distribution after the last iteration "
            "(towards 0: settled on a topology; absent for controllers without one).",
            labels, registry=r,
        )
        self._label_values = values
        self.env_steps = counter("esenas_env_steps", "Environment steps run by accepted rollouts.")
        self.rollouts = counter("esenas_rollouts", "Accepted rollouts (episodes).")
        self.results = counter("esenas_results", "Accepted results (work items).")
        self.iteration_duration = Histogram(
            "esenas_iteration_duration_seconds",
            "Wall time of one ES iteration, from ask to tell.",
            labels,
            buckets=_DURATION_BUCKETS,
            registry=r,
        ).labels(*values)
        self.broadcast = Histogram(
            "esenas_iteration_broadcast_seconds",
            "Time from an iteration's start until the last worker it served had its first lease: how long "
            "the fleet waits for each new iteration's work (behind relays, the aggregator's callers are relays).",
            labels,
            buckets=_BROADCAST_BUCKETS,
            registry=r,
        ).labels(*values)
        self.workers_connected = gauge(
            "esenas_workers_connected", "Workers whose results were accepted within the last two item timeouts."
        )
        self.stale = counter("esenas_results_stale", "Results of a past iteration or session, dropped.")
        self.reissued = counter("esenas_results_reissued", "Work items re-issued after their deadline.")
        self.speculative = counter(
            "esenas_items_speculative",
            "Backup copies of outstanding items leased to idle workers at an iteration's tail.",
        )
        self.redundant = counter(
            "esenas_results_redundant",
            "Late results of items another copy already completed (speculation), dropped.",
        )
        self.pairs_dropped = counter(
            "esenas_pairs_dropped",
            "Pairs left out of every update by the straggler policy (es.minPairsFraction < 1): still out when "
            "the iteration after theirs closed.",
        )
        self.pairs_carried = counter(
            "esenas_pairs_carried",
            "Pairs that came in after their iteration closed (es.minPairsFraction < 1) and joined the next "
            "iteration's update, one step stale.",
        )
        self.released = counter(
            "esenas_items_released",
            "Leased items handed back because the worker's call or stream ended before the reply was sent.",
        )
        self.rollouts_failed = counter(
            "esenas_rollouts_failed",
            "Work items a worker reported failed in the environment (it raised or returned a non-finite reward); re-issued.",
        )
        self.probation_refused = counter(
            "esenas_leases_probation_refused",
            "Pulls by unproven worker ids (no result accepted yet) refused because such ids hold their share.",
        )
        self.updates_refused = counter(
            "esenas_updates_refused",
            "ES or controller updates refused because they would leave a non-finite number; the iteration is re-run.",
        )
        self.streams_open = gauge(
            "esenas_exchange_streams_open",
            "Workers' ExchangeStreams open now; workers making Exchange calls instead are not counted.",
        )
        self.fleet_utilization = gauge(
            "esenas_fleet_utilization_ratio",
            "Connected workers whose last request got work, over all connected workers.",
        )
        claims = Counter(
            "esenas_best_claims",
            "New bests the workers' results claimed, by what the aggregator's own replay of them found: "
            "confirmed, corrected (adopted at the replay's lower reward) or unchecked (the replay failed).",
            (*labels, "outcome"),
            registry=r,
        )
        self.best_claims = {o: claims.labels(*values, o) for o in ("confirmed", "corrected", "unchecked")}
        checked = Counter(
            "esenas_failed_items_replayed",
            "Items that two workers reported failed or out of bounds, replayed by the aggregator before it fails "
            "the job: confirmed (the replay went wrong too; the job failed) or dismissed (it ran fine: the reports were false).",
            (*labels, "outcome"),
            registry=r,
        )
        self.failed_items_replayed = {o: checked.labels(*values, o) for o in ("confirmed", "dismissed")}
        rejected = Counter(
            "esenas_results_rejected",
            "Results or requests rejected, by reason; none of them reaches the optimiser.",
            (*labels, "reason"),
            registry=r,
        )
        self.rejected = {reason: rejected.labels(*values, reason) for reason in REJECT_REASONS}
        topology_bytes = Counter(
            "esenas_topology_bytes",
            "Bytes of topologies sent with leased items, by form: decisions, or sample positions (to relays).",
            (*labels, "form"),
            registry=r,
        )
        self.topology_bytes = {form: topology_bytes.labels(*values, form) for form in ("decisions", "positions")}
        self.topology_size = gauge("esenas_topology_size", "Trainable parameters of the best topology.")
        self.topology_dense = gauge("esenas_topology_dense_params", "Parameters of the dense network.")
        self.compression = gauge(
            "esenas_topology_compression_ratio", "1 - trainable/dense parameters of the best topology."
        )
        self.job_done = gauge("esenas_job_done", "1 once the job has met a stopping rule.")
        self.trial = gauge("esenas_trial", "The trial (spec.trials) training, counted from 1; 0 without trials.")

    def set_controller_entropy(self, nats: float) -> None:
        self._controller_entropy.labels(*self._label_values).set(nats)

    def update(self, algo: ESENAS, last: IterationReport | None, done: bool, topology: tuple[float, float, float]) -> None:
        """The gauges after an iteration (or a newly adopted best); ``topology``: size, dense, compression."""
        self.iteration.set(algo.iteration)
        _set_finite(self.reward_best, algo.best_reward)
        if last is not None:
            _set_finite(self.reward_mean, last.reward_mean)
            _set_finite(self.reward_max, last.reward_max)
            _set_finite(self.reward_eval, last.eval_reward)
            if (nats := last.controller_entropy) is not None and math.isfinite(nats):
                self.set_controller_entropy(nats)
        self.topology_size.set(topology[0])
        self.topology_dense.set(topology[1])
        self.compression.set(topology[2])
        self.job_done.set(1 if done else 0)
        self.trial.set(algo.trials.number or 0)

    def count(self, outcome: IngestOutcome) -> None:
        """Account for one pushed batch."""
        if outcome.accepted:
            self.results.inc(outcome.accepted)
            self.env_steps.inc(outcome.steps)
            self.rollouts.inc(outcome.rollouts)
        if outcome.stale:
            self.stale.inc(outcome.stale)
        for reason, n in outcome.rejected.items():
            self.rejected[reason].inc(n)

    def render(self) -> bytes:
        """Prometheus text exposition."""
        return bytes(generate_latest(self.registry))


def _set_finite(gauge: Any, x: float | None) -> None:
    """Gauges stay finite: a value that is not is left out (the gauge keeps its last one)."""
    if x is not None and math.isfinite(x):
        gauge.set(x)
