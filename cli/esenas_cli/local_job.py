"""The job a local run trains: with ``es.perturbationsPerWorker`` the local processes are the fleet.

On a cluster the population is ``perturbationsPerWorker x spec.workers.replicas``. Locally the
fleet is ``--workers N``, so the run trains the file with ``workers.replicas`` set to N. The
aggregator and the workers read the job from a file, so that job is written into the run folder
(``job-resolved.yaml``) and they are given it instead of the user's file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import yaml
from esenas.safe_yaml import load_yaml_file
from esenas.spec import Job, load_job

RESOLVED_JOB: Final = "job-resolved.yaml"


def follow_local_workers(source: Path, job: Job, workers: int, out: Path) -> tuple[Path, Job]:
    """(job file, job) to train with ``workers`` local processes; the user's own when the population is fixed.

    Raises SpecError when N workers break a bound, e.g. ``perturbationsPerWorker x N`` over the maximum.
    """
    if job.spec.es.perturbations_per_worker is None:
        return source, job
    doc = load_yaml_file(source)[0]  # load_job read this same file: one document, no aliases
    spec = doc.setdefault("spec", {})
    spec["workers"] = {**(spec.get("workers") or {}), "replicas": workers}
    out.mkdir(parents=True, exist_ok=True)
    resolved = out / RESOLVED_JOB
    resolved.write_text(
        f"# {source} with spec.workers.replicas = {workers} local worker processes, written by esenas run.\n"
        + yaml.safe_dump(doc, sort_keys=False)
    )
    return resolved, load_job(resolved)
