"""A job that follows its fleet: the population tracks ``spec.workers.replicas`` between iterations.

With ``es.perturbationsPerWorker``, ``kubectl scale`` rewrites the spec ConfigMap and the kubelet
refreshes the aggregator's mounted copy; at each iteration boundary the aggregator re-reads the
file and takes the new population. Only the population and the replicas change live.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from esenas.spec import JobSpec, SpecError, load_job

log = logging.getLogger(__name__)


def population_update(running: JobSpec, new: JobSpec) -> JobSpec | None:
    """The running spec with ``new``'s replicas and population, when the job follows its fleet
    (``es.perturbationsPerWorker`` in both) and the population changed; else None. Nothing
    else of a running job changes here: other edits take effect when the aggregator restarts."""
    if running.es.perturbations_per_worker is None or new.es.perturbations_per_worker is None:
        return None
    if new.es.perturbations == running.es.perturbations:
        return None
    return dataclasses.replace(
        running,
        es=dataclasses.replace(running.es, perturbations=new.es.perturbations, perturbations_per_worker=new.es.perturbations_per_worker),
        workers=dataclasses.replace(running.workers, replicas=new.workers.replicas),
    )


class FleetFollower:
    """Re-reads the job file when it changed and returns the running spec with a new population."""

    def __init__(self, job_file: Path | None) -> None:
        self.job_file = job_file
        self._text = ""  # compared at the first boundary too: a restart may follow a scale

    def poll(self, running: JobSpec, iteration: int) -> JobSpec | None:
        """The spec to run from this iteration on, or None to keep ``running``."""
        if self.job_file is None:
            return None
        try:
            text = self.job_file.read_text()
        except OSError:
            return None
        if text == self._text:
            return None
        self._text = text
        try:
            new = load_job(self.job_file).spec
        except (SpecError, ValueError) as exc:
            log.warning("job file %s changed but does not parse; keeping the running spec: %s", self.job_file, exc)
            return None
        spec = population_update(running, new)
        if spec is not None:
            log.info(
                "fleet scaled to %d replicas: %d perturbation pairs per iteration from iteration %d",
                spec.workers.replicas, spec.es.perturbations, iteration,
            )
        return spec
