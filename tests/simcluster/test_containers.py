"""Container mode: the simulated kubelet runs pods as runc containers of the images `make images`
built. The spec translation is checked as data; one real pod proves the root filesystem is
read-only (the worker image cannot write outside its volumes), the user is 10001, capabilities
are dropped, no_new_privs and seccomp are on, the volumes are at their mount paths, and the
image's own install works (pip check, a MuJoCo task steps)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakekube.harness import FakeKube
from tests.simcluster import oci
from tests.simcluster.harness import RunnerProcess, pod_processes, wait_for
from tests.simcluster.podspec import PodConfigError

Obj = dict[str, Any]
PODS = "/api/v1/namespaces/default/pods"


def runc_usable() -> None:
    """Container mode needs runc and root. Where they are missing the tests say so loudly (this
    project's CI machines have both: `make test` installs runc and builds the images)."""
    if shutil.which("runc") is None or os.geteuid() != 0:
        pytest.skip("CONTAINER MODE NOT TESTED: runc or root is missing on this machine "
                    "(scripts/fetch-image-tools.sh installs runc; it needs root)")


@pytest.fixture(scope="module")
def built() -> dict[str, oci.Image]:
    runc_usable()
    if not oci.IMAGES_JSON.exists():
        pytest.fail(f"{oci.IMAGES_JSON} is missing: run `make images` (make test does)")
    return oci.load_images()


def restricted(uid: int = 10001) -> tuple[Obj, Obj]:
    """The pod and container securityContext the operator writes (restricted Pod Security)."""
    pod_sc = {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
              "seccompProfile": {"type": "RuntimeDefault"}}
    sc = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True,
          "runAsNonRoot": True}
    return pod_sc, sc


def worker_pod(image: str, command: list[str], name: str = "probe") -> Obj:
    pod_sc, sc = restricted()
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": "0123456789abcdef"},
        "spec": {
            "restartPolicy": "Never", "securityContext": pod_sc, "terminationGracePeriodSeconds": 5,
            "containers": [{
                "name": "main", "image": image, "command": command, "securityContext": sc,
                "env": [{"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}}],
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "data", "mountPath": "/var/lib/esenas"},
                                 {"name": "cfg", "mountPath": "/etc/esenas", "readOnly": True},
                                 {"name": "token", "mountPath": "/var/run/esenas/token", "readOnly": True}],
            }],
            "volumes": [{"name": "tmp", "emptyDir": {}},
                        {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                        {"name": "cfg", "configMap": {"name": "cfg"}},
                        {"name": "token", "secret": {"secretName": "tok", "defaultMode": 0o440}}],
        },
    }


def test_runtime_spec_of_a_restricted_worker(built: dict[str, oci.Image]) -> None:
    image = built["worker"]
    pod = worker_pod(image.ref, ["esenas-worker"])
    c = pod["spec"]["containers"][0]
    spec = oci.runtime_spec(pod, c, image, ["esenas-worker"], {"A": "1"}, "/tmp",
                            [oci.Mount("/tmp", "/x/tmp", False), oci.Mount("/etc/esenas", "/x/cfg", True)],
                            image.rootfs, {"/etc/hosts": "/x/hosts"}, cgroup="/simcluster-t")
    assert spec["root"] == {"path": str(image.rootfs), "readonly": True}
    proc = spec["process"]
    assert proc["user"] == {"uid": 10001, "gid": 10001, "additionalGids": [10001]}
    assert all(v == [] for v in proc["capabilities"].values()), proc["capabilities"]
    assert proc["noNewPrivileges"] is True and "seccomp" in spec["linux"]
    assert {n["type"] for n in spec["linux"]["namespaces"]} == {"pid", "ipc", "uts", "mount"}  # no network: loopback
    binds = {m["destination"]: m["options"] for m in spec["mounts"] if m["type"] == "bind"}
    assert "ro" in binds["/etc/esenas"] and "rw" in binds["/tmp"] and "ro" in binds["/etc/hosts"]
    # Without a securityContext: containerd's default capabilities, a writable root, root's image user.
    bare: Obj = {"metadata": {"name": "b"}, "spec": {"containers": [{"name": "c", "image": image.ref}]}}
    plain = oci.runtime_spec(bare, bare["spec"]["containers"][0], image, ["true"], {}, "/", [], image.rootfs, {}, "/x")
    assert "CAP_NET_RAW" in plain["process"]["capabilities"]["bounding"] and plain["root"]["readonly"] is False
    assert plain["process"]["user"]["uid"] == 10001, "the image's USER"
    assert plain["process"]["noNewPrivileges"] is False and "seccomp" not in plain["linux"]


@pytest.mark.parametrize("change", [
    {"securityContext": {"privileged": True}},
    {"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "x.json"}}},
    {"lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}}},
    {"ports": [{"containerPort": 80, "hostPort": 80}]},
    {"tty": True},
    {"resources": {"limits": {"nvidia.com/gpu": 1}}},
])
def test_fields_that_cannot_be_honoured_are_refused(built: dict[str, oci.Image], change: Obj) -> None:
    image = built["worker"]
    pod = worker_pod(image.ref, ["true"])
    c = {**pod["spec"]["containers"][0], **change}
    with pytest.raises(PodConfigError, match="cannot be honoured in container mode"):
        oci.runtime_spec(pod, c, image, ["true"], {}, "/", [], image.rootfs, {}, "/x")


def test_an_image_that_was_not_built_is_never_pulled(built: dict[str, oci.Image]) -> None:
    with pytest.raises(PodConfigError) as err:
        oci.find_image(built, "docker.io/library/busybox:1.36")
    assert err.value.reason == "ErrImageNeverPull" and not err.value.retry


PROBE = r"""
import json, os, subprocess, sys
out = {"uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()), "writable": {}}
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
out.update(capeff=status["CapEff"].strip(), nnp=status["NoNewPrivs"].strip(), seccomp=status["Seccomp"].strip())
for d in ["/", "/opt/esenas", "/opt/esenas/lib", "/etc", "/usr/local/bin", "/var/tmp", "/home",
          "/etc/esenas", "/tmp", "/var/lib/esenas"]:
    try:
        with open(os.path.join(d, "probe.txt"), "w") as f:
            f.write("x")
        out["writable"][d] = True
    except OSError as exc:
        out["writable"][d] = exc.strerror
out["cm"] = open("/etc/esenas/greeting").read()
out["token"] = open("/var/run/esenas/token/token").read()
out["env"] = os.environ.get("FROM_CM")
out["hostname"] = open("/etc/hostname").read().strip()
out["home"] = os.environ["HOME"]
out["pipcheck"] = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True).stdout.strip()
import gymnasium
env = gymnasium.make("InvertedPendulum-v5")
env.reset(seed=0)
out["step"] = float(env.step(env.action_space.sample())[1])
print("RESULT " + json.dumps(out), flush=True)
"""


@pytest.fixture
def container_runner(fakekube: FakeKube, tmp_path: Path, built: dict[str, oci.Image]) -> Iterator[RunnerProcess]:
    r = RunnerProcess(tmp_path, fakekube.kubeconfig, "--containers")
    yield r
    alive = r.alive()
    r.stop()
    assert alive, r.log()[-3000:]
    assert not pod_processes(str((tmp_path / "run").resolve())), "containers outlived the runner"


def test_worker_container_cannot_write_outside_its_volumes(
        fakekube: FakeKube, container_runner: RunnerProcess, built: dict[str, oci.Image], tmp_path: Path) -> None:
    kube = fakekube.client
    kube.create("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "cfg"}, "data": {"greeting": "hello"}})
    kube.create("/api/v1/namespaces/default/secrets",
                {"metadata": {"name": "tok"}, "data": {"token": base64.b64encode(b"s3cret").decode()}})
    kube.create("/api/v1/namespaces/default/persistentvolumeclaims",
                {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                        "resources": {"requests": {"storage": "1Gi"}}}})
    kube.create(PODS, worker_pod(built["worker"].ref, ["python3", "-c", PROBE]))
    phase = wait_for(lambda: (p := (kube.get(f"{PODS}/probe").get("status") or {}).get("phase")) in ("Succeeded", "Failed")
                     and p, 120, "probe pod finished")
    logs = "\n".join(p.read_text(errors="replace") for p in (tmp_path / "run" / "pods").rglob("main.log"))
    assert phase == "Succeeded", f"{logs[-3000:]}\n{container_runner.log()[-3000:]}"
    result = json.loads(next(line for line in logs.splitlines() if line.startswith("RESULT "))[7:])
    assert (result["uid"], result["gid"], result["groups"]) == (10001, 10001, [10001])
    assert result["capeff"] == "0000000000000000" and result["nnp"] == "1" and result["seccomp"] == "2", result
    writable = result["writable"]
    assert writable.pop("/tmp") is True and writable.pop("/var/lib/esenas") is True, writable
    assert not {d: why for d, why in writable.items() if why != "Read-only file system"}, writable
    assert (result["cm"], result["token"], result["env"], result["hostname"]) == ("hello", "s3cret", "hello", "probe")
    assert result["home"] == "/home/esenas", "HOME from the image's /etc/passwd, as containerd sets it"
    assert result["pipcheck"] == "No broken requirements found.", result["pipcheck"]
    assert isinstance(result["step"], float)
    # The claim's folder on the node holds what the container wrote, owned by its user.
    (written,) = (tmp_path / "run" / "claims").rglob("probe.txt")
    assert written.stat().st_uid == 10001


def small_pod(name: str, image: str, script: str, policy: str, **container: Any) -> Obj:
    pod_sc, sc = restricted()
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"restartPolicy": policy, "securityContext": pod_sc, "terminationGracePeriodSeconds": 2,
                     "containers": [{"name": "main", "image": image, "command": ["python3", "-c", script],
                                     "securityContext": sc, "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                                     **container}],
                     "volumes": [{"name": "tmp", "emptyDir": {}}]}}


RESTARTS_ONCE = "import sys; open('/tmp/n', 'a').write('x'); sys.exit(0 if len(open('/tmp/n').read()) >= 2 else 3)"
IGNORES_TERM = ("import signal, time; signal.signal(signal.SIGTERM, lambda *a: print('got TERM', flush=True)); "
                "open('/tmp/ready', 'w').close(); time.sleep(600)")


def test_restart_exec_probe_and_sigkill_after_the_grace_period(
        fakekube: FakeKube, container_runner: RunnerProcess, built: dict[str, oci.Image]) -> None:
    kube, ref = fakekube.client, built["worker"].ref
    kube.create(PODS, small_pod("again", ref, RESTARTS_ONCE, "OnFailure"))
    kube.create(PODS, small_pod("stubborn", ref, IGNORES_TERM, "Always",
                                readinessProbe={"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1}))
    done = wait_for(lambda: (s := kube.get(f"{PODS}/again").get("status") or {}).get("phase") == "Succeeded" and s,
                    60, "again Succeeded")
    (cs,) = done["containerStatuses"]
    assert cs["restartCount"] == 1 and cs["state"]["terminated"]["exitCode"] == 0, cs  # exit 3, restart, emptyDir kept
    wait_for(lambda: any(c["type"] == "Ready" and c["status"] == "True"
                         for c in (kube.get(f"{PODS}/stubborn").get("status") or {}).get("conditions") or ()),
             60, "stubborn Ready by its exec probe (runc exec)")
    pids = pod_processes(str(container_runner.workdir.joinpath("run").resolve()))
    assert "default/stubborn" in pids.values(), pids
    started = time.monotonic()
    kube.delete(f"{PODS}/stubborn")
    wait_for(lambda: "default/stubborn" not in pod_processes(str(container_runner.workdir.joinpath("run").resolve())).values(),
             30, "stubborn killed")
    took = time.monotonic() - started
    log = next((container_runner.workdir / "run" / "pods" / "default").glob("stubborn-*/main.log")).read_text()
    assert "got TERM" in log and 2 <= took < 10, (took, log)  # SIGTERM first, SIGKILL after the 2 s grace


def test_a_command_missing_from_the_image_is_a_start_error(
        fakekube: FakeKube, container_runner: RunnerProcess, built: dict[str, oci.Image]) -> None:
    """As with containerd: terminated, reason StartError, exit code 128, runc's words as message."""
    kube = fakekube.client
    pod = small_pod("missing", built["worker"].ref, "", "Never")
    pod["spec"]["containers"][0]["command"] = ["/usr/bin/no-such-tool"]
    kube.create(PODS, pod)
    done = wait_for(lambda: (s := kube.get(f"{PODS}/missing").get("status") or {}).get("phase") == "Failed" and s,
                    60, "missing Failed")
    terminated = done["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "StartError" and terminated["exitCode"] == 128, terminated
    assert "no-such-tool" in terminated.get("message", ""), terminated
