"""The PodSecurity admission plugin of a real kube-apiserver, driven by the namespace labels
`pod-security.kubernetes.io/{enforce,warn,audit}[-version]`: enforce refuses a Pod with 403,
warn answers `Warning` headers for Pods and for workloads with pod templates, and a namespace
write checks its labels and warns about existing pods the new enforce level would refuse.
Nothing is exempt. Audit has no audit log here, so it is validated and otherwise ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .errors import ApiError, invalid
from .podsecurity import LEVELS, check_pod

Obj = dict[str, Any]
PREFIX: Final = "pod-security.kubernetes.io/"
MODES: Final = ("enforce", "audit", "warn")
_VERSION: Final = re.compile(r"^v1\.(0|[1-9][0-9]*)$")
#: (group, plural) -> path of the pod template inside the object.
TEMPLATES: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("apps", "deployments"): ("spec", "template"),
    ("apps", "replicasets"): ("spec", "template"),
    ("apps", "statefulsets"): ("spec", "template"),
    ("apps", "daemonsets"): ("spec", "template"),
    ("batch", "jobs"): ("spec", "template"),
    ("batch", "cronjobs"): ("spec", "jobTemplate", "spec", "template"),
    ("", "replicationcontrollers"): ("spec", "template"),
    ("", "podtemplates"): ("template",),
}
PODS: Final = ("", "pods")
#: Pod fields a real cluster lets an update change without a new policy check.
_INSIGNIFICANT: Final = ("activeDeadlineSeconds", "tolerations")


@dataclass(frozen=True)
class Policy:
    """One mode's level and version, printed as `restricted:latest`."""

    level: str
    version: str = "latest"

    def __str__(self) -> str:
        return f"{self.level}:{self.version}"


PRIVILEGED: Final = Policy("privileged")
STRICTEST: Final = Policy("restricted")


def label_errors(labels: Mapping[str, Any]) -> list[dict[str, str]]:
    """422 causes for malformed pod-security labels on a namespace, worded like the plugin."""
    causes = []
    for mode in MODES:
        level = labels.get(PREFIX + mode)
        if level is not None and level not in LEVELS:
            causes.append({"reason": "FieldValueInvalid", "field": f"metadata.labels[{PREFIX}{mode}]",
                           "message": f'Invalid value: "{level}": must be one of '
                                      f'{", ".join(LEVELS)}'})
        version = labels.get(f"{PREFIX}{mode}-version")
        if version is not None and version != "latest" and not _VERSION.match(str(version)):
            causes.append({"reason": "FieldValueInvalid",
                           "field": f"metadata.labels[{PREFIX}{mode}-version]",
                           "message": f'Invalid value: "{version}": must be "latest" or "v1.x"'})
    return causes


def policies(labels: Mapping[str, Any]) -> dict[str, Policy]:
    """Each mode's policy; unlabelled is privileged, and a malformed label is the strictest."""
    out = {}
    for mode in MODES:
        level = labels.get(PREFIX + mode)
        version = labels.get(f"{PREFIX}{mode}-version") or "latest"
        if level is None:
            out[mode] = PRIVILEGED
        elif level not in LEVELS or (version != "latest" and not _VERSION.match(str(version))):
            out[mode] = STRICTEST
        else:
            out[mode] = Policy(str(level), str(version))
    return out


def _template(key: tuple[str, str], obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    node: Any = obj
    for part in TEMPLATES[key]:
        node = node.get(part) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else None


def _violations(policy: Policy, spec: Any, meta: Any) -> str:
    """`reason (detail), ...` for the policy, or "" when the spec complies."""
    if policy.level == "privileged" or not isinstance(spec, Mapping):
        return ""
    found = check_pod(spec, policy.level, meta if isinstance(meta, Mapping) else {})
    return ", ".join(str(v) for v in found)


def _significant(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """Whether a pod update changes more than the fields the real plugin lets through unchecked."""
    def relevant(pod: Mapping[str, Any]) -> tuple[Any, Any]:
        spec = {k: v for k, v in (pod.get("spec") or {}).items() if k not in _INSIGNIFICANT}
        notes = {k: v for k, v in ((pod.get("metadata") or {}).get("annotations") or {}).items()
                 if k.startswith("container.apparmor.") or k.startswith("seccomp.")}
        return spec, notes

    return relevant(new) != relevant(old)


def admit(key: tuple[str, str], obj: Obj, old: Obj | None, ns_labels: Mapping[str, Any]) -> list[str]:
    """Check a namespaced write; raise 403 when enforce refuses a Pod, else return the warnings."""
    is_pod = key == PODS
    if not is_pod and key not in TEMPLATES:
        return []
    modes = policies(ns_labels)
    meta = obj.get("metadata") or {}
    if is_pod:
        if old is not None and not _significant(obj, old):
            return []
        spec, pod_meta = obj.get("spec"), meta
    else:
        template = _template(key, obj)
        if template is None or (old is not None and template == _template(key, old)):
            return []
        spec, pod_meta = template.get("spec"), template.get("metadata")
    if is_pod:
        refused = _violations(modes["enforce"], spec, pod_meta)
        if refused:
            name = meta.get("name", "")
            raise ApiError(403, "Forbidden", f'pods "{name}" is forbidden: violates PodSecurity '
                           f'"{modes["enforce"]}": {refused}', name=name, kind="pods")
        if modes["warn"] == modes["enforce"]:
            return []
    warned = _violations(modes["warn"], spec, pod_meta)
    return [f'would violate PodSecurity "{modes["warn"]}": {warned}'] if warned else []


def admit_namespace(obj: Obj, old: Obj | None, pods: list[Obj]) -> list[str]:
    """Refuse malformed labels (422); warn about existing pods a new enforce level would refuse."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    causes = label_errors(labels)
    if causes:
        raise invalid("namespaces", "", meta.get("name", ""), causes)
    enforce = policies(labels)["enforce"]
    if old is None or enforce == policies((old.get("metadata") or {}).get("labels") or {})["enforce"]:
        return []
    by_reasons: dict[str, list[str]] = {}
    for pod in pods:
        spec = pod.get("spec")
        if enforce.level == "privileged" or not isinstance(spec, Mapping):
            continue
        reasons = ", ".join(v.reason for v in check_pod(spec, enforce.level, pod["metadata"]))
        if reasons:
            by_reasons.setdefault(reasons, []).append(pod["metadata"]["name"])
    if not by_reasons:
        return []
    out = [f'existing pods in namespace "{meta.get("name", "")}" violate the new PodSecurity '
           f'enforce level "{enforce}"']
    for reasons, names in by_reasons.items():
        more = len(names) - 1
        who = names[0] + (f" (and {more} other {'pod' if more == 1 else 'pods'})" if more else "")
        out.append(f"{who}: {reasons}")
    return out
