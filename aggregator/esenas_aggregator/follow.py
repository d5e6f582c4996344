"""A running job follows the live fields of its spec (:mod:`esenas.edits`) between iterations.

``kubectl edit``/``patch``/``scale`` rewrites the spec ConfigMap and the kubelet refreshes the
aggregator's mounted copy; at each iteration boundary the aggregator re-reads the file and takes
the stopping rules, the checkpoint interval and, with ``es.perturbationsPerWorker``, the population
of a scaled fleet. Every other field stays as the job started: the CRD refuses edits to the
immutable ones, and where nothing refuses them (a local job file) they are ignored with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path

from esenas.edits import immutable_changes, live_update, population_update
from esenas.spec import JobSpec, SpecError, load_job

__all__ = ["FleetFollower", "population_update"]

log = logging.getLogger(__name__)


class FleetFollower:
    """Re-reads the job file when it changed and gives the running spec with its live fields."""

    def __init__(self, job_file: Path | None) -> None:
        self.job_file = job_file
        self._text = ""  # compared at the first boundary too: a restart may follow an edit
        self._latest: JobSpec | None = None

    def poll(self, running: JobSpec, iteration: int) -> JobSpec | None:
        """The spec to run from this iteration on, or None to keep ``running``.

        The latest good file is applied at every boundary, not only when it changes, so a
        running spec restored from a checkpoint (a restart, a refused update) takes it again.
        """
        if self.job_file is None:
            return None
        try:
            text = self.job_file.read_text()
        except OSError:
            text = self._text
        if text != self._text:
            self._text = text
            try:
                self._latest = load_job(self.job_file).spec
            except (SpecError, ValueError) as exc:
                log.warning("job file %s changed but does not parse; keeping the running spec: %s", self.job_file, exc)
            else:
                ignored = immutable_changes(running, self._latest)
                if ignored:
                    log.warning(
                        "job file %s changes fields a running job cannot take; they are ignored: %s",
                        self.job_file, ", ".join(f"spec.{p}" for p in ignored),
                    )
        if self._latest is None:
            return None
        spec = live_update(running, self._latest)
        if spec is not None:
            self._log(running, spec, iteration)
        return spec

    @staticmethod
    def _log(running: JobSpec, spec: JobSpec, iteration: int) -> None:
        if spec.es.perturbations != running.es.perturbations:
            log.info(
                "fleet scaled to %d replicas: %d perturbation pairs per iteration from iteration %d",
                spec.workers.replicas, spec.es.perturbations, iteration,
            )
        if spec.stopping != running.stopping:
            log.info("stopping rules from iteration %d: %s", iteration, spec.stopping)
        if spec.aggregator.checkpoint != running.aggregator.checkpoint:
            log.info("checkpoint every %d iterations", spec.aggregator.checkpoint.every_iterations)
