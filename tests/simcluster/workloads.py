"""The Deployment controller stand-in: pods as the Deployment asks, and its status written back.

Pods are owned by the Deployment directly (no ReplicaSet layer) and carry the template's hash in
the `pod-template-hash` label. A template change replaces the pods: with strategy Recreate no new
pod starts until every old pod's processes have stopped (two aggregators must never share a
checkpoint); with RollingUpdate old and new may overlap. Scaling down deletes the newest pods,
not-ready ones first. Each reconcile reads the pods fresh from the API, under a per-Deployment
lock, so the cache lag of a watch never creates a pod twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any, Final

from tests.simcluster.kubeapi import Kube, key
from tests.simcluster.kubelet import NODE

log = logging.getLogger("simcluster.workloads")
Obj = dict[str, Any]
HASH_LABEL: Final = "pod-template-hash"
_SUFFIX: Final = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: Obj) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def selector_string(match_labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


def pod_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or ())


def build_pod(deploy: Obj, thash: str) -> Obj:
    """A pod from the Deployment's template, owned by it."""
    meta, template = deploy["metadata"], deploy["spec"]["template"]
    tmeta = template.get("metadata") or {}
    name = f"{meta['name']}-{thash}-{''.join(secrets.choice(_SUFFIX) for _ in range(5))}"
    spec = json.loads(json.dumps(template["spec"]))
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec["nodeName"] = NODE
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {**(tmeta.get("labels") or {}), HASH_LABEL: thash},
            "annotations": dict(tmeta.get("annotations") or {}),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                 "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": spec,
    }


def deployment_status(deploy: Obj, pods: list[Obj], thash: str) -> Obj:
    """status.replicas/updated/ready/available, observedGeneration and the two usual conditions."""
    want = int(deploy["spec"].get("replicas", 1))
    ready = sum(pod_ready(p) for p in pods)
    updated = sum((p["metadata"].get("labels") or {}).get(HASH_LABEL) == thash for p in pods)
    available = ready >= want
    complete = updated == want and len(pods) == want and available
    return {
        "observedGeneration": deploy["metadata"].get("generation", 1),
        "replicas": len(pods),
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": max(0, want - ready),
        "conditions": [
            {"type": "Available", "status": "True" if available else "False",
             "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable"},
            {"type": "Progressing", "status": "True",
             "reason": "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated"},
        ],
    }


class DeploymentController:
    """Reconciles each Deployment whenever it or one of its pods changes."""

    def __init__(self, kube: Kube, running: Callable[[str], bool]) -> None:
        self.kube = kube
        self.running = running  # pod uid -> the kubelet still has its processes
        self.deployments: dict[tuple[str, str], Obj] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._pending: set[tuple[str, str]] = set()

    async def on_deployment(self, etype: str, obj: Obj) -> None:
        k = key(obj)
        if etype == "DELETED":
            self.deployments.pop(k, None)
            return
        self.deployments[k] = obj
        self.trigger(k)

    async def on_pod(self, etype: str, pod: Obj) -> None:
        for ref in pod["metadata"].get("ownerReferences") or ():
            if ref.get("kind") == "Deployment":
                self.trigger((pod["metadata"]["namespace"], ref["name"]))

    def pod_stopped(self, pod: Obj) -> None:
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.on_pod("STOPPED", pod)))

    def trigger(self, k: tuple[str, str]) -> None:
        """Coalesces bursts of events into one reconcile per Deployment."""
        if k in self._pending:
            return
        self._pending.add(k)
        asyncio.get_running_loop().create_task(self._reconcile_soon(k))

    async def _reconcile_soon(self, k: tuple[str, str]) -> None:
        await asyncio.sleep(0.05)
        self._pending.discard(k)
        lock = self._locks.setdefault(k, asyncio.Lock())
        async with lock:
            try:
                await self.reconcile(k)
            except Exception:
                log.exception("reconcile of deployment %s/%s failed", *k)
                await asyncio.sleep(1.0)
                self.trigger(k)

    async def reconcile(self, k: tuple[str, str]) -> None:
        ns, name = k
        base = f"/apis/apps/v1/namespaces/{ns}/deployments/{name}"
        deploy = await self.kube.get(base)
        if deploy is None or deploy["metadata"].get("deletionTimestamp"):
            return  # the garbage collector removes its pods
        spec = deploy["spec"]
        thash = template_hash(spec["template"])
        listing = await self.kube.request("GET", f"/api/v1/namespaces/{ns}/pods",
                                          query={"labelSelector": selector_string(spec["selector"].get("matchLabels") or {})})
        uid = deploy["metadata"]["uid"]
        owned = [p for p in listing.get("items") or ()
                 if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or ())]
        live = [p for p in owned if not p["metadata"].get("deletionTimestamp")
                and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        old = [p for p in live if (p["metadata"].get("labels") or {}).get(HASH_LABEL) != thash]
        new = [p for p in live if p not in old]
        want = int(spec.get("replicas", 1))
        for p in old:
            await self.kube.delete(f"/api/v1/namespaces/{ns}/pods/{p['metadata']['name']}")
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
        blocked = recreate and any(self.running(p["metadata"]["uid"]) for p in owned if p not in new)
        if len(new) < want and not blocked:
            for _ in range(want - len(new)):
                pod = await self.kube.create(f"/api/v1/namespaces/{ns}/pods", build_pod(deploy, thash))
                new.append(pod)
                log.info("deployment %s/%s: created pod %s", ns, name, pod["metadata"]["name"])
        elif len(new) > want:
            newest_first = sorted(new, key=lambda p: str(p["metadata"].get("creationTimestamp", "")), reverse=True)
            doomed = sorted(newest_first, key=pod_ready)[: len(new) - want]
            for p in doomed:
                await self.kube.delete(f"/api/v1/namespaces/{ns}/pods/{p['metadata']['name']}")
                log.info("deployment %s/%s: deleted pod %s (scale down)", ns, name, p["metadata"]["name"])
            new = [p for p in new if p not in doomed]
        status = deployment_status(deploy, new, thash)
        current = deploy.get("status") or {}
        if any(current.get(f) != v for f, v in status.items() if f != "conditions") or \
                [(c.get("type"), c.get("status")) for c in current.get("conditions") or ()] != \
                [(c["type"], c["status"]) for c in status["conditions"]]:
            await self.kube.merge_patch(base + "/status", {"status": status})
