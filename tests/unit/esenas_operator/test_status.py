"""Pure status logic: conditions, diffs, the aggregator's report, failure and TTL rules."""

from __future__ import annotations

import datetime as dt

from esenas_operator.kube import is_subset
from esenas_operator.main import parse_args
from esenas_operator.status import (
    AggregatorReport,
    diff,
    failure,
    fleet_fit,
    progress_status,
    set_condition,
    timestamp,
    ttl_expired,
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
    assert workers_status(10, 7, None, 1) == {"desired": 10, "ready": 7, "shards": 1, "summary": "7/10"}


def test_failure_rules() -> None:
    ok = AggregatorReport.parse({"phase": "Running"})
    assert failure(3, 3, None, T0, LATER, ok) is None
    assert failure(3, 4, None, T0, LATER, ok) == ("BackoffLimitExceeded", "the aggregator restarted 4 times (spec.backoffLimit 3)")
    reason, _ = failure(3, 0, 10, T0, LATER, None) or ("", "")
    assert reason == "DeadlineExceeded"
    assert failure(3, 0, 60, T0, LATER, None) is None
    assert failure(3, 0, None, T0, LATER, AggregatorReport.parse({"phase": "Failed", "reason": "NaN parameters"})) == ("AggregatorFailed", "NaN parameters")


def test_ttl() -> None:
    done = {"phase": "Succeeded", "completionTime": timestamp(T0)}
    assert ttl_expired(done, 30, LATER)
    assert not ttl_expired(done, 31, LATER)
    assert not ttl_expired(done, None, LATER)
    assert not ttl_expired({"phase": "Running", "completionTime": timestamp(T0)}, 0, LATER)


def test_subset_ignores_server_defaults_but_not_changes() -> None:
    desired = {"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "w", "image": "a"}]}}}}
    actual = {"spec": {"replicas": 3, "revisionHistoryLimit": 10, "template": {"spec": {"containers": [{"name": "w", "image": "a", "terminationMessagePath": "/dev/x"}]}}}}
    assert is_subset(desired, actual)
    assert not is_subset({"spec": {"replicas": 4}}, actual)
    assert not is_subset({"spec": {"template": {"spec": {"containers": [{"name": "w"}, {"name": "v"}]}}}}, actual)


def test_cli_defaults_and_flags() -> None:
    a = parse_args([])
    assert a.namespace == [] and a.metrics_port == 8080 and a.liveness_port == 8081 and a.peering is None
    b = parse_args(["-n", "ml", "--namespace", "research", "--standalone", "--metrics-port", "0", "--status-interval", "2.5"])
    assert b.namespace == ["ml", "research"] and b.metrics_port == 0 and b.status_interval == 2.5


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
