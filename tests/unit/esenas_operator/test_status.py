"""Pure status logic: conditions, diffs, the aggregator's report, failure and TTL rules."""

from __future__ import annotations

import datetime as dt

from esenas_operator.lifecycle import lifecycle
from esenas_operator.reasons import aggregator_failure_reason, success_reason
from esenas_operator.status import (
    DEADLINE_GRACE_S,
    AggregatorReport,
    diff,
    failure,
    fleet_fit,
    progress_status,
    restart_count,
    set_condition,
    termination_message,
    timestamp,
    ttl_expired,
    workers_failing,
    workers_status,
)

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(seconds=30)


def test_condition_transition_time_moves_only_when_status_flips() -> None:
    (c,) = set_condition(None, "Suspended", True, "Suspended", "spec.suspend is true", 2, T0)
    assert c == {"type": "Suspended", "status": "True", "reason": "Suspended", "message": "spec.suspend is true",
                 "observedGeneration": 2, "lastTransitionTime": "2026-01-01T12:00:00Z"}
    (same,) = set_condition([c], "Suspended", True, "Suspended", "again", 3, LATER)
    assert same["lastTransitionTime"] == "2026-01-01T12:00:00Z" and same["observedGeneration"] == 3
    (flipped,) = set_condition([c], "Suspended", False, "Resumed", "spec.suspend is false", 3, LATER)
    assert flipped["lastTransitionTime"] == "2026-01-01T12:00:30Z" and flipped["status"] == "False"
    both = set_condition([c], "InvalidSpec", True, "InvalidSpec", "x", 3, LATER)
    assert [x["type"] for x in both] == ["Suspended", "InvalidSpec"]


def test_diff_is_the_minimal_merge_patch() -> None:
    current = {"phase": "Running", "workers": {"desired": 4, "ready": 2}, "iteration": 3}
    assert diff(current, {"phase": "Running", "workers": {"desired": 4, "ready": 2}}) == {}
    assert diff(current, {"workers": {"desired": 4, "ready": 4}, "iteration": 4}) == {"workers": {"ready": 4}, "iteration": 4}
    assert diff({}, {"workers": {"ready": 1}}) == {"workers": {"ready": 1}}


def test_report_parsing_is_lenient_and_maps_to_status() -> None:
    r = AggregatorReport.parse({"phase": "Running", "iteration": 7, "envSteps": 70, "bestReward": 3.14159265, "meanReward": None,
                                "workersConnected": 5, "topologySize": 17, "denseParams": 1000, "compression": 58.82})
    assert r.best_reward == 3.14159265 and r.mean_reward is None and not r.done
    st = progress_status(r)
    assert st["iteration"] == 7 and st["envSteps"] == 70 and st["bestReward"] == 3.141593 and "meanReward" not in st
    assert st["bestTopology"] == {"size": 17, "denseParams": 1000, "compression": 58.82}
    assert AggregatorReport.parse({}).iteration == 0
    assert "trial" not in st and "trial" not in progress_status(AggregatorReport.parse({"trial": None}))
    assert progress_status(AggregatorReport.parse({"trial": "trial 2/3"}))["trial"] == "trial 2/3"
    assert workers_status(10, 7, None, 1) == {"desired": 10, "ready": 7, "shards": 1, "summary": "7/10"}
    stopped = workers_status(10, 7, 2, 1, stopped=True)
    assert stopped == {"desired": 0, "ready": 0, "shards": 1, "summary": "0/0", "connected": 0}


def test_failure_rules() -> None:
    ok = AggregatorReport.parse({"phase": "Running"})
    assert failure(3, 3, None, T0, LATER, ok) is None
    assert failure(3, 4, None, T0, LATER, ok) == ("AggregatorCrashLoop", "the aggregator restarted 4 times (spec.backoffLimit 3)")
    crash = "ModuleNotFoundError: No module named 'mypkg'"
    assert failure(3, 4, None, T0, LATER, ok, crash) == (
        "AggregatorCrashLoop", f"the aggregator restarted 4 times (spec.backoffLimit 3); its last termination message: {crash}")
    # A traceback: its last line, the exception, comes first, so a shortened copy still names it.
    trace = "Traceback (most recent call last):\n  File \"x.py\", line 1\n" + "  frame\n" * 200 + crash + "\n"
    _, message = failure(3, 4, None, T0, LATER, ok, trace) or ("", "")
    assert message.startswith(f"the aggregator restarted 4 times (spec.backoffLimit 3): {crash}; its last termination message: Traceback")
    reason, _ = failure(3, 0, 10, T0, LATER, None) or ("", "")
    assert reason == "DeadlineExceeded"
    assert failure(3, 0, 60, T0, LATER, None) is None
    # An aggregator that answers gets DEADLINE_GRACE_S to stop itself; one that did is no failure.
    assert failure(3, 0, 10, T0, LATER, ok) is None
    assert failure(3, 0, 10, T0, T0 + dt.timedelta(seconds=10 + DEADLINE_GRACE_S + 1), ok) is not None
    ended = AggregatorReport.parse({"phase": "Succeeded", "done": True, "reason": "deadline of 10 s reached"})
    assert failure(3, 0, 10, T0, T0 + dt.timedelta(seconds=10 + DEADLINE_GRACE_S + 1), ended) is None
    assert failure(3, 0, None, T0, LATER, AggregatorReport.parse({"phase": "Failed", "reason": "NaN parameters"})) == ("AggregatorFailed", "NaN parameters")
    nonfinite = AggregatorReport.parse({"phase": "Failed", "reason": "NonFiniteUpdate: params, 3 times in a row"})
    assert failure(3, 0, None, T0, LATER, nonfinite) == ("NonFiniteUpdate", "NonFiniteUpdate: params, 3 times in a row")
    bound = AggregatorReport.parse({"phase": "Failed", "reason": "RewardOutOfBounds: spec.environment.maxAbsReward: item 7 ..."})
    assert failure(3, 0, None, T0, LATER, bound) == ("RewardOutOfBounds", "RewardOutOfBounds: spec.environment.maxAbsReward: item 7 ...")


def test_reasons_are_camel_case_names_of_why() -> None:
    assert success_reason("target reward 500 reached (512.3)") == "TargetReached"
    assert success_reason("max iterations 100 reached") == "MaxIterations"
    assert success_reason("maxIterations") == "MaxIterations"
    assert success_reason("max env steps 1000 reached") == "MaxEnvSteps"
    assert success_reason("max episodes 5 reached") == "MaxEpisodes"
    assert success_reason("") == "Completed"
    assert aggregator_failure_reason("ValueError: bad") == "AggregatorFailed", "an exception type is a cause, not a reason"


def test_termination_message_prefers_the_last_crash_and_keeps_its_tail() -> None:
    pods = [{"status": {"containerStatuses": [{"name": "aggregator", "restartCount": 3,
                                               "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                                               "lastState": {"terminated": {"exitCode": 1, "message": "x" * 5000 + "ImportError: no"}}}]}}]
    text = termination_message(pods)
    assert text.endswith("ImportError: no") and len(text) == 2048
    assert termination_message([{"status": {}}]) == ""
    waiting = [{"status": {"containerStatuses": [{"state": {"waiting": {"reason": "ErrImagePull", "message": "pull access denied"}}}]}}]
    assert termination_message(waiting) == "pull access denied"


def test_lifecycle_conditions_follow_the_phase_the_kubeflow_way() -> None:
    def types(cs: list[dict[str, object]]) -> dict[object, tuple[object, object]]:
        return {c["type"]: (c["status"], c["reason"]) for c in cs}

    pending = lifecycle(None, "Pending", "Created", "2 workers", 1, T0, created="2 workers in 1 shard(s)")
    assert types(pending) == {"Created": ("True", "Created")}
    running = lifecycle(pending, "Running", "Running", "serving", 1, T0)
    assert types(running) == {"Created": ("True", "Created"), "Running": ("True", "Running")}
    suspended = lifecycle(running, "Suspended", "Suspended", "spec.suspend", 2, LATER)
    assert types(suspended)["Running"] == ("False", "Suspended")
    done = lifecycle(running, "Succeeded", "TargetReached", "best 500", 1, LATER)
    assert types(done) == {"Created": ("True", "Created"), "Running": ("False", "TargetReached"),
                           "Succeeded": ("True", "TargetReached"), "Complete": ("True", "TargetReached")}
    invalid = lifecycle(None, "Failed", "InvalidSpec", "spec.workers.resources: bad", 1, T0)
    assert types(invalid) == {"Failed": ("True", "InvalidSpec")}
    fixed = lifecycle(invalid, "Pending", "Created", "ok", 2, LATER, created="ok")
    assert types(fixed) == {"Failed": ("False", "SpecValid"), "Created": ("True", "Created")}


def test_ttl() -> None:
    done = {"phase": "Succeeded", "completionTime": timestamp(T0)}
    assert ttl_expired(done, 30, LATER)
    assert not ttl_expired(done, 31, LATER)
    assert not ttl_expired(done, None, LATER)
    assert not ttl_expired({"phase": "Running", "completionTime": timestamp(T0)}, 0, LATER)


def test_restarts_are_the_most_any_pod_reports_never_fewer_than_known() -> None:
    def pod(*counts: int) -> dict[str, object]:
        return {"status": {"containerStatuses": [{"restartCount": n} for n in counts]}}

    assert restart_count([pod(1, 2), pod(4)], 0) == 4
    assert restart_count([pod(0)], 3) == 3  # a replaced pod starts again from 0
    assert restart_count([], 2) == 2


def test_fleet_is_oversized_only_past_the_work_items_of_an_iteration() -> None:
    fits = fleet_fit(72, 64, 8)
    assert (fits.oversized, fits.reason) == (False, "FleetFitsWork")
    over = fleet_fit(200, 64, 8)
    assert (over.oversized, over.reason) == (True, "FleetExceedsWork")
    assert over.message.startswith("spec.workers.replicas 200 exceeds the 72 work items per iteration "
                                   "(es.perturbations 64 + es.exactEvals 8): 128 worker pods stay idle.")
    assert "spec.es.perturbationsPerWorker" in over.message and "at most 72" in over.message
    # Per worker, the population is perturbationsPerWorker x replicas: never oversized.
    per_worker = fleet_fit(200, 8 * 200, 0, per_worker=8)
    assert not per_worker.oversized and "es.perturbationsPerWorker 8 x 200 replicas" in per_worker.message
    assert not fleet_fit(0, 8, 0).oversized


def test_fleet_condition_is_recorded_once_oversized_and_warns_on_changes_only() -> None:
    over, fits = fleet_fit(200, 64, 8), fleet_fit(16, 64, 8)
    assert not fits.recorded(None), "a fleet that always fit gets no condition"
    assert over.recorded(None) and not fits.warns(None)
    assert over.warns(None)
    (cond,) = set_condition(None, "FleetOversized", True, over.reason, over.message, 1, T0)
    assert not over.warns(cond), "no second Warning for the same numbers (e.g. after an operator restart)"
    assert fleet_fit(300, 64, 8).warns(cond), "a bigger idle fleet warns again"
    assert fits.recorded(cond) and not fits.warns(cond)
    (cleared,) = set_condition([cond], "FleetOversized", False, fits.reason, fits.message, 2, LATER)
    assert cleared["status"] == "False" and fits.recorded(cleared)
    assert over.warns(cleared), "oversized again after it fit"


def _worker_pod(state: dict[str, object], last: dict[str, object] | None = None) -> dict[str, object]:
    status = {"name": "worker", "restartCount": 3, "state": state, "lastState": {"terminated": last} if last else {}}
    return {"metadata": {"name": "w"}, "status": {"containerStatuses": [status]}}


def test_workers_failing_names_how_many_and_why() -> None:
    crash = _worker_pod({"waiting": {"reason": "CrashLoopBackOff"}},
                        {"exitCode": 2, "reason": "Error", "message": "Traceback...\nModuleNotFoundError: No module named 'my_pkg'\n"})
    pull = _worker_pod({"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "reg/worker:typo"'}})
    oom = _worker_pod({"waiting": {"reason": "CrashLoopBackOff"}}, {"exitCode": 137, "reason": "OOMKilled"})
    running = _worker_pod({"running": {}})
    starting = _worker_pod({"waiting": {"reason": "ContainerCreating"}})
    assert workers_failing([running, starting]) is None and workers_failing([]) is None
    assert workers_failing([running, crash, crash]) == (
        "CrashLoopBackOff", "2 of the 3 worker pods listed are in CrashLoopBackOff: ModuleNotFoundError: No module named 'my_pkg'")
    assert workers_failing([pull]) == ("ImagePullBackOff", '1 of the 1 worker pods listed are in ImagePullBackOff: Back-off pulling image "reg/worker:typo"')
    assert workers_failing([oom]) == ("CrashLoopBackOff", "1 of the 1 worker pods listed are in CrashLoopBackOff: OOMKilled")
