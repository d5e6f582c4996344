"""The handlers' decisions, as pure functions of the job's status, its spec and what was observed.

Whether a job is done, failed or due for a result (complete or partial), whether its fleet stops and
which Deployments, whether the aggregator is read, what its status says after a reconcile or a
refused edit: all decided here, with an explicit ``now``, so each rule is unit-tested without HTTP.
The handlers (esenas_operator.handlers) fetch, call these, and write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from esenas.spec import Job

from esenas_operator import names
from esenas_operator.lifecycle import lifecycle
from esenas_operator.reasons import CREATED, INVALID_SPEC, RUNNING, SUSPENDED, success_reason
from esenas_operator.status import (
    FLEET_OVERSIZED,
    TERMINAL,
    AggregatorReport,
    Obj,
    condition,
    failure,
    fleet_fit,
    parse_time,
    progress_status,
    set_condition,
    timestamp,
    workers_status,
)
from esenas_operator.terms import Terms

#: A refused edit: (its generation, the message that says why).
Refusal = tuple[int, str]
#: Which result a finishing job stores: the final one, or a failed job's best so far.
ResultDue = Literal["complete", "partial"]


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the job."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Workload:
    """What the status needs from one of the job's Deployments (the handlers' index holds these)."""

    name: str
    component: str
    replicas: int
    ready: int
    #: The aggregator's record of its checkpoint volume (esenas_operator.claims), when it has one.
    checkpoint: str | None = None
    #: The aggregator's record of the applied spec's terms (esenas_operator.terms), when it has one.
    terms: str | None = None
    #: The Deployment's ReplicaFailure condition: it cannot create pods (esenas_operator.starting).
    stall: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class Fleet:
    """A job's Deployments: its worker shards and its aggregator."""

    workers: tuple[Workload, ...]
    aggregator: Workload | None
    deployments: tuple[Workload, ...]

    @classmethod
    def of(cls, entries: Iterable[Workload]) -> Fleet:
        every = tuple(entries)
        workers = tuple(w for w in every if w.component == "worker")
        return cls(workers, next((w for w in every if w.component == "aggregator"), None), every)

    @property
    def ready(self) -> int:
        return sum(w.ready for w in self.workers)

    @property
    def shards(self) -> int:
        return len(self.workers)

    @property
    def workers_unready(self) -> bool:
        """Some worker should run but is not ready: only then are worker pods listed for failures."""
        return any(w.replicas > 0 and w.ready < w.replicas for w in self.workers)

    @property
    def aggregator_unready(self) -> bool:
        """The aggregator should run but is not ready: only then are its pods listed for restarts."""
        a = self.aggregator
        return a is not None and a.replicas > 0 and a.ready < a.replicas

    def to_stop(self) -> list[str]:
        """The Deployments still scaled up, which a finishing job scales to 0."""
        return [w.name for w in self.deployments if w.replicas > 0]


def reads_report(terms: Terms) -> bool:
    """Whether a status tick reads the aggregator: not while suspended (it is scaled to 0)."""
    return not terms.suspend


def edit_refused(status: Mapping[str, Any]) -> bool:
    """Whether the job's last spec edit was refused (its fleet runs an older, valid spec)."""
    cond = condition(status, "Reconciled")
    return cond is not None and cond.get("status") == "False" and cond.get("reason") == INVALID_SPEC


def ran(status: Mapping[str, Any]) -> bool:
    """Whether the job's children were ever applied from a valid spec."""
    cond = condition(status, "Created")
    return cond is not None and cond.get("status") == "True"


def invalid_status(status: Mapping[str, Any], gen: int, message: str, now: dt.datetime) -> Obj:
    """The status of a job failed for its spec: phase Failed, Failed=True InvalidSpec, and a
    completionTime (the first failure's: ttlSecondsAfterFinished counts from it)."""
    return {
        "phase": "Failed",
        "reason": INVALID_SPEC,
        "message": message,
        "observedGeneration": gen,
        "completionTime": status.get("completionTime") or timestamp(now),
        "conditions": lifecycle(status.get("conditions"), "Failed", INVALID_SPEC, message, gen, now),
    }


def refusal(gen: int, message: str) -> Refusal:
    """The refusal of the edit of generation ``gen``, with the message the status and Event carry."""
    return gen, f"the edit of generation {gen} was refused, the fleet keeps the last valid spec: {message}"


def refused_status(status: Mapping[str, Any], refused: Refusal, now: dt.datetime) -> Obj:
    """The status of a refused edit: Reconciled=False (InvalidSpec) and status.reason say why; the
    phase and observedGeneration stay at the spec that runs."""
    gen, text = refused
    return {
        "reason": INVALID_SPEC,
        "message": text,
        "conditions": set_condition(status.get("conditions"), "Reconciled", False, INVALID_SPEC, text[:4000], gen, now),
    }


@dataclass(frozen=True)
class Reconciled:
    """The status after the children were applied, and the FleetOversized Warning to post, if any."""

    phase: str
    desired: Obj
    warning: Event | None


def reconciled(current: Mapping[str, Any], job: Job, shards: int, gen: int, now: dt.datetime) -> Reconciled:
    """The status once every child of ``job`` is applied in ``shards`` worker shards."""
    phase = current.get("phase")
    suspended = job.spec.suspend
    new_phase = "Suspended" if suspended else ("Running" if phase == "Running" else "Pending")
    reason = SUSPENDED if suspended else (RUNNING if new_phase == "Running" else CREATED)
    message = f"{job.spec.workers.replicas} workers in {shards} shard(s)"
    conditions = lifecycle(current.get("conditions"), new_phase, reason, message, gen, now, created=message)
    if condition(current, "Reconciled") is not None:
        conditions = set_condition(conditions, "Reconciled", True, "Reconciled", "every child is applied", gen, now)
    if suspended or condition(current, "Suspended"):
        why = "spec.suspend is true" if suspended else "spec.suspend is false"
        conditions = set_condition(conditions, "Suspended", suspended, "Suspended" if suspended else "Resumed", why, gen, now)
    # Replicas beyond the work items of one iteration are idle pods; kubectl scale lands here too.
    es = job.spec.es
    fit = fleet_fit(job.spec.workers.replicas, es.perturbations, es.exact_evals, es.perturbations_per_worker)
    fleet_before = condition(current, FLEET_OVERSIZED)
    if fit.recorded(fleet_before):
        conditions = set_condition(conditions, FLEET_OVERSIZED, fit.oversized, fit.reason, fit.message, gen, now)
    desired: Obj = {
        "phase": new_phase,
        "observedGeneration": gen,
        "selector": names.worker_selector_string(job.name),
        "workers": {"desired": 0 if suspended else job.spec.workers.replicas, "shards": shards},
        "reason": reason,
        "message": message,
        "conditions": conditions,
    }
    if not suspended and not current.get("startTime"):
        desired["startTime"] = timestamp(now)
    if phase in TERMINAL:  # a job failed for its spec, fixed: it has not finished after all
        desired["completionTime"] = None
    warning = Event("Warning", fit.reason, fit.message) if fit.warns(fleet_before) else None
    return Reconciled(new_phase, desired, warning)


def observed(terms: Terms, ready: int, connected: int | None, shards: int, restarts: int, report: AggregatorReport | None) -> Obj:
    """The status fields that mirror the fleet and the aggregator's report."""
    desired: Obj = {
        "workers": workers_status(terms.replicas, ready, connected, shards, stopped=terms.suspend),
        "aggregatorRestarts": restarts,
    }
    if report is not None:
        desired.update(progress_status(report))
    return desired


@dataclass(frozen=True)
class Outcome:
    """What one status tick does to the job's phase: None keeps it (no report yet)."""

    phase: str | None
    reason: str = ""
    message: str = ""
    event: Event | None = None
    #: The result to store before the fleet stops: the final one when it succeeds, the best so far
    #: when it fails while the aggregator still answers (docs/results.md); None stores nothing.
    result: ResultDue | None = None

    @property
    def finishes(self) -> bool:
        """The job ends: its fleet stops (after its result, if any, is stored)."""
        return self.phase in TERMINAL


def outcome(terms: Terms, current: Mapping[str, Any], report: AggregatorReport | None, restarts: int,
            last_message: str, now: dt.datetime, stuck: tuple[str, str] | None = None) -> Outcome:
    """Whether the job is suspended, failed, succeeded or running, by its spec's terms, status and
    report; ``stuck``: (reason, message) of an aggregator that cannot start (esenas_operator.starting)."""
    if terms.suspend:
        return Outcome("Suspended")
    start = parse_time(current.get("startTime"))
    failed = failure(terms.backoff_limit, restarts, terms.deadline_seconds, start, now, report, last_message) or stuck
    if failed is not None:
        reason, message = failed
        return Outcome("Failed", reason, message, Event("Warning", reason, message[:1000]),
                       result="partial" if report is not None else None)
    if report is None:
        return Outcome(None)
    if report.done or report.phase == "Succeeded":
        message = f"{report.reason or 'done'}: best reward {report.best_reward}, {report.topology_size} parameters"
        reason = success_reason(report.reason)
        return Outcome("Succeeded", reason, message, Event("Normal", "Succeeded", f"{reason}: {message}"), result="complete")
    message = "the aggregator is serving"
    event = None if current.get("phase") == "Running" else Event("Normal", "Running", message)
    return Outcome("Running", RUNNING, message, event)


def transition(current: Mapping[str, Any], out: Outcome, gen: int, now: dt.datetime, connected: int | None, shards: int) -> Obj:
    """The status fields the outcome changes."""
    if out.phase is None:
        return {}
    if out.phase == "Suspended":
        return {"phase": "Suspended"}
    conditions = lifecycle(current.get("conditions"), out.phase, out.reason, out.message, gen, now)
    if out.phase == "Running":
        running: Obj = {"phase": "Running"}
        if not edit_refused(current):  # else status.reason keeps saying the edit was refused
            running.update(reason=out.reason, message=out.message)
        running["conditions"] = conditions
        return running
    return {
        "phase": out.phase,
        "reason": out.reason,
        "message": out.message,
        "completionTime": timestamp(now),
        "workers": workers_status(0, 0, connected, shards, stopped=True),
        "conditions": conditions,
    }


def with_refusal(desired: Obj, current: Mapping[str, Any], refused: Refusal | None, now: dt.datetime) -> Obj:
    """``desired`` re-asserting a refused edit: a status merge patch computed from a status read
    before the refusal was written would otherwise drop it (kopf runs timers beside change handlers)."""
    if refused is None:
        return desired
    edit, text = refused
    out = dict(desired)
    conditions = out.get("conditions", current.get("conditions"))
    out["conditions"] = set_condition(conditions, "Reconciled", False, INVALID_SPEC, text[:4000], edit, now)
    if out.get("phase", current.get("phase")) not in TERMINAL:
        out.update(reason=INVALID_SPEC, message=text)
    return out


def worker_health(desired: Obj, current: Mapping[str, Any], failing: tuple[str, str] | None, gen: int, now: dt.datetime) -> tuple[Obj, Event | None]:
    """``desired`` with the WorkersFailing condition: True (reason: the pods' waiting reason) while
    worker pods cannot run, False once none is failing; absent on a job whose workers never failed.
    A Warning Event is posted when it turns True. While it is True, status.reason (kubectl get's
    Reason column) says WorkersFailing too, where it would only say Created or Running."""
    was = condition(current, WORKERS_FAILING)
    conditions = desired.get("conditions", current.get("conditions"))
    phase, shown = desired.get("phase", current.get("phase")), desired.get("reason", current.get("reason"))
    if failing is None:
        if was is None or was.get("status") == "False":
            return desired, None
        healed = {**desired, "conditions": set_condition(conditions, WORKERS_FAILING, False, "WorkersRunning", "no listed worker pod is failing", gen, now)}
        if shown == WORKERS_FAILING:
            healed.update(reason=_plain_reason(phase), message="the worker pods run again")
        return healed, None
    reason, message = failing
    event = None if was is not None and was.get("status") == "True" else Event("Warning", WORKERS_FAILING, message)
    out = {**desired, "conditions": set_condition(conditions, WORKERS_FAILING, True, reason, message, gen, now)}
    if shown in (CREATED, RUNNING, WORKERS_FAILING):
        out.update(reason=WORKERS_FAILING, message=message)
    return out, event


#: The condition type for worker pods that cannot run (docs/operations.md).
WORKERS_FAILING: Final = "WorkersFailing"
def _plain_reason(phase: Any) -> str:
    """The reason a pending or running job shows once nothing more specific applies."""
    return RUNNING if phase == "Running" else CREATED


#: status.reason of a job scaled to zero workers: it trains nothing until scaled up.
NO_WORKERS: Final = "NoWorkers"


def no_workers(desired: Obj, current: Mapping[str, Any], replicas: int, name: str) -> Obj:
    """``desired`` saying, in status.reason (kubectl get's Reason column), that a pending or running
    job scaled to 0 workers trains nothing, where it would only say Created or Running; and going
    back once it is scaled up. Not a Warning: scaling to zero is a choice, as for a Deployment."""
    phase, shown = desired.get("phase", current.get("phase")), desired.get("reason", current.get("reason"))
    if replicas == 0 and phase in ("Pending", "Running") and shown in (CREATED, RUNNING, NO_WORKERS):
        return {**desired, "reason": NO_WORKERS, "message": f"spec.workers.replicas is 0: nothing rolls out until "
                f"kubectl scale esj/{name} --replicas=N (spec.suspend: true also stops the aggregator)"}
    if replicas > 0 and shown == NO_WORKERS:
        return {**desired, "reason": _plain_reason(phase), "message": f"scaled to {replicas} workers"}
    return desired

