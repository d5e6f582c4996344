"""What the real API server does to built-in kinds on its own: names, metadata and a few
workload checks that catch operator bugs early, defaults, and initial status."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from typing import Any, Final

from .podvalidation import check_resources, check_scheduling
from .registry import ResourceType
from .schema import Outcome

_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED: Final = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_NAMED: Final = frozenset({"namespaces", "services"})
_WORKLOADS: Final = frozenset({"deployments", "statefulsets", "replicasets", "daemonsets"})
#: metadata.annotations, keys and values together (apimachinery TotalAnnotationSizeLimitB).
MAX_ANNOTATIONS_BYTES: Final = 256 * 1024
#: The values of a ConfigMap or a Secret (core MaxSecretSize).
MAX_DATA_BYTES: Final = 1024 * 1024


class ClusterIPs:
    """Hands out Service cluster IPs from 10.96.0.0/12, as the real allocator would."""

    def __init__(self) -> None:
        self._next = int(ipaddress.IPv4Address("10.96.0.10"))

    def take(self) -> str:
        self._next += 1
        return str(ipaddress.IPv4Address(self._next))


def check_name(rt: ResourceType, name: str, out: Outcome) -> None:
    """DNS-1123 label for namespaces and services, DNS-1123 subdomain for the rest."""
    if rt.plural in _LABEL_NAMED:
        if len(name) > 63 or not _LABEL.match(name):
            out.error("FieldValueInvalid", "metadata.name",
                      f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower '
                      "case alphanumeric characters or '-', and must start and end with an "
                      "alphanumeric character")
    elif len(name) > 253 or not _SUBDOMAIN.match(name):
        out.error("FieldValueInvalid", "metadata.name",
                  f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower '
                  "case alphanumeric characters, '-' or '.', and must start and end with an "
                  "alphanumeric character")


def _check_key(key: str, path: str, out: Outcome) -> None:
    prefix, _, name = key.rpartition("/")
    if (prefix and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix))) or len(name) > 63 or (
        not _QUALIFIED.match(name)
    ):
        out.error("FieldValueInvalid", path, f'Invalid value: "{key}": name part must consist of '
                  "alphanumeric characters, '-', '_' or '.'")


def check_metadata(meta: dict[str, Any], out: Outcome) -> None:
    """Labels and annotations are string maps with valid keys; label values are short."""
    for fld in ("labels", "annotations"):
        value = meta.get(fld)
        if value is None:
            continue
        if not isinstance(value, dict):
            out.error("FieldValueTypeInvalid", f"metadata.{fld}", "Invalid value: must be a map")
            continue
        for key, val in value.items():
            path = f"metadata.{fld}"
            _check_key(str(key), path, out)
            if not isinstance(val, str):
                out.error("FieldValueTypeInvalid", f"{path}.{key}",
                          f"Invalid value: {val!r}: must be a string")
            elif fld == "labels" and (len(val) > 63 or not _LABEL_VALUE.match(val)):
                out.error("FieldValueInvalid", path, f'Invalid value: "{val}": a valid label must '
                          "be an empty string or consist of alphanumeric characters, '-', '_' or "
                          "'.', and must start and end with an alphanumeric character")
    total = sum(len(str(k).encode()) + len(v.encode()) for k, v in (meta.get("annotations") or {}).items()
                if isinstance(v, str))
    if total > MAX_ANNOTATIONS_BYTES:
        out.error("FieldValueTooLong", "metadata.annotations",
                  f"Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes")
    for i, ref in enumerate(meta.get("ownerReferences") or []):
        for req in ("apiVersion", "kind", "name", "uid"):
            if not (isinstance(ref, dict) and ref.get(req)):
                out.error("FieldValueRequired", f"metadata.ownerReferences[{i}].{req}",
                          "Required value")
    if sum(1 for r in meta.get("ownerReferences") or [] if isinstance(r, dict)
           and r.get("controller")) > 1:
        out.error("FieldValueInvalid", "metadata.ownerReferences",
                  "Invalid value: only one reference can have Controller set to true")


def _decoded_size(value: str) -> int:
    """Bytes of a base64 value once decoded (its text length when it does not decode)."""
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return len(value.encode())


def _check_data_size(plural: str, obj: dict[str, Any], out: Outcome) -> None:
    """A ConfigMap's data plus binaryData, or a Secret's data, hold at most 1 MiB of values
    (keys are not counted, as in ValidateConfigMap and ValidateSecret)."""
    values = {k: v for k, v in (obj.get("data") or {}).items() if isinstance(v, str)}
    if plural == "configmaps":
        total = sum(len(v.encode()) for v in values.values())
        total += sum(_decoded_size(v) for v in (obj.get("binaryData") or {}).values() if isinstance(v, str))
        path = ""  # the real server names the whole object: "ConfigMap "x" is invalid: []: Too long"
    else:
        strings = {k: v.encode() for k, v in (obj.get("stringData") or {}).items() if isinstance(v, str)}
        sizes = {k: _decoded_size(v) for k, v in values.items()}
        sizes.update({k: len(v) for k, v in strings.items()})  # stringData overrides data
        total = sum(sizes.values())
        path = "data"
    if total > MAX_DATA_BYTES:
        out.error("FieldValueTooLong", path or "[]", f"Too long: must have at most {MAX_DATA_BYTES} bytes")


def _check_pod_spec(spec: Any, path: str, out: Outcome, kind: str) -> None:
    if not isinstance(spec, dict):
        out.error("FieldValueRequired", path, "Required value")
        return
    containers = spec.get("containers")
    if not containers:
        out.error("FieldValueRequired", f"{path}.containers", "Required value")
        return
    seen: set[str] = set()
    for i, c in enumerate(containers):
        for req in ("name", "image"):
            if not c.get(req):
                out.error("FieldValueRequired", f"{path}.containers[{i}].{req}", "Required value")
        if c.get("name") in seen:
            out.error("FieldValueDuplicate", f"{path}.containers[{i}].name",
                      f'Duplicate value: "{c.get("name")}"')
        seen.add(c.get("name", ""))
        check_resources(c.get("resources"), f"{path}.containers[{i}].resources", kind, out)
    check_scheduling(spec, path, out)


def check_builtin(rt: ResourceType, obj: dict[str, Any], out: Outcome) -> None:
    """The workload and service checks whose absence would hide real operator bugs."""
    if rt.group == "apps" and rt.plural in _WORKLOADS:
        spec = obj.get("spec") or {}
        selector = (spec.get("selector") or {}).get("matchLabels")
        if not spec.get("selector"):
            out.error("FieldValueRequired", "spec.selector", "Required value")
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if selector and any(labels.get(k) != v for k, v in selector.items()):
            out.error("FieldValueInvalid", "spec.template.metadata.labels",
                      f"Invalid value: {labels}: `selector` does not match template `labels`")
        replicas = spec.get("replicas", 0)
        if not isinstance(replicas, int) or replicas < 0:
            out.error("FieldValueInvalid", "spec.replicas",
                      f"Invalid value: {replicas}: must be greater than or equal to 0")
        _check_pod_spec((spec.get("template") or {}).get("spec"), "spec.template.spec", out, rt.kind)
    elif rt.group == "batch" and rt.plural == "jobs":
        _check_pod_spec(((obj.get("spec") or {}).get("template") or {}).get("spec"),
                        "spec.template.spec", out, rt.kind)
    elif rt.group == "" and rt.plural == "pods":
        _check_pod_spec(obj.get("spec"), "spec", out, rt.kind)
    elif rt.group == "" and rt.plural == "services":
        for i, port in enumerate((obj.get("spec") or {}).get("ports") or []):
            if not isinstance(port.get("port"), int):
                out.error("FieldValueRequired", f"spec.ports[{i}].port", "Required value")
    elif rt.group == "" and rt.plural in ("configmaps", "secrets"):
        for fld in ("data", "binaryData", "stringData"):
            for k, v in (obj.get(fld) or {}).items():
                if not isinstance(v, str):
                    out.error("FieldValueTypeInvalid", f"{fld}[{k}]",
                              f"Invalid value: {v!r}: must be a string")
        _check_data_size(rt.plural, obj, out)


def apply_defaults(rt: ResourceType, obj: dict[str, Any], ips: ClusterIPs) -> None:
    """The defaulting real clients rely on (replicas, Service type and cluster IP)."""
    spec = obj.get("spec")
    if rt.group == "apps" and rt.plural in _WORKLOADS and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
    if rt.group == "" and rt.plural == "services" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if "clusterIP" not in spec:
            spec["clusterIP"] = ips.take()
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    if rt.group == "" and rt.plural == "secrets":
        obj.setdefault("type", "Opaque")
    if rt.group == "" and rt.plural == "namespaces":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])


def initial_status(rt: ResourceType) -> dict[str, Any] | None:
    """Status a freshly created object of this kind has (None: no status key)."""
    if rt.custom:
        return None
    if rt.plural == "namespaces":
        return {"phase": "Active"}
    if rt.plural in ("pods", "persistentvolumeclaims"):
        return {"phase": "Pending"}
    if rt.plural == "services":
        return {"loadBalancer": {}}
    return {}
