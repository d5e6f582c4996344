"""The Pod Security Standards checks (levels `baseline` and `restricted`, version "latest") as a
pure function over a pod spec or a pod template's spec, worded like the real PodSecurity
admission plugin (k8s.io/pod-security-admission/policy/check_*.go), so a failure reads as on a
real cluster. Checks run in the plugin's order: baseline checks by id, then restricted ones by id;
a restricted check replaces the baseline check it overrides (capabilities, seccomp, hostPath).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

Obj = Mapping[str, Any]
LEVELS: Final = ("privileged", "baseline", "restricted")
#: Capabilities a baseline pod may add (the container runtime's default set).
BASELINE_CAPABILITIES: Final = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
SAFE_SYSCTLS: Final = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes"})
SELINUX_TYPES: Final = frozenset({"", "container_t", "container_init_t", "container_kvm_t",
                                  "container_engine_t"})
#: Volume sources the restricted level allows; every other source is a restricted type.
RESTRICTED_VOLUMES_OK: Final = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim",
    "projected", "secret"})
KNOWN_VOLUMES: Final = RESTRICTED_VOLUMES_OK | {
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi", "glusterfs",
    "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile", "vsphereVolume",
    "quobyte", "azureDisk", "portworxVolume", "photonPersistentDisk", "scaleIO", "storageos"}
APPARMOR_PREFIX: Final = "container.apparmor.security.beta.kubernetes.io/"
SECCOMP_OK: Final = ("RuntimeDefault", "Localhost")


@dataclass(frozen=True)
class Violation:
    """One failed check: the plugin's forbidden reason and its detail."""

    reason: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.reason} ({self.detail})" if self.detail else self.reason


def _plural(one: str, many: str, n: int) -> str:
    return one if n == 1 else many


def _quote(items: list[str]) -> str:
    return ", ".join(f'"{i}"' for i in items)


def _who(names: list[str]) -> str:
    """`container "a"` or `containers "a", "b"`, as the plugin names its offenders."""
    return f'{_plural("container", "containers", len(names))} {_quote(names)}'


def _containers(spec: Obj) -> list[Obj]:
    """Init, regular and ephemeral containers, in the order the plugin visits them."""
    out: list[Obj] = []
    for fld in ("initContainers", "containers", "ephemeralContainers"):
        out += [c for c in spec.get(fld) or () if isinstance(c, Mapping)]
    return out


def _sc(obj: Obj) -> Obj:
    sc = obj.get("securityContext")
    return sc if isinstance(sc, Mapping) else {}


def _offenders(spec: Obj, values: Callable[[Obj], list[str]]) -> tuple[list[str], list[str]]:
    """The containers for which `values` finds something, and everything it found, in order."""
    names: list[str] = []
    found: list[str] = []
    for c in _containers(spec):
        bad = values(c)
        if bad:
            names.append(c.get("name", ""))
            found += bad
    return names, found


def _windows(spec: Obj) -> bool:
    return ((spec.get("os") or {}).get("name")) == "windows"


def _sorted_unique(values: list[str]) -> list[str]:
    return sorted(set(values))


# ----- baseline ---------------------------------------------------------------------------
def _app_armor(spec: Obj, meta: Obj) -> Violation | None:
    bad: list[str] = []
    for key, value in sorted((meta.get("annotations") or {}).items()):
        if key.startswith(APPARMOR_PREFIX) and value != "runtime/default" \
                and not str(value).startswith("localhost/"):
            bad.append(f"{key}={value!s}")
    setters: list[str] = []
    if (_sc(spec).get("appArmorProfile") or {}).get("type") == "Unconfined":
        setters.append("pod")
    names = [c.get("name", "") for c in _containers(spec)
             if (_sc(c).get("appArmorProfile") or {}).get("type") == "Unconfined"]
    if names:
        setters.append(_who(names))
    if setters:
        bad.append(f'{" and ".join(setters)} must not set securityContext.appArmorProfile.type '
                   'to "Unconfined"')
    if not bad:
        return None
    return Violation(_plural("forbidden AppArmor profile", "forbidden AppArmor profiles", len(bad)),
                     ", ".join(bad))


def _capabilities_baseline(spec: Obj, meta: Obj) -> Violation | None:
    names, caps = _offenders(spec, lambda c: [str(a) for a in (_sc(c).get("capabilities") or {}).get("add") or ()
                                              if a not in BASELINE_CAPABILITIES])
    if not names:
        return None
    return Violation("non-default capabilities", f"{_who(names)} must not include "
                     f"{_quote(_sorted_unique(caps))} in securityContext.capabilities.add")


def _host_namespaces(spec: Obj, meta: Obj) -> Violation | None:
    used = [f"{f}=true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f) is True]
    return Violation("host namespaces", ", ".join(used)) if used else None


def _host_path(spec: Obj, meta: Obj) -> Violation | None:
    names = [v.get("name", "") for v in spec.get("volumes") or () if "hostPath" in v]
    if not names:
        return None
    return Violation("hostPath volumes", f'{_plural("volume", "volumes", len(names))} {_quote(names)}')


def _host_ports(spec: Obj, meta: Obj) -> Violation | None:
    names, ports = _offenders(spec, lambda c: [str(p["hostPort"]) for p in c.get("ports") or () if p.get("hostPort")])
    if not names:
        return None
    return Violation("hostPort", f'{_who(names)} {_plural("uses", "use", len(names))} '
                     f'{_plural("hostPort", "hostPorts", len(ports))} {", ".join(ports)}')


def _privileged(spec: Obj, meta: Obj) -> Violation | None:
    names = [c.get("name", "") for c in _containers(spec) if _sc(c).get("privileged") is True]
    if not names:
        return None
    return Violation("privileged", f"{_who(names)} must not set securityContext.privileged=true")


def _proc_mount(spec: Obj, meta: Obj) -> Violation | None:
    names, values = _offenders(spec, lambda c: [] if _sc(c).get("procMount") in (None, "Default")
                               else [str(_sc(c).get("procMount"))])
    if not names:
        return None
    return Violation("procMount", f"{_who(names)} must not set securityContext.procMount to "
                     f"{_quote(_sorted_unique(values))}")


def _se_linux(spec: Obj, meta: Obj) -> Violation | None:
    setters: list[str] = []
    types: list[str] = []
    user = role = False

    def bad(sc: Obj) -> bool:
        nonlocal user, role
        opts = sc.get("seLinuxOptions") or {}
        found = False
        if str(opts.get("type", "")) not in SELINUX_TYPES:
            types.append(str(opts["type"]))
            found = True
        if opts.get("user"):
            user = found = True
        if opts.get("role"):
            role = found = True
        return found

    if bad(_sc(spec)):
        setters.append("pod")
    names = [c.get("name", "") for c in _containers(spec) if bad(_sc(c))]
    if names:
        setters.append(_who(names))
    if not setters:
        return None
    parts = []
    if types:
        unique = _sorted_unique(types)
        parts.append(f'{_plural("type", "types", len(unique))} {_quote(unique)}')
    if user:
        parts.append("user may not be set")
    if role:
        parts.append("role may not be set")
    return Violation("seLinuxOptions", f'{" and ".join(setters)} set forbidden '
                     f'securityContext.seLinuxOptions: {"; ".join(parts)}')


def _seccomp_type(sc: Obj) -> str | None:
    profile = sc.get("seccompProfile")
    return None if not isinstance(profile, Mapping) else str(profile.get("type", ""))


def _setters(spec: Obj, on: Callable[[Obj], bool]) -> str:
    """`pod`, `container "a"`, or `pod and containers "a", "b"`: who sets what `on` looks for."""
    setters = ["pod"] if on(_sc(spec)) else []
    names = [c.get("name", "") for c in _containers(spec) if on(_sc(c))]
    if names:
        setters.append(_who(names))
    return " and ".join(setters)


def _seccomp_baseline(spec: Obj, meta: Obj) -> Violation | None:
    who = _setters(spec, lambda sc: _seccomp_type(sc) == "Unconfined")
    if not who:
        return None
    return Violation("seccompProfile", f'{who} must not set securityContext.seccompProfile.type to "Unconfined"')


def _sysctls(spec: Obj, meta: Obj) -> Violation | None:
    bad = [str(s.get("name", "")) for s in _sc(spec).get("sysctls") or ()
           if s.get("name") not in SAFE_SYSCTLS]
    return Violation("forbidden sysctls", ", ".join(bad)) if bad else None


def _host_process(spec: Obj, meta: Obj) -> Violation | None:
    who = _setters(spec, lambda sc: (sc.get("windowsOptions") or {}).get("hostProcess") is True)
    if not who:
        return None
    return Violation("hostProcess", f"{who} must not set securityContext.windowsOptions.hostProcess=true")


# ----- restricted -------------------------------------------------------------------------
def _privilege_escalation(spec: Obj, meta: Obj) -> Violation | None:
    if _windows(spec):
        return None
    names = [c.get("name", "") for c in _containers(spec)
             if _sc(c).get("allowPrivilegeEscalation") is not False]
    if not names:
        return None
    return Violation("allowPrivilegeEscalation != false",
                     f"{_who(names)} must set securityContext.allowPrivilegeEscalation=false")


def _capabilities_restricted(spec: Obj, meta: Obj) -> Violation | None:
    if _windows(spec):
        return None
    no_drop: list[str] = []
    adding: list[str] = []
    caps: list[str] = []
    for c in _containers(spec):
        found = _sc(c).get("capabilities") or {}
        if "ALL" not in (found.get("drop") or ()):
            no_drop.append(c.get("name", ""))
        added = [str(a) for a in found.get("add") or () if a != "NET_BIND_SERVICE"]
        if added:
            adding.append(c.get("name", ""))
            caps += added
    details = []
    if no_drop:
        details.append(f'{_who(no_drop)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{_who(adding)} must not include {_quote(_sorted_unique(caps))} in "
                       "securityContext.capabilities.add")
    return Violation("unrestricted capabilities", "; ".join(details)) if details else None


def _restricted_volumes(spec: Obj, meta: Obj) -> Violation | None:
    names: list[str] = []
    types: list[str] = []
    for v in spec.get("volumes") or ():
        sources = [k for k in v if k != "name"]
        bad = [k if k in KNOWN_VOLUMES else "unknown" for k in sources
               if k not in RESTRICTED_VOLUMES_OK]
        if bad or not sources:
            names.append(v.get("name", ""))
            types += bad or ["unknown"]
    if not names:
        return None
    unique = _sorted_unique(types)
    return Violation("restricted volume types", (
        f'{_plural("volume", "volumes", len(names))} {_quote(names)} '
        f'{_plural("uses", "use", len(names))} '
        f'{_plural("restricted volume type", "restricted volume types", len(unique))} '
        f"{_quote(unique)}"))


def _run_as_non_root(spec: Obj, meta: Obj) -> Violation | None:
    pod = _sc(spec).get("runAsNonRoot")
    setters = ["pod"] if pod is False else []
    explicit = [c.get("name", "") for c in _containers(spec) if _sc(c).get("runAsNonRoot") is False]
    implicit = [c.get("name", "") for c in _containers(spec)
                if _sc(c).get("runAsNonRoot") is None and pod is not True]
    if explicit:
        setters.append(_who(explicit))
    details = []
    if setters:
        details.append(f'{" and ".join(setters)} must not set securityContext.runAsNonRoot=false')
    if implicit:
        details.append(f"pod or {_who(implicit)} must set securityContext.runAsNonRoot=true")
    return Violation("runAsNonRoot != true", "; ".join(details)) if details else None


def _run_as_user(spec: Obj, meta: Obj) -> Violation | None:
    setters = ["pod"] if _sc(spec).get("runAsUser") == 0 else []
    names = [c.get("name", "") for c in _containers(spec) if _sc(c).get("runAsUser") == 0]
    if names:
        setters.append(_who(names))
    if not setters:
        return None
    return Violation("runAsUser=0", f'{" and ".join(setters)} must not set runAsUser=0')


def _seccomp_restricted(spec: Obj, meta: Obj) -> Violation | None:
    if _windows(spec):
        return None
    setters: list[str] = []
    values: list[str] = []
    pod = _seccomp_type(_sc(spec))
    if pod is not None and pod not in SECCOMP_OK:
        setters.append("pod")
        values.append(pod)
    explicit: list[str] = []
    implicit: list[str] = []
    for c in _containers(spec):
        mine = _seccomp_type(_sc(c))
        if mine is not None and mine not in SECCOMP_OK:
            explicit.append(c.get("name", ""))
            values.append(mine)
        elif mine is None and pod is None:
            implicit.append(c.get("name", ""))
    if explicit:
        setters.append(_who(explicit))
    details = []
    if setters:
        details.append(f'{" and ".join(setters)} must not set securityContext.seccompProfile.type '
                       f"to {_quote(_sorted_unique(values))}")
    if implicit:
        details.append(f"pod or {_who(implicit)} must set securityContext.seccompProfile.type to "
                       '"RuntimeDefault" or "Localhost"')
    return Violation("seccompProfile", "; ".join(details)) if details else None


Check = Callable[[Obj, Obj], Violation | None]
#: (check id, function), baseline then restricted, each sorted by id as the plugin runs them.
BASELINE: Final[tuple[tuple[str, Check], ...]] = (
    ("appArmorProfile", _app_armor), ("capabilities_baseline", _capabilities_baseline),
    ("hostNamespaces", _host_namespaces), ("hostPathVolumes", _host_path),
    ("hostPorts", _host_ports), ("privileged", _privileged), ("procMount", _proc_mount),
    ("seLinuxOptions", _se_linux), ("seccompProfile_baseline", _seccomp_baseline),
    ("sysctls", _sysctls), ("windowsHostProcess", _host_process))
RESTRICTED: Final[tuple[tuple[str, Check], ...]] = (
    ("allowPrivilegeEscalation", _privilege_escalation),
    ("capabilities_restricted", _capabilities_restricted),
    ("restrictedVolumes", _restricted_volumes), ("runAsNonRoot", _run_as_non_root),
    ("runAsUser", _run_as_user), ("seccompProfile_restricted", _seccomp_restricted))
#: Baseline checks that a restricted check replaces at the restricted level.
OVERRIDDEN: Final = frozenset({"capabilities_baseline", "hostPathVolumes", "seccompProfile_baseline"})


def check_pod(spec: Obj, level: str, metadata: Obj | None = None) -> list[Violation]:
    """Violations of `level` by a pod spec (or a template's spec); metadata for AppArmor annotations."""
    if level not in LEVELS:
        raise ValueError(f'level must be one of {", ".join(LEVELS)}, got "{level}"')
    if level == "privileged":
        return []
    checks = BASELINE if level == "baseline" else (
        *((i, f) for i, f in BASELINE if i not in OVERRIDDEN), *RESTRICTED)
    found = (check(spec, metadata or {}) for _, check in checks)
    return [v for v in found if v is not None]
