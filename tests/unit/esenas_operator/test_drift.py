"""Drift of a job's children (drift.py) and the checkpoint volume's refused edits (claims.py), without HTTP."""

from __future__ import annotations

from typing import Any

from esenas import edits
from esenas.spec import Job
from esenas_operator import builders, claims, drift, indices
from esenas_operator.decide import Workload
from esenas_operator.settings import Settings
from esenas_operator.validation import validate_job

BODY: dict[str, Any] = {"apiVersion": "esenas.dev/v1alpha1", "kind": "ESENASJob", "metadata": {"name": "j", "namespace": "ns", "uid": "u"}}


def _job(**spec: Any) -> Job:
    return validate_job({**BODY, "spec": {"environment": {"id": "Hopper-v5"}, "workers": {"replicas": 4}, **spec}})


def _fleet(job: Job) -> list[Workload]:
    """The Deployments the builders make for ``job``, as the operator's index sees them."""
    body = {**BODY, "spec": {}}
    out = []
    for obj in builders.build_children(body, job, Settings(), service_monitor=False):
        if obj["kind"] == "Deployment":
            meta = obj["metadata"]
            out.append(Workload(meta["name"], meta["labels"]["app.kubernetes.io/component"], obj["spec"]["replicas"], 0,
                                meta.get("annotations", {}).get(claims.ANNOTATION)))
    return out


def _parts(job: Job) -> set[str]:
    """The job's Services, NetworkPolicies and ConfigMaps the builders make, as the ``parts`` index words them."""
    body = {**BODY, "spec": {}}
    kinds = {kind for *_, kind in indices.PART_RESOURCES}
    return {f"{o['kind']}/{o['metadata']['name']}" for o in builders.build_children(body, job, Settings(), service_monitor=False)
            if o["kind"] in kinds}


def test_wanted_is_what_the_builders_make() -> None:
    for job in (_job(), _job(workers={"replicas": 2500, "shardSize": 1000}), _job(suspend=True),
                _job(relays={"workersPerRelay": 100}, workers={"replicas": 250})):
        assert drift.wanted(job) == {w.name: w.replicas for w in _fleet(job)}
        assert drift.wanted_parts(job) == _parts(job)
        assert drift.drifted(job, _fleet(job), _parts(job)) == ()
    assert set(drift.wanted(_job(suspend=True)).values()) == {0}, "a suspended job wants no pods"


def test_missing_rescaled_and_surplus_deployments_are_drift() -> None:
    job = _job(workers={"replicas": 1500, "shardSize": 1000})
    fleet = {w.name: w for w in _fleet(job)}
    seen = [fleet["j-workers-0"], Workload("j-workers-1", "worker", 7, 7), Workload("j-workers-2", "worker", 1, 1),
            Workload("j-other", "something-else", 1, 1)]
    assert drift.drifted(job, seen, _parts(job)) == (
        "Deployment/j-aggregator was missing",
        "Deployment/j-workers-1 had 7 replicas, not 500",
        "Deployment/j-workers-2 was not wanted",
    )


def test_a_service_network_policy_or_config_map_deleted_alone_is_drift() -> None:
    job = _job(relays={"workersPerRelay": 100}, workers={"replicas": 250})
    parts = _parts(job)
    assert parts == {"ConfigMap/j-spec", "Service/j-aggregator", "NetworkPolicy/j-aggregator", "Service/j-relays", "NetworkPolicy/j-relays"}
    left = parts - {"Service/j-relays", "ConfigMap/j-spec"}
    assert drift.drifted(job, _fleet(job), left) == ("ConfigMap/j-spec was missing", "Service/j-relays was missing")
    # Children the operator makes at the end or by hand with its labels (the result) are not drift.
    assert drift.drifted(job, _fleet(job), {*parts, "ConfigMap/j-result"}) == ()
    no_relays = _job()
    assert drift.drifted(no_relays, _fleet(no_relays), _parts(no_relays) | {"Service/j-relays"}) == (), "a tier being removed"


def test_a_repair_waits_for_a_second_tick_and_posts_its_event_once() -> None:
    job = _job()
    applied = drift.Applied(drift.snapshot({**BODY, "spec": {"workers": {"replicas": 4}}}), job, generation=1)
    fine, parts = _fleet(job), _parts(job)
    gone = [w for w in fine if w.component != "aggregator"]
    assert applied.observe(fine, parts, 1, None) == ()
    assert applied.observe(gone, parts, 1, None) == (), "one tick may see the index behind an apply"
    found = applied.observe(gone, parts, 1, None)
    assert found == ("Deployment/j-aggregator was missing",)
    assert applied.announce(found)
    # The index still behind on the next tick: not repaired again at once, and no second Event.
    assert applied.observe(gone, parts, 1, None) == ()
    assert applied.observe(gone, parts, 1, None) == found and not applied.announce(found)
    # Put back, then deleted again later: a new Event.
    assert applied.observe(fine, parts, 1, None) == ()
    assert applied.observe(gone, parts, 1, None) == () and applied.observe(gone, parts, 1, None) == found
    assert applied.announce(found)


def test_no_repair_while_an_edit_waits_for_its_reconcile_unless_it_was_refused() -> None:
    applied = drift.Applied({}, _job(), generation=1)
    gone: list[Workload] = []
    parts: list[str] = []
    assert applied.observe(gone, parts, 2, None) == () and applied.observe(gone, parts, 2, None) == ()
    assert applied.observe(gone, parts, 2, 2) == () and applied.observe(gone, parts, 2, 2) != ()


def test_snapshot_copies_what_the_builders_read() -> None:
    body = {**BODY, "metadata": {**BODY["metadata"], "generation": 3, "labels": {"a": "b"}}, "spec": {"workers": {"replicas": 4}}}
    snap = drift.snapshot(body)
    body["spec"]["workers"]["replicas"] = 9
    assert snap == {**BODY, "spec": {"workers": {"replicas": 4}}}


def test_the_checkpoint_volume_fields_are_classed_created_once() -> None:
    assert set(edits.CREATED_ONCE) == {"aggregator.checkpoint.storageSize", "aggregator.checkpoint.storageClassName"}
    assert not set(edits.CREATED_ONCE) & {*edits.LIVE, *edits.OPERATOR, *edits.IMMUTABLE}
    spec = _job().spec
    for path in edits.CREATED_ONCE:
        edits._get(spec, path)  # names a spec field


def test_the_aggregator_records_its_checkpoint_volume() -> None:
    for ck in ({}, {"storageSize": "1Gi"}, {"storageSize": "1Gi", "storageClassName": "fast"}):
        job = _job(aggregator={"checkpoint": ck})
        assert claims.recorded(_fleet(job)) == ck
    assert claims.recorded([Workload("j-aggregator", "aggregator", 1, 1)]) is None, "an older operator's: unknown"
    assert claims.recorded([Workload("j-aggregator", "aggregator", 1, 1, "not json")]) is None


def test_an_edit_of_the_checkpoint_volume_is_refused_naming_the_field() -> None:
    one = {"storageSize": "1Gi"}
    assert claims.refusal(None, _job(aggregator={"checkpoint": {"storageSize": "5Gi"}})) is None, "unknown: not refused"
    assert claims.refusal(one, _job(aggregator={"checkpoint": {"storageSize": "1Gi", "everyIterations": 3}})) is None
    resized = claims.refusal(one, _job(aggregator={"checkpoint": {"storageSize": "5Gi"}}))
    assert resized == (
        "spec.aggregator.checkpoint.storageSize cannot change from 1Gi to 5Gi: the checkpoint volume (PVC "
        "j-checkpoints) is made once, when the job starts, and never resized or replaced; keep storageSize 1Gi, or "
        "delete the job and create it again (its checkpoint goes with it)"
    )
    fast = {"storageSize": "1Gi", "storageClassName": "fast"}
    moved = claims.refusal(fast, _job(aggregator={"checkpoint": {"storageSize": "1Gi", "storageClassName": "slow"}}))
    assert moved is not None and moved.startswith("spec.aggregator.checkpoint.storageClassName cannot change from fast to slow:")
    assert "keep storageSize 1Gi and storageClassName fast" in moved
    defaulted = claims.refusal(fast, _job(aggregator={"checkpoint": {"storageSize": "1Gi"}}))
    assert defaulted is not None and "storageClassName cannot change from fast to the default class" in defaulted
    removed = claims.refusal(one, _job())
    assert removed is not None and removed.startswith(
        "spec.aggregator.checkpoint.storageSize cannot be removed (it is 1Gi; without it the aggregator would move to an "
        "emptyDir and restart from iteration 0): the checkpoint volume (PVC j-checkpoints) is made once")
    added = claims.refusal({}, _job(aggregator={"checkpoint": {"storageSize": "1Gi"}}))
    assert added is not None and "cannot be set to 1Gi on a job that runs on an emptyDir" in added
    assert "keep storageSize unset" in added
