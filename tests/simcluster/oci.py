"""Container mode: one container of a pod spec as an OCI runtime spec (config.json) for runc.

Pure functions; runc.py runs the result. The images are the ones `make images` built
(build/images/images.json: reference, digest, unpacked root filesystem, image config).

What is honoured, as a kubelet with containerd would: command/args over the image's
ENTRYPOINT/CMD, the image's Env then the pod's env, workingDir, volumes bind-mounted at their
mountPaths (readOnly, subPath), readOnlyRootFilesystem, runAsUser/runAsGroup/fsGroup/
supplementalGroups, capabilities (containerd's default set, drop, add), allowPrivilegeEscalation
(no_new_privs), seccompProfile RuntimeDefault/Unconfined, resources.limits cpu/memory (cgroups),
a pid, ipc, uts and mount namespace per container, /etc/hosts and /etc/hostname.

Deliberate difference: no network namespace. The container shares the host's loopback, so ports
are mapped exactly as in process mode (podspec.py) and Service names go through the runner's proxy.
Any other field that would change behaviour and cannot be honoured here (privileged, hostPID,
hostPort, a Localhost seccomp profile, lifecycle hooks, tty/stdin, ...) raises PodConfigError:
never silently ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tests.simcluster.podspec import PodConfigError

Obj = dict[str, Any]
REPO: Final = Path(__file__).resolve().parents[2]
IMAGES_JSON: Final = REPO / "build" / "images" / "images.json"

#: containerd's default capability set (what a container gets before drop/add).
DEFAULT_CAPS: Final = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                       "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                       "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")
#: RuntimeDefault, approximated as a deny list of the syscalls containerd's default profile refuses
#: to an unprivileged container (its allow list is ~350 names; the effect on these images is the same).
SECCOMP_DENIED: Final = ("acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
                         "delete_module", "finit_module", "get_kernel_syms", "get_mempolicy", "init_module",
                         "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie",
                         "mbind", "mount", "move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at",
                         "perf_event_open", "personality", "pivot_root", "process_vm_readv", "process_vm_writev",
                         "ptrace", "query_module", "quotactl", "reboot", "request_key", "set_mempolicy", "setns",
                         "settimeofday", "stime", "swapoff", "swapon", "sysfs", "umount", "umount2", "unshare",
                         "uselib", "userfaultfd", "ustat", "vm86", "vm86old", "fsconfig", "fsmount", "fsopen",
                         "fspick", "move_mount", "open_tree")
#: Pod and container fields with no effect here or one that is reproduced; anything else that is
#: set and not handled below is refused.
_CONTAINER_OK: Final = {"name", "image", "imagePullPolicy", "command", "args", "env", "envFrom", "workingDir",
                        "ports", "volumeMounts", "securityContext", "resources", "readinessProbe",
                        "livenessProbe", "startupProbe", "terminationMessagePath", "terminationMessagePolicy"}
_POD_SC_OK: Final = {"runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "supplementalGroups",
                     "seccompProfile", "fsGroupChangePolicy"}
_CONTAINER_SC_OK: Final = {"runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem",
                           "allowPrivilegeEscalation", "capabilities", "seccompProfile", "privileged"}


@dataclass(frozen=True)
class Image:
    """One built image: where its unpacked root filesystem is and what its config says."""

    name: str
    ref: str
    digest: str
    rootfs: Path
    config: Obj

    @property
    def entrypoint(self) -> list[str]:
        return list(self.config.get("Entrypoint") or [])

    @property
    def cmd(self) -> list[str]:
        return list(self.config.get("Cmd") or [])

    @property
    def env(self) -> dict[str, str]:
        return dict(e.split("=", 1) for e in self.config.get("Env") or () if "=" in e)

    @property
    def user(self) -> str:
        return str(self.config.get("User") or "")

    @property
    def workdir(self) -> str:
        return str(self.config.get("WorkingDir") or "/")


def load_images(path: Path = IMAGES_JSON) -> dict[str, Image]:
    """The images `make images` built, by name (operator, aggregator, worker)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make images` first")
    raw = json.loads(path.read_text())
    images = {name: Image(name, i["ref"], i["digest"], Path(i["rootfs"]), i["config"]) for name, i in raw.items()}
    gone = [i.name for i in images.values() if not (i.rootfs / "opt").is_dir()]
    if gone:
        raise FileNotFoundError(f"{path}: the unpacked root filesystems of {gone} are gone from the cache: run `make images`")
    return images


def find_image(images: Mapping[str, Image], ref: str) -> Image:
    """The built image for a pod's `image:` (by reference, or by repository name and tag)."""
    for image in images.values():
        if ref in (image.ref, f"{image.ref}@{image.digest}", f"{image.ref.rsplit(':', 1)[0]}@{image.digest}"):
            return image
    raise PodConfigError("ErrImageNeverPull", f"image {ref!r} is not among the built images "
                         f"({', '.join(i.ref for i in images.values())}); nothing is pulled here", retry=False)


def _passwd_id(rootfs: Path, name: str, file: str) -> int:
    for line in (rootfs / "etc" / file).read_text().splitlines():
        parts = line.split(":")
        if parts[0] == name:
            return int(parts[2])
    raise PodConfigError("CreateContainerError", f"user or group {name!r} is not in the image's /etc/{file}", retry=False)


def image_ids(image: Image) -> tuple[int | None, int | None]:
    """The image USER as (uid, gid); None where it does not say (root, or the user's own group)."""
    user = image.user
    if not user:
        return None, None
    name, _, group = user.partition(":")
    uid = int(name) if name.isdigit() else _passwd_id(image.rootfs, name, "passwd")
    gid = (int(group) if group.isdigit() else _passwd_id(image.rootfs, group, "group")) if group else None
    return uid, gid


def home_of(image: Image, uid: int) -> str:
    """HOME as containerd sets it when the env has none: the user's home in /etc/passwd, else /."""
    passwd = image.rootfs / "etc" / "passwd"
    for line in passwd.read_text().splitlines() if passwd.exists() else ():
        parts = line.split(":")
        if len(parts) > 5 and parts[2] == str(uid):
            return parts[5]
    return "/"


def _refuse(what: str) -> PodConfigError:
    return PodConfigError("CreateContainerConfigError", f"{what} cannot be honoured in container mode", retry=False)


def check_supported(pod: Obj, container: Obj) -> None:
    """Refuses pod and container fields this runtime cannot honour (never ignores them silently)."""
    spec = pod["spec"]
    for field in ("hostPID", "hostIPC", "shareProcessNamespace", "hostUsers"):
        if spec.get(field) not in (None, False) and not (field == "hostUsers" and spec[field] is True):
            raise _refuse(f"spec.{field}")
    if spec.get("initContainers") or spec.get("ephemeralContainers"):
        raise _refuse("init and ephemeral containers")
    if spec.get("os", {}).get("name", "linux") != "linux":
        raise _refuse("spec.os")
    pod_sc = spec.get("securityContext") or {}
    for key in sorted(set(pod_sc) - _POD_SC_OK):
        raise _refuse(f"spec.securityContext.{key}")
    where = f"container {container['name']!r}"
    for key in sorted(set(container) - _CONTAINER_OK):
        if container[key] not in (None, False, {}, []):
            raise _refuse(f"{where}: {key}")
    sc = container.get("securityContext") or {}
    for key in sorted(set(sc) - _CONTAINER_SC_OK):
        raise _refuse(f"{where}: securityContext.{key}")
    if sc.get("privileged"):
        raise _refuse(f"{where}: privileged")
    for p in container.get("ports") or ():
        if p.get("hostPort") or p.get("hostIP"):
            raise _refuse(f"{where}: ports[].hostPort")
    for m in container.get("volumeMounts") or ():
        if m.get("subPathExpr") or m.get("mountPropagation") not in (None, "None"):
            raise _refuse(f"{where}: volumeMounts[{m['name']!r}] subPathExpr/mountPropagation")
    for key in (container.get("resources") or {}).get("limits") or {}:
        if key not in ("cpu", "memory", "ephemeral-storage"):
            raise _refuse(f"{where}: resources.limits.{key}")


def cpu_millis(value: str | int | float) -> int:
    text = str(value)
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def memory_bytes(value: str | int | float) -> int:
    m = re.fullmatch(r"([0-9.]+)([EPTGMK]i?|[eptgmk])?", str(value))
    if not m:
        raise PodConfigError("CreateContainerConfigError", f"memory quantity {value!r}", retry=False)
    units = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
             "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
    return int(float(m.group(1)) * units[m.group(2) or ""])


@dataclass(frozen=True)
class Mount:
    """A volume at its mountPath: the host folder or file, and whether it is read-only."""

    destination: str
    source: str
    read_only: bool


def _seccomp(profile: Obj | None) -> Obj | None:
    kind = (profile or {}).get("type", "Unconfined")
    if kind == "Unconfined":
        return None
    if kind != "RuntimeDefault":
        raise _refuse(f"seccompProfile {kind}")
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": list(SECCOMP_DENIED), "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}


def runtime_spec(pod: Obj, container: Obj, image: Image, argv: Sequence[str], env: Mapping[str, str], cwd: str,
                 mounts: Sequence[Mount], rootfs: Path, etc_files: Mapping[str, str], cgroup: str) -> Obj:
    """The OCI runtime spec (config.json) of one container.

    `argv`, `env` and `cwd` come from podspec.build_launch (ports mapped, $(VAR) expanded);
    `rootfs` is the image's root filesystem (or a writable overlay of it); `etc_files` maps
    /etc/hosts, /etc/hostname to host files; `cgroup` is the cgroupsPath.
    """
    check_supported(pod, container)
    pod_sc, sc = pod["spec"].get("securityContext") or {}, container.get("securityContext") or {}
    img_uid, img_gid = image_ids(image)
    uid = sc.get("runAsUser", pod_sc.get("runAsUser", img_uid if img_uid is not None else 0))
    gid = sc.get("runAsGroup", pod_sc.get("runAsGroup", img_gid if img_gid is not None else 0))
    extra = sorted({int(g) for g in [pod_sc.get("fsGroup"), *(pod_sc.get("supplementalGroups") or ())] if g is not None})
    caps_spec = sc.get("capabilities") or {}
    drop = {c if c.startswith("CAP_") else f"CAP_{c}" for c in caps_spec.get("drop") or ()}
    add = {c if c.startswith("CAP_") else f"CAP_{c}" for c in caps_spec.get("add") or ()}
    kept = set() if "CAP_ALL" in drop else set(DEFAULT_CAPS) - drop
    caps = sorted(kept | add)
    limits = (container.get("resources") or {}).get("limits") or {}
    resources: Obj = {}
    if "memory" in limits:
        resources["memory"] = {"limit": memory_bytes(limits["memory"])}
    if "cpu" in limits:
        resources["cpu"] = {"period": 100_000, "quota": max(1_000, cpu_millis(limits["cpu"]) * 100)}
    seccomp = _seccomp(sc.get("seccompProfile", pod_sc.get("seccompProfile")))
    fs_mounts: list[Obj] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    ]
    fs_mounts += [{"destination": dst, "type": "bind", "source": src, "options": ["rbind", "ro", "nosuid", "nodev"]}
                  for dst, src in sorted(etc_files.items())]
    fs_mounts += [{"destination": m.destination, "type": "bind", "source": m.source,
                   "options": ["rbind", "nosuid", "nodev", "ro" if m.read_only else "rw"]} for m in mounts]
    linux: Obj = {
        "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")],  # no "network": see the docstring
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        "cgroupsPath": cgroup,
        "resources": resources,
    }
    if seccomp is not None:
        linux["seccomp"] = seccomp
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": int(uid), "gid": int(gid), "additionalGids": extra},
            "args": list(argv),
            "env": [f"{k}={v}" for k, v in env.items()],
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []},
            "noNewPrivileges": sc.get("allowPrivilegeEscalation", True) is False,
        },
        "root": {"path": str(rootfs), "readonly": bool(sc.get("readOnlyRootFilesystem", False))},
        "hostname": pod["metadata"]["name"],
        "mounts": fs_mounts,
        "linux": linux,
    }
