"""spec.relays through the real kubectl and the real operator: the relay tier appears with
``relays.replicas`` > 0, the workers dial it, the aggregator takes its large leases, and all of it
goes again when the field is removed (docs/relay-tier.md)."""

from __future__ import annotations

from typing import Any

from tests.fakekube.harness import FakeKube
from tests.integration.operator.opharness import OperatorProcess, job_doc
from tests.integration.operator.test_lifecycle import apply, children


def _container(cluster: FakeKube, kind_name: tuple[str, str]) -> dict[str, Any]:
    return dict(children(cluster, "rel")[kind_name]["spec"]["template"]["spec"]["containers"][0])


_CORE = (("Deployment", "rel-workers-0"), ("Deployment", "rel-aggregator"))


def _with_core(cluster: FakeKube, found: bool) -> dict[tuple[str, str], Any] | None:
    """The children once `found` holds and the workers and aggregator exist too: the operator
    creates children one call at a time, so the relay tier can appear before the workers."""
    kids = children(cluster, "rel")
    return kids if found and all(key in kids for key in _CORE) else None


def _relay_children(cluster: FakeKube) -> set[tuple[str, str]]:
    return {key for key in children(cluster, "rel") if key[1] == "rel-relays"}


def test_relays_come_with_the_field_and_go_when_it_is_removed(cluster: FakeKube, operator: OperatorProcess) -> None:
    doc = job_doc("rel", replicas=6, relays={"replicas": 2})
    apply(cluster, doc)
    kids = cluster.wait_for(lambda: _with_core(cluster, len(_relay_children(cluster)) == 3))
    relay = kids[("Deployment", "rel-relays")]
    assert relay["spec"]["replicas"] == 2
    pod = relay["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["esenas-relay"]
    args = container["args"]
    assert args[args.index("--upstream") + 1] == "rel-aggregator.default.svc:50051"
    assert args[args.index("--lease-items") + 1] == "16384"
    assert {"--tls-ca-file", "--tls-cert-file", "--tls-key-file", "--token-file"} <= set(args)
    assert container["env"] == [{"name": "ESENAS_RELAY_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert kids[("Service", "rel-relays")]["spec"]["selector"] == {"esenas.dev/job": "rel", "app.kubernetes.io/component": "relay"}
    np_from = kids[("NetworkPolicy", "rel-relays")]["spec"]["ingress"][0]["from"]
    assert np_from == [{"podSelector": {"matchLabels": {"esenas.dev/job": "rel", "app.kubernetes.io/component": "worker"}}}]
    worker = _container(cluster, ("Deployment", "rel-workers-0"))
    assert worker["args"][worker["args"].index("--aggregator") + 1] == "rel-relays.default.svc:50051"
    agg = _container(cluster, ("Deployment", "rel-aggregator"))
    assert agg["args"][-2:] == ["--max-lease-items", "16384"]

    del doc["spec"]["relays"]  # as a user deletes the block from the file
    apply(cluster, doc)
    cluster.wait_for(lambda: not _relay_children(cluster))
    worker = cluster.wait_for(lambda: (c := _container(cluster, ("Deployment", "rel-workers-0")))
                              ["args"][c["args"].index("--aggregator") + 1] == "rel-aggregator.default.svc:50051" and c)
    assert "--max-lease-items" not in _container(cluster, ("Deployment", "rel-aggregator"))["args"]
    assert ("Service", "rel-aggregator") in children(cluster, "rel")
    assert operator.alive()


def test_relays_per_worker_follow_kubectl_scale_and_roll_no_pod(cluster: FakeKube, operator: OperatorProcess) -> None:
    doc = job_doc("rel", replicas=150, relays={"workersPerRelay": 100})
    apply(cluster, doc)
    kids = cluster.wait_for(lambda: _with_core(cluster, ("Deployment", "rel-relays") in children(cluster, "rel")))
    assert kids[("Deployment", "rel-relays")]["spec"]["replicas"] == 2  # ceil(150 / 100)
    worker_template = kids[("Deployment", "rel-workers-0")]["spec"]["template"]
    agg_template = kids[("Deployment", "rel-aggregator")]["spec"]["template"]
    cluster.kubectl("scale", "esj/rel", "--replicas=450")
    cluster.wait_for(lambda: children(cluster, "rel")[("Deployment", "rel-relays")]["spec"]["replicas"] == 5)
    cluster.kubectl("scale", "esj/rel", "--replicas=0")
    cluster.wait_for(lambda: children(cluster, "rel")[("Deployment", "rel-relays")]["spec"]["replicas"] == 1)
    kids = children(cluster, "rel")
    # The workers' address and the aggregator's lease cap never changed: no pod was rolled.
    assert kids[("Deployment", "rel-workers-0")]["spec"]["template"] == worker_template
    assert kids[("Deployment", "rel-aggregator")]["spec"]["template"] == agg_template
    refused = cluster.kubectl("patch", "esj/rel", "--type=merge", "-p", '{"spec":{"relays":{"replicas":3}}}', check=False)
    assert refused.returncode != 0 and "spec.relays.replicas and spec.relays.workersPerRelay are mutually exclusive" in refused.stderr
    assert operator.alive()
