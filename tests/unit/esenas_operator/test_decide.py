"""The handlers' decisions without HTTP: done, failed, due for a result, stop the fleet, refused edits."""

from __future__ import annotations

import datetime as dt
from typing import Any

from esenas.spec import Job
from esenas_operator import decide, terms
from esenas_operator.reasons import CREATED, INVALID_SPEC, RUNNING, SUSPENDED
from esenas_operator.status import (
    DEADLINE_GRACE_S,
    AggregatorReport,
    condition,
    set_condition,
    timestamp,
    ttl_expired,
)
from esenas_operator.validation import validate_job

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(seconds=30)


def _job(**spec: Any) -> Job:
    return validate_job({
        "apiVersion": "esenas.dev/v1alpha1",
        "kind": "ESENASJob",
        "metadata": {"name": "j", "namespace": "ns", "uid": "u"},
        "spec": {"environment": {"id": "Hopper-v5"}, "workers": {"replicas": 4}, **spec},
    })


def _terms(**spec: Any) -> terms.Terms:
    return terms.of(_job(**spec))


def _report(**fields: Any) -> AggregatorReport:
    return AggregatorReport.parse({"phase": "Running", "iteration": 3, "workersConnected": 4, **fields})


RUNNING_STATUS: dict[str, Any] = {"phase": "Running", "startTime": timestamp(T0)}


def test_a_serving_aggregator_keeps_the_job_running_and_announces_it_once() -> None:
    out = decide.outcome(_terms(), {"phase": "Pending"}, _report(), 0, "", LATER)
    assert (out.phase, out.reason, out.finishes) == ("Running", RUNNING, False)
    assert out.event == decide.Event("Normal", "Running", "the aggregator is serving")
    assert decide.outcome(_terms(), RUNNING_STATUS, _report(), 0, "", LATER).event is None


def test_no_report_changes_no_phase() -> None:
    out = decide.outcome(_terms(), RUNNING_STATUS, None, 0, "", LATER)
    assert out == decide.Outcome(None)
    assert decide.transition(RUNNING_STATUS, out, 1, LATER, None, 1) == {}


def test_a_done_report_succeeds_the_job_stores_its_result_and_stops_the_fleet() -> None:
    out = decide.outcome(_terms(), RUNNING_STATUS, _report(done=True, reason="target reward reached", bestReward=3.5), 0, "", LATER)
    assert (out.phase, out.reason, out.finishes, out.result) == ("Succeeded", "TargetReached", True, "complete")
    assert out.event is not None and out.event.reason == "Succeeded"
    update = decide.transition(RUNNING_STATUS, out, 1, LATER, 4, 2)
    assert update["completionTime"] == timestamp(LATER)
    assert update["workers"]["desired"] == 0
    assert (condition(update, "Succeeded") or {}).get("status") == "True"


def test_failures_come_before_success_and_need_no_report() -> None:
    failed = decide.outcome(_terms(backoffLimit=1), RUNNING_STATUS, None, 2, "boom", LATER)
    assert (failed.phase, failed.reason, failed.finishes) == ("Failed", "AggregatorCrashLoop", True)
    assert failed.event is not None and failed.event.type == "Warning"
    assert failed.result is None  # no report: no aggregator to copy a best-so-far from
    reported = decide.outcome(_terms(), RUNNING_STATUS, _report(phase="Failed", done=True, reason="NonFiniteUpdate: nan"), 0, "", LATER)
    assert (reported.phase, reported.reason, reported.result) == ("Failed", "NonFiniteUpdate", "partial")
    # No aggregator answers: the deadline fails the job at once, with nothing to keep.
    late = decide.outcome(_terms(stopping={"deadlineSeconds": 10}), RUNNING_STATUS, None, 0, "", LATER)
    assert (late.phase, late.reason, late.result) == ("Failed", "DeadlineExceeded", None)
    # One answers: it stops itself at the deadline (its clock starts with its pod), so the wall clock
    # fails the job only past DEADLINE_GRACE_S more, keeping the best so far.
    terms, running = _terms(stopping={"deadlineSeconds": 10}), _report()
    assert decide.outcome(terms, RUNNING_STATUS, running, 0, "", LATER).phase == "Running"
    much_later = T0 + dt.timedelta(seconds=10 + DEADLINE_GRACE_S + 1)
    late = decide.outcome(terms, RUNNING_STATUS, running, 0, "", much_later)
    assert (late.phase, late.reason, late.result) == ("Failed", "DeadlineExceeded", "partial")
    assert f"by more than {DEADLINE_GRACE_S:g} s" in late.message


def test_an_aggregator_that_stopped_at_the_deadline_succeeds() -> None:
    """Its own stop at spec.stopping.deadlineSeconds is a success, however late the operator reads it."""
    ended = _report(phase="Succeeded", done=True, reason="deadline of 10 s reached")
    for now in (LATER, T0 + dt.timedelta(seconds=10 + DEADLINE_GRACE_S + 60)):
        out = decide.outcome(_terms(stopping={"deadlineSeconds": 10}), RUNNING_STATUS, ended, 0, "", now)
        assert (out.phase, out.reason, out.result) == ("Succeeded", "DeadlineReached", "complete")


def test_a_suspended_job_only_says_so() -> None:
    out = decide.outcome(_terms(suspend=True), RUNNING_STATUS, None, 9, "", LATER)
    assert out == decide.Outcome("Suspended") and not out.finishes and out.result is None
    assert not decide.reads_report(_terms(suspend=True)) and decide.reads_report(_terms())
    assert decide.transition(RUNNING_STATUS, out, 1, LATER, None, 1) == {"phase": "Suspended"}
    assert decide.observed(_terms(suspend=True), 0, None, 1, 0, None)["workers"]["desired"] == 0


def test_running_keeps_a_refused_edits_reason() -> None:
    refused = decide.refusal(3, "bad field")
    status = {**RUNNING_STATUS, **decide.refused_status(RUNNING_STATUS, refused, T0)}
    assert decide.edit_refused(status)
    out = decide.outcome(_terms(), status, _report(), 0, "", LATER)
    update = decide.transition(status, out, 2, LATER, 4, 1)
    assert "reason" not in update and update["phase"] == "Running"
    again = decide.with_refusal(update, status, refused, LATER)
    assert (again["reason"], again["message"]) == (INVALID_SPEC, refused[1])
    assert (condition(again, "Reconciled") or {}).get("observedGeneration") == 3
    assert decide.with_refusal(update, status, None, LATER) is update


def test_a_refusal_keeps_the_reason_of_a_finished_job() -> None:
    done = {"phase": "Succeeded", "reason": "TargetReached"}
    out = decide.with_refusal({}, done, decide.refusal(2, "x"), LATER)
    assert "reason" not in out and not decide.edit_refused(done)


def test_invalid_spec_fails_and_ran_follows_created() -> None:
    status = decide.invalid_status({}, 1, "bad", T0)
    assert (status["phase"], status["reason"], status["observedGeneration"]) == ("Failed", INVALID_SPEC, 1)
    assert not decide.ran(status)
    assert decide.ran({"conditions": set_condition(None, "Created", True, CREATED, "made", 1, T0)})


def test_a_job_failed_for_its_spec_finishes_once_for_its_ttl() -> None:
    """ttlSecondsAfterFinished counts from completionTime: a job failed for its spec has one too."""
    failed = decide.invalid_status({}, 1, "bad", T0)
    assert failed["completionTime"] == timestamp(T0)
    assert ttl_expired(failed, 30, LATER) and not ttl_expired(failed, 31, LATER)
    again = decide.invalid_status(failed, 2, "still bad", LATER)
    assert again["completionTime"] == timestamp(T0), "the first failure's time is kept"
    # Fixed: the job goes on, and is no longer finished.
    fixed = decide.reconciled(failed, _job(), 1, 3, LATER)
    assert fixed.phase == "Pending" and fixed.desired["completionTime"] is None
    assert "completionTime" not in decide.reconciled({"phase": "Pending"}, _job(), 1, 1, T0).desired


def test_reconciled_status_pending_running_suspended() -> None:
    new = decide.reconciled({}, _job(), 1, 1, T0)
    assert (new.phase, new.desired["reason"], new.desired["startTime"]) == ("Pending", CREATED, timestamp(T0))
    assert new.desired["workers"] == {"desired": 4, "shards": 1} and new.warning is None
    running = decide.reconciled({"phase": "Running", "startTime": "x"}, _job(), 1, 2, T0)
    assert (running.phase, running.desired["reason"]) == ("Running", RUNNING) and "startTime" not in running.desired
    paused = decide.reconciled({"phase": "Running"}, _job(suspend=True), 1, 3, T0)
    assert (paused.phase, paused.desired["reason"], paused.desired["workers"]["desired"]) == ("Suspended", SUSPENDED, 0)
    assert (condition(paused.desired, "Suspended") or {}).get("status") == "True"


def test_an_oversized_fleet_warns_once() -> None:
    job = _job(workers={"replicas": 1000}, es={"perturbations": 8})
    first = decide.reconciled({}, job, 1, 1, T0)
    assert first.warning is not None and first.warning.reason == "FleetExceedsWork"
    again = decide.reconciled(first.desired, job, 1, 1, LATER)
    assert again.warning is None


def test_the_fleet_counts_ready_workers_and_stops_only_what_still_runs() -> None:
    fleet = decide.Fleet.of([
        decide.Workload("j-aggregator", "aggregator", 1, 1),
        decide.Workload("j-workers-0", "worker", 3, 2),
        decide.Workload("j-workers-1", "worker", 0, 0),
    ])
    assert (fleet.ready, fleet.shards, fleet.aggregator_unready) == (2, 2, False)
    assert fleet.to_stop() == ["j-aggregator", "j-workers-0"]
    assert decide.Fleet.of([decide.Workload("j-aggregator", "aggregator", 1, 0)]).aggregator_unready
    assert not decide.Fleet.of([decide.Workload("j-aggregator", "aggregator", 0, 0)]).aggregator_unready
    assert decide.Fleet.of([]) == decide.Fleet((), None, ())


def test_worker_pods_that_cannot_run_set_workers_failing_and_warn_once() -> None:
    running = {**RUNNING_STATUS, "reason": "Running", "message": "the aggregator is serving"}
    crash = ("CrashLoopBackOff", "2 of the 8 worker pods listed are in CrashLoopBackOff: OOMKilled")
    quiet, event = decide.worker_health({}, running, None, 1, LATER)
    assert quiet == {} and event is None  # a job whose workers never failed has no such condition
    failing, event = decide.worker_health({}, running, crash, 1, LATER)
    cond = condition(failing, "WorkersFailing")
    assert cond is not None and (cond["status"], cond["reason"], cond["message"]) == ("True", "CrashLoopBackOff", crash[1])
    assert event is not None and (event.type, event.reason, event.message) == ("Warning", "WorkersFailing", crash[1])
    still, event = decide.worker_health({}, {**running, **failing}, crash, 1, LATER)
    assert event is None and condition(still, "WorkersFailing") == cond  # no second Event while it lasts
    healed, event = decide.worker_health({}, {**running, **failing}, None, 1, LATER)
    cond = condition(healed, "WorkersFailing")
    assert event is None and cond is not None and (cond["status"], cond["reason"]) == ("False", "WorkersRunning")
    # kubectl get's Reason column says it while it lasts, and goes back to Running after.
    assert (failing["reason"], failing["message"]) == ("WorkersFailing", crash[1])
    assert (healed["reason"], healed["message"]) == ("Running", "the worker pods run again")
    # A more specific reason (an edit the operator refused) is not covered up.
    refused = {**running, "reason": "InvalidSpec", "message": "spec.es.sigma: must be > 0"}
    kept, _ = decide.worker_health({}, refused, crash, 1, LATER)
    assert "reason" not in kept


def test_a_job_scaled_to_zero_workers_says_so_in_its_reason_and_back_when_scaled_up() -> None:
    running = {**RUNNING_STATUS, "reason": "Running", "message": "the aggregator is serving"}
    idle = decide.no_workers({}, running, 0, "cheetah")
    assert idle["reason"] == "NoWorkers"
    assert idle["message"] == ("spec.workers.replicas is 0: nothing rolls out until kubectl scale esj/cheetah --replicas=N "
                               "(spec.suspend: true also stops the aggregator)")
    assert decide.no_workers({}, {**running, **idle}, 0, "cheetah") == idle  # steady: the same patch
    back = decide.no_workers({}, {**running, **idle}, 3, "cheetah")
    assert (back["reason"], back["message"]) == ("Running", "scaled to 3 workers")
    assert decide.no_workers({}, running, 3, "cheetah") == {}  # nothing to say
    failed = {"phase": "Failed", "reason": "DeadlineExceeded"}
    assert decide.no_workers({}, failed, 0, "cheetah") == {}  # a finished job keeps its reason
