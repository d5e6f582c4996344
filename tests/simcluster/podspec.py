"""Pure translation of one container of a pod spec into a local process launch.

The pod runner cannot create the container paths (/etc/esenas, /var/lib/esenas) or bind the
container ports (two pods both ask for 50051), so it maps them, by documented rules only:

- Mounts: every volume gets a local folder; any argument or env value that is, or starts with, a
  mountPath (at a path boundary, also after `--flag=`) is rewritten to the local folder.
- Ports: every containerPort gets a free local port; an argument after a flag whose name contains
  `port` (`--port 50051`, `--http-port=9090`), or an env var whose name ends in `PORT`, equal to a
  containerPort is rewritten to the local port. Nothing else is changed.
- Env: value, valueFrom (configMapKeyRef, secretKeyRef, fieldRef metadata.name/namespace/uid,
  status.podIP/hostIP -> 127.0.0.1, spec.nodeName, spec.serviceAccountName), envFrom, and $(VAR)
  expansion in command, args and env values, as the kubelet does.
- Image: `command` replaces the image ENTRYPOINT (see images.py), `args` its CMD.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

Obj = dict[str, Any]
_VAR: Final = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
LOCAL_IP: Final = "127.0.0.1"


class PodConfigError(Exception):
    """A pod that cannot start yet or at all (missing ConfigMap key, unsupported volume).

    `retry` is True where the kubelet would keep the pod Pending and try again (a ConfigMap or
    Secret not created yet), False where the spec itself cannot be run here.
    """

    def __init__(self, reason: str, message: str, retry: bool) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.retry = retry


@dataclass(frozen=True)
class Launch:
    """What to exec for one container: argv, the full environment, and the working directory."""

    argv: list[str]
    env: dict[str, str]
    cwd: str


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes $(VAR) expansion: known names are replaced, unknown left as written, $$ -> $."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env.get(name, m.group(0))

    return _VAR.sub(sub, value)


def _decoded(obj: Obj | None, kind: str) -> dict[str, str] | None:
    """The string data of a ConfigMap (data + binaryData) or a Secret (base64 data)."""
    if obj is None:
        return None
    if kind == "Secret":
        out = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
        out.update(obj.get("stringData") or {})
        return out
    out = dict(obj.get("data") or {})
    out.update({k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("binaryData") or {}).items()})
    return out


Lookup = Callable[[str, str], Obj | None]  # (kind, name) -> object in the pod's namespace or None


def _key_ref(ref: Obj, kind: str, lookup: Lookup, var: str) -> str | None:
    data = _decoded(lookup(kind, ref["name"]), kind)
    optional = bool(ref.get("optional", False))
    if data is None or ref["key"] not in data:
        if optional:
            return None
        what = f"{kind} {ref['name']!r}" if data is None else f"key {ref['key']!r} of {kind} {ref['name']!r}"
        raise PodConfigError("CreateContainerConfigError", f"env {var}: {what} not found", retry=True)
    return data[ref["key"]]


def _field_ref(pod: Obj, path: str, var: str) -> str:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    fields = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": LOCAL_IP,
        "status.hostIP": LOCAL_IP,
    }
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    if path not in fields:
        raise PodConfigError("CreateContainerConfigError", f"env {var}: fieldRef {path!r} is not supported here", retry=False)
    return str(fields[path])


def container_env(pod: Obj, container: Obj, lookup: Lookup) -> dict[str, str]:
    """The container's own environment (envFrom first, then env, in order, with $(VAR) expansion)."""
    env: dict[str, str] = {}
    for src in container.get("envFrom") or ():
        prefix = src.get("prefix", "")
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if field in src:
                ref = src[field]
                data = _decoded(lookup(kind, ref["name"]), kind)
                if data is None:
                    if ref.get("optional"):
                        continue
                    raise PodConfigError("CreateContainerConfigError", f"envFrom: {kind} {ref['name']!r} not found", retry=True)
                env.update({prefix + k: v for k, v in data.items()})
    for item in container.get("env") or ():
        name = item["name"]
        if "value" in item or "valueFrom" not in item:
            env[name] = expand(str(item.get("value", "")), env)
            continue
        src = item["valueFrom"]
        value: str | None
        if "configMapKeyRef" in src:
            value = _key_ref(src["configMapKeyRef"], "ConfigMap", lookup, name)
        elif "secretKeyRef" in src:
            value = _key_ref(src["secretKeyRef"], "Secret", lookup, name)
        elif "fieldRef" in src:
            value = _field_ref(pod, src["fieldRef"]["fieldPath"], name)
        else:
            raise PodConfigError("CreateContainerConfigError", f"env {name}: valueFrom {sorted(src)} is not supported here", retry=False)
        if value is not None:
            env[name] = value
    return env


def path_mapper(mounts: Mapping[str, str]) -> Callable[[str], str]:
    """Rewrites a value under a container mountPath to the local folder; the longest mount wins."""
    ordered = sorted(((m.rstrip("/") or "/", local) for m, local in mounts.items()), key=lambda p: -len(p[0]))

    def one(path: str) -> str:
        for mount, local in ordered:
            if mount == "/":
                return local + path
            if path == mount or path.startswith(mount + "/"):
                return local + path[len(mount):]
        return path

    def rewrite(value: str) -> str:
        if value.startswith("/"):
            return one(value)
        m = re.fullmatch(r"(-{1,2}[A-Za-z0-9_.-]+=)(/.*)", value)
        return m.group(1) + one(m.group(2)) if m else value

    return rewrite


def rewrite_port_args(args: list[str], ports: Mapping[int, int]) -> list[str]:
    """`--*port* N` and `--*port*=N` with N a containerPort get the mapped local port."""
    out: list[str] = []
    for i, arg in enumerate(args):
        m = re.fullmatch(r"(-{1,2}[A-Za-z0-9_-]*port[A-Za-z0-9_-]*=)(\d+)", arg)
        if m and int(m.group(2)) in ports:
            out.append(m.group(1) + str(ports[int(m.group(2))]))
        elif (i > 0 and re.fullmatch(r"-{1,2}[A-Za-z0-9_-]*port[A-Za-z0-9_-]*", args[i - 1])
              and arg.isdigit() and int(arg) in ports):
            out.append(str(ports[int(arg)]))
        else:
            out.append(arg)
    return out


def build_launch(
    pod: Obj,
    container: Obj,
    entrypoint: list[str],
    lookup: Lookup,
    mounts: Mapping[str, str],
    ports: Mapping[int, int],
    base_env: Mapping[str, str],
) -> Launch:
    """argv, env and cwd for one container, by the rules in this module's docstring.

    `entrypoint` is the image's ENTRYPOINT (used only without `command`); `mounts` maps each
    container mountPath to its local folder; `ports` each containerPort to its local port;
    `base_env` is what every process gets (PATH, proxy settings) before the container's env.
    """
    own = container_env(pod, container, lookup)
    command = container.get("command")
    args = container.get("args") or []
    argv = [expand(a, own) for a in ([*command, *args] if command else [*entrypoint, *args])]
    if not argv:
        raise PodConfigError("CreateContainerError", f"container {container['name']!r}: no command and no image entrypoint", retry=False)
    rewrite = path_mapper(mounts)
    argv = rewrite_port_args([rewrite(a) for a in argv], ports)
    for name, value in list(own.items()):
        value = rewrite(value)
        if name.upper().endswith("PORT") and value.isdigit() and int(value) in ports:
            value = str(ports[int(value)])
        own[name] = value
    env = {**base_env, "HOSTNAME": pod["metadata"]["name"], **own}
    workdir = container.get("workingDir")
    cwd = rewrite(workdir) if workdir else mounts.get("/tmp", base_env.get("HOME", "/"))
    return Launch(argv=argv, env=env, cwd=cwd)


def container_ports(container: Obj) -> dict[str, int]:
    """Named containerPorts (name -> number); unnamed ones under their number as a string."""
    return {str(p.get("name") or p["containerPort"]): int(p["containerPort"]) for p in container.get("ports") or ()}


def resolve_target_port(pod: Obj, target: int | str) -> int | None:
    """A Service targetPort (number or port name) as a containerPort of this pod, or None."""
    for c in (pod.get("spec") or {}).get("containers") or ():
        for p in c.get("ports") or ():
            if (isinstance(target, str) and not target.isdigit() and p.get("name") == target) or (
                str(target).isdigit() and int(target) == int(p["containerPort"])
            ):
                return int(p["containerPort"])
    return int(target) if str(target).isdigit() else None
