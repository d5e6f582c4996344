"""Pure status logic: conditions in metav1.Condition form, the aggregator's report, and the diff to patch.

Everything here is a function of documents already read (and an explicit ``now``): no HTTP, no
API server, so it is unit-tested without either. Reading the aggregator is
esenas_operator.aggregator_http; the handlers read inputs and write the returned patch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from esenas_operator.reasons import aggregator_failure_reason

Obj = dict[str, Any]
TERMINAL: Final = ("Succeeded", "Failed")
#: How far past spec.stopping.deadlineSeconds (wall clock from status.startTime) a job whose
#: aggregator answers may run before it Fails: the aggregator's clock starts with its pod, later.
DEADLINE_GRACE_S: Final = 300.0


def timestamp(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def set_condition(
    conditions: Iterable[Mapping[str, Any]] | None,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int,
    now: dt.datetime,
) -> list[Obj]:
    """Conditions with type_ set; lastTransitionTime moves only when the status flips."""
    out: list[Obj] = []
    found = False
    value = "True" if status else "False"
    for c in conditions or ():
        c = dict(c)
        if c.get("type") == type_:
            found = True
            changed = c.get("status") != value
            c.update(status=value, reason=reason, message=message, observedGeneration=generation)
            if changed:
                c["lastTransitionTime"] = timestamp(now)
        out.append(c)
    if not found:
        out.append(
            {
                "type": type_,
                "status": value,
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": timestamp(now),
            }
        )
    return out


def condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for c in status.get("conditions") or ():
        if c.get("type") == type_:
            return dict(c)
    return None


def diff(current: Mapping[str, Any], desired: Mapping[str, Any]) -> Obj:
    """The merge patch that turns current into desired (only the keys of desired are considered)."""
    patch: Obj = {}
    for key, value in desired.items():
        old = current.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            sub = diff(old, value)
            if sub:
                patch[key] = sub
        elif old != value:
            patch[key] = value
    return patch


@dataclass(frozen=True)
class AggregatorReport:
    """GET /status of the aggregator (docs/contracts.md), or None fields when it is unreachable."""

    phase: str
    iteration: int
    env_steps: int
    episodes: int
    best_reward: float | None
    mean_reward: float | None
    workers_connected: int
    topology_size: int
    dense_params: int
    compression: float
    done: bool
    reason: str
    result_path: str
    raw: Mapping[str, Any]
    trial: str = ""  # spec.trials' label ("trial 2/3"), "" without trials

    @classmethod
    def parse(cls, d: Mapping[str, Any]) -> AggregatorReport:
        def num(key: str) -> float | None:
            v = d.get(key)
            return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

        return cls(
            phase=str(d.get("phase", "Running")),
            iteration=int(d.get("iteration") or 0),
            env_steps=int(d.get("envSteps") or 0),
            episodes=int(d.get("episodes") or 0),
            best_reward=num("bestReward"),
            mean_reward=num("meanReward"),
            workers_connected=int(d.get("workersConnected") or 0),
            topology_size=int(d.get("topologySize") or 0),
            dense_params=int(d.get("denseParams") or 0),
            compression=float(d.get("compression") or 0.0),
            done=bool(d.get("done", False)),
            reason=str(d.get("reason") or ""),
            result_path=str(d.get("resultPath") or ""),
            raw=dict(d),
            trial=str(d.get("trial") or "")[:64],
        )


def progress_status(report: AggregatorReport) -> Obj:
    """The counters the aggregator owns, in status form."""
    out: Obj = {
        "iteration": report.iteration,
        "envSteps": report.env_steps,
        "episodes": report.episodes,
        "bestTopology": {
            "size": report.topology_size,
            "denseParams": report.dense_params,
            "compression": round(report.compression, 6),
        },
    }
    if report.best_reward is not None:
        out["bestReward"] = round(report.best_reward, 6)
    if report.mean_reward is not None:
        out["meanReward"] = round(report.mean_reward, 6)
    if report.trial:
        out["trial"] = report.trial
    return out


def workers_status(desired: int, ready: int, connected: int | None, shards: int, stopped: bool = False) -> Obj:
    """Ready/desired workers; a stopped fleet (suspended, finished) counts 0 of 0, whatever the
    Deployments' pods still report while they terminate."""
    if stopped:
        desired = ready = 0
        connected = 0 if connected is not None else None
    out: Obj = {"desired": desired, "ready": ready, "shards": shards, "summary": f"{ready}/{desired}"}
    if connected is not None:
        out["connected"] = connected
    return out


FLEET_OVERSIZED: Final = "FleetOversized"


@dataclass(frozen=True)
class FleetFit:
    """Whether spec.workers.replicas exceeds the work items of one iteration, as the FleetOversized
    condition's fields. A worker leases whole items, so replicas beyond them are idle pods."""

    oversized: bool
    reason: str
    message: str

    def recorded(self, previous: Mapping[str, Any] | None) -> bool:
        """Set the condition when the fleet is oversized, and keep it (False) once it was ever set."""
        return self.oversized or previous is not None

    def warns(self, previous: Mapping[str, Any] | None) -> bool:
        """Post a Warning when the fleet becomes oversized, or its numbers change while it stays so."""
        if not self.oversized or previous is None:
            return self.oversized
        return previous.get("status") != "True" or previous.get("message") != self.message


def fleet_fit(replicas: int, perturbations: int, exact_evals: int, per_worker: int | None = None) -> FleetFit:
    """FleetOversized for a fleet of ``replicas`` against ``perturbations + exact_evals`` items per iteration.

    ``perturbations`` is the effective count; with ``per_worker`` set it already follows replicas.
    """
    items = perturbations + exact_evals
    if per_worker is not None:
        source = f"es.perturbationsPerWorker {per_worker} x {max(1, replicas)} replicas + es.exactEvals {exact_evals}"
    else:
        source = f"es.perturbations {perturbations} + es.exactEvals {exact_evals}"
    if replicas <= items:
        return FleetFit(False, "FleetFitsWork", f"spec.workers.replicas {replicas} <= {items} work items per iteration ({source})")
    return FleetFit(
        True,
        "FleetExceedsWork",
        f"spec.workers.replicas {replicas} exceeds the {items} work items per iteration ({source}): "
        f"{replicas - items} worker pods stay idle. Set spec.es.perturbationsPerWorker instead of "
        f"spec.es.perturbations so the population follows the replica count, or scale to at most {items}.",
    )


#: How much of the aggregator's termination message reaches the Failed message (the kubelet
#: keeps at most 4096 bytes; the cause of an import error is in its last lines).
TERMINATION_TAIL: Final = 2048


def termination_message(pods: Iterable[Mapping[str, Any]]) -> str:
    """The last termination message of the aggregator's container (FallbackToLogsOnError puts
    its log tail there), or the reason it waits with (e.g. an image that cannot be pulled)."""
    for pod in pods:
        for c in (pod.get("status") or {}).get("containerStatuses") or ():
            for state in (c.get("lastState") or {}, c.get("state") or {}):
                for key in ("terminated", "waiting"):
                    text = str((state.get(key) or {}).get("message") or "").strip()
                    if text:
                        return text[-TERMINATION_TAIL:]
    return ""


def restart_count(pods: Iterable[Mapping[str, Any]], known: int) -> int:
    """The aggregator's restarts: the most any of its pods reports, and never fewer than ``known``
    (a replaced pod starts again from 0)."""
    counts = [sum(int(c.get("restartCount") or 0) for c in (p.get("status") or {}).get("containerStatuses") or ()) for p in pods]
    return max([known, *counts])


def last_line(text: str) -> str:
    """The last non-blank line of a termination message: a traceback's exception, as Python prints it."""
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")[:512]


def failure(spec_backoff: int, restarts: int, deadline: int | None, start: dt.datetime | None, now: dt.datetime,
            report: AggregatorReport | None, last_message: str = "") -> tuple[str, str] | None:
    """(reason, message) when the job must Fail, else None; a crash loop names its last termination message."""
    if report is not None and report.phase == "Failed":
        return aggregator_failure_reason(report.reason), report.reason or "the aggregator reported Failed"
    if restarts > spec_backoff:
        message = f"the aggregator restarted {restarts} times (spec.backoffLimit {spec_backoff})"
        cause = last_line(last_message)
        if cause and cause != last_message.strip():
            message += f": {cause}"  # first, so that a shortened copy (an Event) still names it
        if last_message:
            message += f"; its last termination message: {last_message}"
        return "AggregatorCrashLoop", message
    if report is not None and (report.done or report.phase == "Succeeded"):
        return None  # it ended on its own, at spec.stopping.deadlineSeconds perhaps: that is a success
    # An aggregator that answers stops itself at the deadline (its own training time, which starts
    # after its pod does); the operator's wall clock fails the job only when it does not.
    grace = DEADLINE_GRACE_S if report is not None else 0.0
    if deadline is not None and start is not None and (now - start).total_seconds() > deadline + grace:
        late = f" by more than {grace:g} s" if grace else ""
        return "DeadlineExceeded", f"the job ran longer than spec.stopping.deadlineSeconds ({deadline} s){late}"
    return None


def ttl_expired(status: Mapping[str, Any], ttl: int | None, now: dt.datetime) -> bool:
    """A finished job whose ttlSecondsAfterFinished has passed."""
    if ttl is None or status.get("phase") not in TERMINAL:
        return False
    done = parse_time(status.get("completionTime"))
    return done is not None and (now - done).total_seconds() >= ttl


#: Container waiting reasons that mean a worker pod cannot run, not a start in progress.
FAILING_WAITS: Final = (
    "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError",
    "CreateContainerError", "RunContainerError",
)


def workers_failing(pods: Iterable[Mapping[str, Any]]) -> tuple[str, str] | None:
    """(reason, message) when some of the listed worker ``pods`` cannot run (a container waiting
    in one of :data:`FAILING_WAITS`), else None. The message names how many, and why: the last
    line of the container's last termination message (a traceback's exception), its termination
    reason (OOMKilled), or the kubelet's waiting message (an image that cannot be pulled)."""
    listed, failing = 0, []
    for pod in pods:
        listed += 1
        for c in (pod.get("status") or {}).get("containerStatuses") or ():
            waiting = (c.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in FAILING_WAITS:
                ended = (c.get("lastState") or {}).get("terminated") or {}
                why = last_line(str(ended.get("message") or "")) or str(ended.get("reason") or "") or last_line(str(waiting.get("message") or ""))
                failing.append((str(waiting["reason"]), why))
                break
    if not failing:
        return None
    reason, why = failing[0]
    message = f"{len(failing)} of the {listed} worker pods listed are in {reason}" + (f": {why}" if why else "")
    return reason, message[:1000]

