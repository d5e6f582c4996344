"""What an edit of a running job's spec means: each field has exactly one meaning.

* :data:`LIVE`: the aggregator re-reads the job file at every iteration boundary and takes these
  (:func:`live_update`); the iteration in flight finishes under the old values.
* :data:`OPERATOR`: the operator applies these to the pods it manages (a new worker image rolls
  the workers, a new aggregator image restarts the aggregator from its last checkpoint).
* :data:`CREATED_ONCE`: the checkpoint claim's size and class. The operator creates the claim once,
  as the job starts, and never resizes or replaces it; so once a job ran, it refuses an edit of
  these (a change, setting them, or removing them) and says why (esenas_operator.claims).
* :data:`IMMUTABLE`: the rest. The aggregator's state was built from them, or the workers and the
  aggregator must agree on them (``es.rewardShift``, ``es.observationNormalization``), so neither
  side can take a change. The CRD refuses such edits (a CEL ``self == oldSelf`` rule per path,
  generated from this list); where no API server stands guard (a job file edited under
  ``esenas run``), the aggregator ignores them and says which.

Paths are camelCase, relative to ``spec``. A group names every field in it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Final

from esenas.es_defaults import MLP_ES_DEFAULTS, survival_bonus_cel, top_directions_cel
from esenas.spec import ESSpec, JobSpec

LIVE: Final = (
    "stopping",
    "workers.replicas",  # with es.perturbationsPerWorker, the population follows it
    "es.perturbationsPerWorker",
    "aggregator.checkpoint.everyIterations",
)
OPERATOR: Final = (
    "suspend",
    "ttlSecondsAfterFinished",
    "backoffLimit",
    "workers.shardSize",
    # Each worker reads it as it starts; the aggregator caps a lease at the value it started with,
    # so a lowered batchSize holds once the workers roll, a raised one once the aggregator restarts.
    "workers.batchSize",
    "workers.image",
    "workers.resources",
    "workers.nodeSelector",
    "workers.tolerations",
    "workers.affinity",
    "workers.priorityClassName",
    "aggregator.image",
    "aggregator.resources",
    # Relay pods come and go; the workers roll to dial them (or the aggregator again), and the
    # aggregator restarts from its checkpoint with the lease cap relays need (or without it).
    "relays",
)
CREATED_ONCE: Final = (
    "aggregator.checkpoint.storageSize",
    "aggregator.checkpoint.storageClassName",
)
IMMUTABLE: Final = (
    "seed",
    "environment",
    "policy",
    "controller",
    "objectives",
    "trials",
    "es.sigma",
    "es.stepSize",
    "es.stepSizeEndFraction",
    "es.perturbations",  # and whether the population is given per worker: see ES_MODE_RULE
    "es.topDirections",
    "es.exactEvals",
    "es.fitnessShaping",
    "es.optimizer",
    "es.observationNormalization",
    "es.rewardShift",
    "es.minPairsFraction",  # the aggregator's close rule reads it once, at start
    "workers.itemTimeoutSeconds",
)


def immutable_message(path: str) -> str:
    return f"spec.{path} is immutable: a running job keeps the value it started with; create a new job to change it"


#: The CEL rule on spec.es that keeps a job from switching how it gives its population.
ES_MODE_RULE: Final = (
    "has(self.perturbations) == has(oldSelf.perturbations) && "
    "has(self.perturbationsPerWorker) == has(oldSelf.perturbationsPerWorker)",
    "spec.es: a running job keeps how it gives its population: perturbations, perturbationsPerWorker, "
    f"or neither ({ESSpec.perturbations} for a linear policy, {MLP_ES_DEFAULTS['perturbations']} for an mlp); "
    "only the value of perturbationsPerWorker may change",
)


def _attr(path: str) -> list[str]:
    return [re.sub(r"(?<!^)([A-Z])", r"_\1", p).lower() for p in path.split(".")]


def _get(spec: Any, path: str) -> Any:
    for name in _attr(path):
        spec = getattr(spec, name)
    return spec


def _cel(value: Any) -> str:
    return json.dumps(float(value) if isinstance(value, float) else value)


def _effective(obj: str, key: str) -> str:
    mlp, linear = MLP_ES_DEFAULTS[key], getattr(ESSpec, _attr(key)[0])
    return f"(has({obj}.es.{key}) ? {obj}.es.{key} : ({obj}.policy.template == 'mlp' ? {_cel(mlp)} : {_cel(linear)}))"


def _shift(obj: str) -> str:
    return f"(has({obj}.es.rewardShift) ? {obj}.es.rewardShift : {survival_bonus_cel(obj)})"


def _top(obj: str) -> str:
    return f"(has({obj}.es.topDirections) ? {obj}.es.topDirections : {top_directions_cel(obj)})"


#: Transition rules on spec for the immutable ES fields whose default depends on the template, the
#: task or the population (the CRD has no default for them, so a ``self == oldSelf`` on the field
#: would miss setting or removing it): (fieldPath under spec, rule), comparing the effective values.
DERIVED_DEFAULT_RULES: Final = (
    *((f"es.{key}", f"{_effective('self', key)} == {_effective('oldSelf', key)}") for key in MLP_ES_DEFAULTS if key != "perturbations"),
    ("es.rewardShift", f"{_shift('self')} == {_shift('oldSelf')}"),
    # Unset is a quarter of the pairs on the one-start tasks, following the population (-1 stands for
    # it: no count equals it), and 0 on the others (esenas.es_defaults.top_directions).
    ("es.topDirections", f"{_top('self')} == {_top('oldSelf')}"),
)


def immutable_changes(running: JobSpec, new: JobSpec) -> list[str]:
    """The :data:`IMMUTABLE` paths whose values differ between ``running`` and ``new``."""
    changed = [p for p in IMMUTABLE if p != "es.perturbations" and _get(running, p) != _get(new, p)]
    a, b = running.es, new.es
    per_worker = a.perturbations_per_worker is not None, b.perturbations_per_worker is not None
    if per_worker[0] != per_worker[1] or (not per_worker[0] and a.perturbations != b.perturbations):
        changed.append("es.perturbations")
    return changed


def population_update(running: JobSpec, new: JobSpec) -> JobSpec | None:
    """The running spec with ``new``'s replicas and population, when the job follows its fleet
    (``es.perturbationsPerWorker`` in both) and the population changed; else None."""
    if running.es.perturbations_per_worker is None or new.es.perturbations_per_worker is None:
        return None
    if new.es.perturbations == running.es.perturbations:
        return None
    return dataclasses.replace(
        running,
        es=dataclasses.replace(running.es, perturbations=new.es.perturbations, perturbations_per_worker=new.es.perturbations_per_worker),
        workers=dataclasses.replace(running.workers, replicas=new.workers.replicas),
    )


def live_update(running: JobSpec, new: JobSpec) -> JobSpec | None:
    """``running`` with ``new``'s :data:`LIVE` fields, or None when they are the same already.

    Idempotent: applying the same file again gives None, so a caller may apply the latest file at
    every boundary (after a restart from a checkpoint, the checkpoint's spec takes the file's).
    """
    out = population_update(running, new) or running
    if new.stopping != out.stopping:
        out = dataclasses.replace(out, stopping=new.stopping)
    every = new.aggregator.checkpoint.every_iterations
    if every != out.aggregator.checkpoint.every_iterations:
        checkpoint = dataclasses.replace(out.aggregator.checkpoint, every_iterations=every)
        out = dataclasses.replace(out, aggregator=dataclasses.replace(out.aggregator, checkpoint=checkpoint))
    return None if out == running else out
