"""The pod runner: the Deployment controller, the kubelet and the cluster network in one asyncio
process, driven by watches on the API server (see kubelet.py, workloads.py, netproxy.py)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from pathlib import Path
from typing import Any

from tests.simcluster import oci
from tests.simcluster.kubeapi import Informer, Kube
from tests.simcluster.kubelet import Kubelet
from tests.simcluster.netproxy import ServiceProxy, service_name
from tests.simcluster.podspec import resolve_target_port
from tests.simcluster.workloads import DeploymentController

log = logging.getLogger("simcluster.runner")
Obj = dict[str, Any]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """A Service selector (equality only) matches a pod's labels; an empty one matches nothing."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class Runner:
    """Everything a cluster needs beyond the API server to run the operator's pods."""

    def __init__(self, kube: Kube, workdir: Path, backoff: float = 1.0, probe_period: float = 1.0,
                 images: dict[str, oci.Image] | None = None) -> None:
        self.kube = kube
        self.images = images  # container mode (runc) when given
        self.workdir = workdir
        self.proxy = ServiceProxy(self.resolve)
        self.kubelet: Kubelet | None = None
        self.backoff = backoff
        self.probe_period = probe_period
        self._rr = itertools.count()
        self._tasks: list[asyncio.Task[None]] = []
        self.services: Informer | None = None

    def resolve(self, host: str, port: int) -> tuple[str, int] | None:
        """Service DNS name and port -> 127.0.0.1 and the mapped port of a ready pod behind it."""
        found = service_name(host)
        if found is None or self.services is None or self.kubelet is None:
            return None
        name, ns = found
        svc = self.services.cache.get((ns, name))
        if svc is None:
            return None
        sport = next((p for p in svc["spec"].get("ports") or () if int(p["port"]) == port), None)
        if sport is None:
            return None
        selector = svc["spec"].get("selector") or {}
        backends: list[tuple[str, int]] = []
        for run in self.kubelet.pods.values():
            labels = run.pod["metadata"].get("labels") or {}
            if run.ns != ns or not run.ready or not selects(selector, labels) or run.pod["metadata"].get("deletionTimestamp"):
                continue
            target = resolve_target_port(run.pod, sport.get("targetPort", sport["port"]))
            if target is not None and target in run.port_map:
                backends.append(("127.0.0.1", run.port_map[target]))
        if not backends:
            return None
        return backends[next(self._rr) % len(backends)]

    async def start(self) -> int:
        """Starts the proxy and the watches; returns the proxy's port once the caches are synced."""
        await self.proxy.start()
        deployments = DeploymentController(self.kube, lambda uid: self.kubelet is not None and uid in self.kubelet.pods)
        kubelet = Kubelet(self.kube, self.workdir, self.proxy.env(), deployments.pod_stopped,
                          backoff=self.backoff, probe_period=self.probe_period, images=self.images)
        self.kubelet = kubelet

        async def on_pod(etype: str, pod: Obj) -> None:
            await kubelet.on_pod(etype, pod)
            await deployments.on_pod(etype, pod)

        self.services = Informer(self.kube, "/api/v1/services", self._noop)
        informers = [
            self.services,
            Informer(self.kube, "/api/v1/pods", on_pod),
            Informer(self.kube, "/apis/apps/v1/deployments", deployments.on_deployment),
        ]
        self._tasks = [asyncio.create_task(i.run(), name=f"informer {i.path}") for i in informers]
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in informers)), 30)
        return self.proxy.port

    @staticmethod
    async def _noop(etype: str, obj: Obj) -> None:
        return None

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stops the watches, then every pod's processes (SIGTERM, SIGKILL after grace)."""
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.kubelet is not None:
            await self.kubelet.shutdown(grace)
        await self.proxy.close()
