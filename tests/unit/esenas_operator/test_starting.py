"""Pods that cannot start, decided from documents already read (esenas_operator.starting)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from esenas_operator import decide, starting, terms
from esenas_operator.status import timestamp
from esenas_operator.validation import validate_job

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def _ago(seconds: float) -> str:
    return timestamp(NOW - dt.timedelta(seconds=seconds))


def _waiting(reason: str, message: str, unready_for: float) -> dict[str, Any]:
    return {"metadata": {"creationTimestamp": _ago(3600)}, "status": {
        "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": _ago(unready_for)}],
        "containerStatuses": [{"name": "c", "restartCount": 0, "state": {"waiting": {"reason": reason, "message": message}}}]}}


def _unschedulable(message: str, for_: float) -> dict[str, Any]:
    return {"status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message, "lastTransitionTime": _ago(for_)}]}}


def test_an_aggregator_image_that_cannot_be_pulled_fails_only_after_the_grace() -> None:
    pod = _waiting("ImagePullBackOff", 'Back-off pulling image "x"', 301)
    reason, message = starting.aggregator([pod], None, NOW) or ("", "")
    assert reason == "AggregatorImagePullFailed"
    assert message == 'the aggregator pod cannot start: ImagePullBackOff: Back-off pulling image "x" (for more than 300 s)'
    assert starting.aggregator([_waiting("ErrImagePull", "", 299)], None, NOW) is None
    assert starting.aggregator([_waiting("InvalidImageName", "bad", 300)], None, NOW) == (
        "AggregatorImagePullFailed", "the aggregator pod cannot start: InvalidImageName: bad (for more than 300 s)")


def test_a_container_that_cannot_be_created_is_named_and_a_crash_loop_is_left_to_the_backoff_limit() -> None:
    found = starting.aggregator([_waiting("CreateContainerConfigError", 'secret "s" not found', 900)], None, NOW)
    assert found == ("AggregatorCannotStart", 'the aggregator pod cannot start: CreateContainerConfigError: secret "s" not found (for more than 300 s)')
    assert starting.aggregator([_waiting("CrashLoopBackOff", "back-off", 900)], None, NOW) is None
    running = {"status": {"containerStatuses": [{"name": "c", "state": {"running": {}}}]}}
    assert starting.aggregator([running], None, NOW) is None


def test_the_pods_own_time_counts_and_without_one_nothing_is_due() -> None:
    no_ready = {"metadata": {"creationTimestamp": _ago(900)}, "status": {
        "containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "ErrImagePull"}}}]}}
    assert starting.aggregator([no_ready], None, NOW) == ("AggregatorImagePullFailed", "the aggregator pod cannot start: ErrImagePull (for more than 300 s)")
    timeless = {"status": {"containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "ErrImagePull"}}}]}}
    assert starting.aggregator([timeless], None, NOW) is None


def test_an_unschedulable_aggregator_names_its_claim_when_the_scheduler_blames_one() -> None:
    why = "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    reason, message = starting.aggregator([_unschedulable(why, 400)], None, NOW, "j-checkpoints") or ("", "")
    assert reason == "AggregatorUnschedulable"
    assert message.startswith(f"the aggregator pod cannot be scheduled: Unschedulable: {why} (for more than 300 s)")
    assert message.endswith("(kubectl describe pvc j-checkpoints: does its storage class exist?)")
    other = starting.aggregator([_unschedulable("0/3 nodes are available: 3 Insufficient cpu.", 400)], None, NOW, "j-checkpoints")
    assert other is not None and "pvc" not in other[1]
    assert starting.aggregator([_unschedulable(why, 100)], None, NOW) is None


def test_a_deployment_that_cannot_create_pods() -> None:
    status = {"conditions": [{"type": "Available", "status": "False"},
                             {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "forbidden: quota", "lastTransitionTime": _ago(301)}]}
    stall = starting.deployment_stall(status)
    assert stall == ("FailedCreate", "forbidden: quota", _ago(301))
    assert starting.deployment_stall({"conditions": [{"type": "ReplicaFailure", "status": "False"}]}) is None
    assert starting.aggregator([], stall, NOW) == (
        "AggregatorCannotStart", "the aggregator Deployment cannot create its pod: FailedCreate: forbidden: quota (for more than 300 s)")
    assert starting.workers([], [("j-workers-0", None), ("j-workers-1", stall)], NOW) == (
        "FailedCreate", "Deployment j-workers-1 cannot create pods: FailedCreate: forbidden: quota (for more than 300 s)")
    assert starting.workers([], [("j-workers-1", stall)], NOW, grace=600) is None


def test_worker_pods_that_cannot_be_scheduled_past_the_grace() -> None:
    pods = [_unschedulable("0/3 nodes are available: 3 Insufficient cpu.", 400), _unschedulable("x", 10), {"status": {}}]
    assert starting.workers(pods, [], NOW) == (
        "Unschedulable", "1 of the 3 worker pods listed cannot start: Unschedulable: 0/3 nodes are available: 3 Insufficient cpu. (for more than 300 s)")
    assert starting.workers(pods[1:], [], NOW) is None


def test_an_aggregator_that_cannot_start_fails_the_job_with_a_warning_and_no_result() -> None:
    job = terms.of(validate_job({"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "j", "namespace": "ns"},
                                 "spec": {"environment": {"id": "Hopper-v5"}, "workers": {"replicas": 2}}}))
    stuck = ("AggregatorImagePullFailed", "the aggregator pod cannot start: ImagePullBackOff")
    out = decide.outcome(job, {"phase": "Pending", "startTime": _ago(400)}, None, 0, "", NOW, stuck)
    assert (out.phase, out.reason, out.message, out.result) == ("Failed", *stuck, None)
    assert out.event == decide.Event("Warning", *stuck)
    assert decide.outcome(job, {"phase": "Pending"}, None, 0, "", NOW, None).phase is None
