"""The kubelet stand-in: every pod becomes local processes in a per-pod folder, and its status
(phase, conditions, podIP, containerStatuses with restartCount) is written back to the API.

Volumes: ConfigMap and Secret volumes are written as files (items, defaultMode honoured),
emptyDir is a per-pod folder (kept across container restarts), a PVC a per-claim folder that
outlives pods (this is what lets a restarted aggregator resume), and the claim is marked Bound.
Each pod's container ports get free local ports, recorded in the pod annotation PORTS_ANNOTATION
as {"containerPort": localPort}; the process ids are in containerStatuses[].containerID
(`simcluster://PID`). See podspec.py for how paths and ports reach the process.
A container with runAsNonRoot whose user would be root (its runAsUser, else its image's USER)
waits in CreateContainerConfigError, as on a real node.

Container mode (`images` given): each container runs with runc from the built image (oci.py,
runc.py), its volumes bind-mounted at their mountPaths and owned as a kubelet would (emptyDir
0777, fsGroup on claims and ConfigMap/Secret files), so nothing in its paths is rewritten; ports
are still mapped (no network namespace).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from tests.simcluster import images, oci
from tests.simcluster.container import Container, now
from tests.simcluster.kubeapi import Kube
from tests.simcluster.podspec import Launch, PodConfigError, build_launch
from tests.simcluster.runc import RuncBox

log = logging.getLogger("simcluster.kubelet")
Obj = dict[str, Any]
PORTS_ANNOTATION: Final = "simcluster.esenas.dev/ports"
NODE: Final = "simcluster"
#: Set in every pod process: the runner's workdir, so a test can find leftovers in /proc.
MARKER_ENV: Final = "SIMCLUSTER_RUN"


def pod_path(ns: str, name: str, sub: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/pods/{name}{sub}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_files(folder: Path, data: dict[str, bytes], items: list[Obj] | None, mode: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    chosen = [(i["key"], i["path"], i.get("mode", mode)) for i in items] if items else [(k, k, mode) for k in data]
    for k, rel, m in chosen:
        if k not in data:
            raise PodConfigError("FailedMount", f"key {k!r} not found", retry=True)
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[k])
        path.chmod(m)


def verify_run_as_non_root(pod: Obj, container: Obj, image_user: str | None) -> None:
    """The kubelet's runAsNonRoot check before it creates a container, with its messages.

    The effective runAsNonRoot/runAsUser is the container's, else the pod's; without a runAsUser
    the image's USER decides. An image whose user is unknown here (not a project image) passes.
    """
    pod_sc, own_sc = pod["spec"].get("securityContext") or {}, container.get("securityContext") or {}
    if not own_sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
        return
    where = f'(pod: "{pod["metadata"]["name"]}_{pod["metadata"]["namespace"]}({pod["metadata"]["uid"]})", ' \
        f'container: {container["name"]})'
    uid = own_sc.get("runAsUser", pod_sc.get("runAsUser"))
    if uid is not None:
        if uid == 0:
            raise PodConfigError("CreateContainerConfigError", f"container's runAsUser breaks non-root policy {where}",
                                 retry=False)
        return
    if image_user is None:
        return
    name = image_user.split(":", 1)[0]
    if not name or name == "0":
        raise PodConfigError("CreateContainerConfigError", f"container has runAsNonRoot and image will run as root {where}",
                             retry=False)
    if not name.isdigit():
        raise PodConfigError("CreateContainerConfigError", f"container has runAsNonRoot and image has non-numeric user "
                             f"({name}), cannot verify user is non-root {where}", retry=False)


def own_volume(path: Path, kind: str, fs_group: int | None) -> None:
    """Container mode: a volume's owner and mode as a kubelet leaves them for a non-root user:
    emptyDir and claims writable (0777, or group fsGroup with setgid), ConfigMap/Secret files
    of group fsGroup (their defaultMode decides who reads them)."""
    if kind in ("emptyDir", "persistentVolumeClaim"):
        if fs_group is None:
            path.chmod(0o777)
        else:
            os.chown(path, -1, fs_group)
            path.chmod(0o2777)
    elif fs_group is not None:
        for p in [path, *path.rglob("*")]:
            os.chown(p, -1, fs_group)


class PodRun:
    """One pod's processes and status; started when the pod appears, stopped when it goes."""

    def __init__(self, kubelet: Kubelet, pod: Obj) -> None:
        self.kubelet = kubelet
        self.pod = pod
        meta = pod["metadata"]
        self.ns, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.dir = kubelet.workdir / "pods" / self.ns / f"{self.name}-{self.uid[:8]}"
        self.containers: list[Container] = []
        self.boxes: dict[str, RuncBox] = {}  # container mode: by container name
        self.volume_kinds: dict[str, str] = {}
        self.port_map: dict[int, int] = {}
        self.message = ""
        self.reason = ""
        self.started = now()
        self.stopped = asyncio.Event()
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def ready(self) -> bool:
        return bool(self.containers) and all(c.state.ready for c in self.containers)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._boot()), asyncio.create_task(self._status_writer())]

    async def _boot(self) -> None:
        spec = self.pod["spec"]
        for c in spec.get("containers") or ():
            for p in c.get("ports") or ():
                self.port_map[int(p["containerPort"])] = free_port()
        await self.kubelet.kube.merge_patch(pod_path(self.ns, self.name), {"metadata": {"annotations": {
            PORTS_ANNOTATION: json.dumps({str(k): v for k, v in self.port_map.items()})}}})
        self.changed()
        while True:
            try:
                await self.kubelet.refresh_refs(self.pod)
                mounts_by_volume = await self._volumes()
                launches = [self._launch(c, mounts_by_volume) for c in spec.get("containers") or ()]
                break
            except PodConfigError as exc:
                self.reason, self.message = exc.reason, exc.message
                self.changed()
                if not exc.retry:
                    log.error("pod %s/%s cannot run: %s", self.ns, self.name, exc)
                    return
                await asyncio.sleep(1.0)
        self.reason = self.message = ""
        policy = spec.get("restartPolicy", "Always")
        for c, launch in zip(spec.get("containers") or (), launches, strict=True):
            container = Container(c, launch, self.port_map, policy, self.dir / f"{c['name']}.log", self.changed,
                                  backoff=self.kubelet.backoff, probe_period=self.kubelet.probe_period,
                                  box=self.boxes.get(c["name"]))
            self.containers.append(container)
        for container in self.containers:
            container.start()
        self.changed()

    async def _volumes(self) -> dict[str, Path]:
        """Every volume's local folder, with ConfigMap/Secret files written."""
        out: dict[str, Path] = {}
        kube = self.kubelet.kube
        for vol in self.pod["spec"].get("volumes") or ():
            name = vol["name"]
            local = self.dir / "volumes" / name
            if "emptyDir" in vol:
                local.mkdir(parents=True, exist_ok=True)
            elif "configMap" in vol or "secret" in vol:
                is_cm = "configMap" in vol
                src = vol["configMap"] if is_cm else vol["secret"]
                ref = src["name"] if is_cm else src["secretName"]
                obj = await kube.get(f"/api/v1/namespaces/{self.ns}/{'configmaps' if is_cm else 'secrets'}/{ref}")
                if obj is None and not src.get("optional"):
                    raise PodConfigError("FailedMount", f"volume {name!r}: {'configmap' if is_cm else 'secret'} {ref!r} not found", retry=True)
                obj = obj or {}
                data = {k: v.encode() for k, v in (obj.get("data") or {}).items()} if is_cm else {
                    k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
                if is_cm:
                    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
                if local.exists():
                    shutil.rmtree(local)
                _write_files(local, data, src.get("items"), int(src.get("defaultMode", 0o644)))
            elif "persistentVolumeClaim" in vol:
                claim = vol["persistentVolumeClaim"]["claimName"]
                local = await self.kubelet.claim_dir(self.ns, claim)
            else:
                raise PodConfigError("FailedMount", f"volume {name!r}: type {sorted(set(vol) - {'name'})} is not simulated", retry=False)
            out[name] = local
            self.volume_kinds[name] = next(k for k in ("emptyDir", "configMap", "secret", "persistentVolumeClaim") if k in vol)
            if self.kubelet.images is not None:
                own_volume(local, self.volume_kinds[name], (self.pod["spec"].get("securityContext") or {}).get("fsGroup"))
        return out

    def _launch(self, c: Obj, volumes: dict[str, Path]) -> Launch:
        if self.kubelet.images is not None:
            return self._container_launch(c, volumes, self.kubelet.images)
        verify_run_as_non_root(self.pod, c, images.image_user(str(c.get("image", ""))))
        mounts: dict[str, str] = {}
        for m in c.get("volumeMounts") or ():
            if m["name"] not in volumes:
                raise PodConfigError("CreateContainerConfigError", f"volumeMount {m['name']!r}: no such volume", retry=False)
            local = volumes[m["name"]] / m.get("subPath", "")
            mounts[m["mountPath"]] = str(local).rstrip("/")
        tmp = mounts.get("/tmp") or str(self.dir / "tmp")
        Path(tmp).mkdir(parents=True, exist_ok=True)
        base = {
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1",
            MARKER_ENV: str(self.kubelet.workdir), "SIMCLUSTER_POD": f"{self.ns}/{self.name}",
            **self.kubelet.proxy_env,
        }
        objects = self.kubelet.lookup_cache

        def lookup(kind: str, name: str) -> Obj | None:
            return objects.get((kind, self.ns, name))

        return build_launch(self.pod, c, images.entrypoint(str(c.get("image", ""))), lookup, mounts, self.port_map, base)

    def _container_launch(self, c: Obj, volumes: dict[str, Path], built: dict[str, oci.Image]) -> Launch:
        """Container mode: the runc bundle of one container (self.boxes), and its launch (argv and
        env as the container sees them, for the record and for probes)."""
        image = oci.find_image(built, str(c.get("image", "")))
        verify_run_as_non_root(self.pod, c, image.user)
        mounts: list[oci.Mount] = []
        for m in c.get("volumeMounts") or ():
            if m["name"] not in volumes:
                raise PodConfigError("CreateContainerConfigError", f"volumeMount {m['name']!r}: no such volume", retry=False)
            read_only = bool(m.get("readOnly")) or self.volume_kinds[m["name"]] in ("configMap", "secret")
            mounts.append(oci.Mount(m["mountPath"], str(volumes[m["name"]] / m.get("subPath", "")), read_only))
        base = {**image.env, "HOSTNAME": self.name, MARKER_ENV: str(self.kubelet.workdir),
                "SIMCLUSTER_POD": f"{self.ns}/{self.name}", **self.kubelet.proxy_env}
        objects = self.kubelet.lookup_cache

        def lookup(kind: str, name: str) -> Obj | None:
            return objects.get((kind, self.ns, name))

        launch = build_launch(self.pod, c, image.entrypoint, lookup, {}, self.port_map, base)
        if "HOME" not in launch.env:
            sc, pod_sc = c.get("securityContext") or {}, self.pod["spec"].get("securityContext") or {}
            uid = sc.get("runAsUser", pod_sc.get("runAsUser", oci.image_ids(image)[0] or 0))
            launch.env["HOME"] = oci.home_of(image, int(uid))
        argv = launch.argv + (image.cmd if not c.get("command") and not c.get("args") else [])
        cwd = c.get("workingDir") or image.workdir
        etc = self.dir / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n127.0.0.1\t{self.name}\n")
        (etc / "hostname").write_text(self.name + "\n")
        cid = f"{self.kubelet.run_id}-{self.ns}-{self.name}-{c['name']}-{self.uid[:8]}"
        config = oci.runtime_spec(self.pod, c, image, argv, launch.env, cwd, mounts, image.rootfs,
                                  {"/etc/hosts": str(etc / "hosts"), "/etc/hostname": str(etc / "hostname")},
                                  cgroup=f"/simcluster-{cid}")
        if c["name"] not in self.boxes:
            self.boxes[c["name"]] = RuncBox(cid, self.kubelet.workdir / "runc", self.dir / "bundles" / c["name"],
                                            config, image.rootfs)
        return Launch(argv=argv, env=launch.env, cwd=cwd)

    def changed(self) -> None:
        self._dirty.set()

    def phase(self) -> str:
        if not self.containers or any(c.state.pid is not None or not c.state.finished for c in self.containers):
            return "Pending" if not any(c.state.pid or c.state.restart_count for c in self.containers) else "Running"
        ok = all(c.state.last_exit is not None and c.state.last_exit[0] == 0 for c in self.containers)
        return "Succeeded" if ok else "Failed"

    def status(self) -> Obj:
        phase = self.phase()
        ready = self.ready and phase == "Running"
        t = now()

        def cond(type_: str, value: bool) -> Obj:
            return {"type": type_, "status": "True" if value else "False", "lastProbeTime": None, "lastTransitionTime": t}

        out: Obj = {
            "phase": phase, "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.started, "qosClass": "Burstable",
            "conditions": [cond("PodScheduled", True), cond("Initialized", True),
                           cond("ContainersReady", ready), cond("Ready", ready)],
            "containerStatuses": [c.status(str(c.spec.get("image", ""))) for c in self.containers],
        }
        if self.reason:
            out["reason"], out["message"] = self.reason, self.message
            out["containerStatuses"] = [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False,
                                         "restartCount": 0, "started": False,
                                         "state": {"waiting": {"reason": self.reason, "message": self.message}}}
                                        for c in self.pod["spec"].get("containers") or ()]
        return out

    async def _status_writer(self) -> None:
        """Coalesces changes: one status write per burst, keeping transition times of unchanged conditions."""
        last: Obj | None = None
        while True:
            await self._dirty.wait()
            await asyncio.sleep(0.05)
            self._dirty.clear()
            status = self.status()
            if last is not None:
                old = {c["type"]: c for c in last["conditions"]}
                for c in status["conditions"]:
                    if c["type"] in old and old[c["type"]]["status"] == c["status"]:
                        c["lastTransitionTime"] = old[c["type"]]["lastTransitionTime"]
            if status == last:
                continue
            try:
                if await self.kubelet.kube.merge_patch(pod_path(self.ns, self.name, "/status"), {"status": status}) is None:
                    return  # the pod is gone
                last = status
            except Exception as exc:
                log.warning("status of pod %s/%s: %s", self.ns, self.name, exc)
                self._dirty.set()
                await asyncio.sleep(0.5)

    async def stop(self, grace: float) -> None:
        """Ends the boot first (a pod deleted while it starts must not start its containers
        afterwards), then stops every container."""
        if self._tasks:
            boot = self._tasks[0]
            boot.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await boot
        await asyncio.gather(*(c.stop(grace) for c in self.containers))
        for box in self.boxes.values():  # also those of containers that never started
            await box.delete()
            box.release()
        for t in self._tasks:
            t.cancel()
        self.stopped.set()


class Kubelet:
    """Runs every pod the API server holds (one simulated node) until the pod is deleted."""

    def __init__(self, kube: Kube, workdir: Path, proxy_env: dict[str, str], on_stopped: Callable[[Obj], None],
                 backoff: float = 1.0, probe_period: float = 1.0, images: dict[str, oci.Image] | None = None) -> None:
        self.kube = kube
        self.workdir = workdir
        #: container mode: the built images pods run from with runc; None: pods are local processes
        self.images = images
        self.run_id = hashlib.sha256(str(workdir).encode()).hexdigest()[:8]  # cgroups are host-wide
        self.proxy_env = proxy_env
        self.on_stopped = on_stopped
        self.backoff = backoff
        self.probe_period = probe_period
        self.pods: dict[str, PodRun] = {}  # by uid
        #: (kind, namespace, name) -> ConfigMap/Secret, fetched fresh before each launch
        self.lookup_cache: dict[tuple[str, str, str], Obj] = {}
        self._stopping: dict[str, asyncio.Task[None]] = {}

    async def claim_dir(self, ns: str, claim: str) -> Path:
        """The claim's folder (by uid, so a re-created claim starts empty); marks the claim Bound."""
        path = f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim}"
        obj = await self.kube.get(path)
        if obj is None:
            raise PodConfigError("FailedScheduling", f"persistentvolumeclaim {claim!r} not found", retry=True)
        local = self.workdir / "claims" / ns / f"{claim}-{obj['metadata']['uid'][:8]}"
        local.mkdir(parents=True, exist_ok=True)
        if (obj.get("status") or {}).get("phase") != "Bound":
            size = ((obj.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", "1Gi")
            await self.kube.merge_patch(path + "/status", {"status": {
                "phase": "Bound", "accessModes": obj["spec"].get("accessModes", ["ReadWriteOnce"]), "capacity": {"storage": size}}})
        return local

    async def refresh_refs(self, pod: Obj) -> None:
        """Fetch the ConfigMaps and Secrets that env/envFrom name (volumes are fetched separately)."""
        ns = pod["metadata"]["namespace"]
        for c in pod["spec"].get("containers") or ():
            refs = [(k, s[f]["name"]) for s in c.get("envFrom") or () for f, k in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")) if f in s]
            refs += [(k, e["valueFrom"][f]["name"]) for e in c.get("env") or () if "valueFrom" in e
                     for f, k in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")) if f in e["valueFrom"]]
            for kind, name in refs:
                obj = await self.kube.get(f"/api/v1/namespaces/{ns}/{kind.lower()}s/{name}")
                if obj is None:
                    self.lookup_cache.pop((kind, ns, name), None)
                else:
                    self.lookup_cache[(kind, ns, name)] = obj

    async def on_pod(self, etype: str, pod: Obj) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        if etype == "DELETED" or meta.get("deletionTimestamp"):
            run = self.pods.get(uid)
            if run is not None and uid not in self._stopping:
                grace = float(meta.get("deletionGracePeriodSeconds") or pod["spec"].get("terminationGracePeriodSeconds", 30))
                self._stopping[uid] = asyncio.create_task(self._stop(run, grace))
            return
        if uid in self.pods:
            self.pods[uid].pod = pod
            return
        run = PodRun(self, pod)
        self.pods[uid] = run
        log.info("starting pod %s/%s", run.ns, run.name)
        run.start()

    async def _stop(self, run: PodRun, grace: float) -> None:
        log.info("stopping pod %s/%s (grace %.0f s)", run.ns, run.name, grace)
        await run.stop(grace)
        self.pods.pop(run.uid, None)
        self._stopping.pop(run.uid, None)
        if run.pod["metadata"].get("deletionTimestamp"):
            with contextlib.suppress(Exception):  # the kubelet's final delete after a graceful stop
                await self.kube.delete(pod_path(run.ns, run.name), grace=0)
        self.on_stopped(run.pod)

    async def shutdown(self, grace: float) -> None:
        """Stops every pod (the runner is exiting): SIGTERM, then SIGKILL after `grace` seconds."""
        await asyncio.gather(*(r.stop(grace) for r in list(self.pods.values())), *self._stopping.values(),
                             return_exceptions=True)
