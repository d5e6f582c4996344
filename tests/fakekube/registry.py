"""The resource types the fake API server serves: the built-in kinds the project touches,
plus whatever CustomResourceDefinitions register, with their discovery documents."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

ALL_VERBS: Final = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class ScalePaths:
    """Where a resource keeps its replica counts (CRD `subresources.scale` semantics)."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = None


@dataclass
class PrinterColumn:
    """One `additionalPrinterColumns` entry of a CRD (a Table column computed by JSONPath)."""

    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass
class ResourceType:
    """Everything the server needs to know about one (group, version, plural)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    status: bool = False
    scale: ScalePaths | None = None
    schema: dict[str, Any] | None = None
    printer_columns: list[PrinterColumn] = field(default_factory=list)
    custom: bool = False
    crd_name: str = ""
    list_kind: str = ""
    selectable: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.singular = self.singular or self.kind.lower()
        self.list_kind = self.list_kind or f"{self.kind}List"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def field_labels(self) -> frozenset[str]:
        """Field selector labels the real server supports for this resource."""
        extra = SELECTABLE.get((self.group, self.plural), ())
        return frozenset(("metadata.name", "metadata.namespace", *extra, *self.selectable))

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: one object set per (group, plural), whatever version reads it."""
        return (self.group, self.plural)

    def discovery(self) -> list[dict[str, Any]]:
        """The APIResource entries of this type (main resource plus subresources)."""
        main: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ALL_VERBS,
        }
        if self.short_names:
            main["shortNames"] = self.short_names
        if self.categories:
            main["categories"] = self.categories
        out = [main]
        if self.status:
            out.append({"name": f"{self.plural}/status", "singularName": "",
                        "namespaced": self.namespaced, "kind": self.kind,
                        "verbs": ["get", "patch", "update"]})
        if not self.group and self.plural == "pods":
            out.append({"name": "pods/eviction", "singularName": "", "namespaced": True,
                        "group": "policy", "version": "v1", "kind": "Eviction",
                        "verbs": ["create"]})
        if self.scale is not None:
            out.append({"name": f"{self.plural}/scale", "singularName": "",
                        "namespaced": self.namespaced, "group": "autoscaling", "version": "v1",
                        "kind": "Scale", "verbs": ["get", "patch", "update"]})
        return out


_INVOLVED = tuple(f"involvedObject.{f}" for f in (
    "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"))
_REGARDING = tuple(f"regarding.{f}" for f in (
    "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"))
# Field labels beyond metadata.name/namespace (the real kube-apiserver's field sets).
SELECTABLE: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("", "pods"): ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                   "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                   "status.podIP", "status.nominatedNodeName"),
    ("", "events"): (*_INVOLVED, "reason", "reportingComponent", "source", "type"),
    ("events.k8s.io", "events"): (*_REGARDING, "reason", "reportingController", "type"),
    ("", "secrets"): ("type",),
    ("", "namespaces"): ("status.phase",),
    ("", "nodes"): ("spec.unschedulable",),
    ("", "replicationcontrollers"): ("status.replicas",),
    ("apps", "replicasets"): ("status.replicas",),
    ("batch", "jobs"): ("status.successful",),
}


def _rt(gv: str, plural: str, kind: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    group, _, version = gv.rpartition("/")
    return ResourceType(group=group, version=version, plural=plural, kind=kind,
                        namespaced=namespaced, **kw)


_REPLICAS = ScalePaths(".spec.replicas", ".status.replicas", None)

BUILTINS: Final[list[ResourceType]] = [
    _rt("v1", "namespaces", "Namespace", False, short_names=["ns"], status=True),
    _rt("v1", "configmaps", "ConfigMap", short_names=["cm"]),
    _rt("v1", "secrets", "Secret"),
    _rt("v1", "services", "Service", short_names=["svc"], status=True, categories=["all"]),
    _rt("v1", "endpoints", "Endpoints", short_names=["ep"]),
    _rt("v1", "events", "Event", short_names=["ev"]),
    _rt("v1", "pods", "Pod", short_names=["po"], status=True, categories=["all"]),
    _rt("v1", "persistentvolumeclaims", "PersistentVolumeClaim", short_names=["pvc"], status=True),
    _rt("v1", "serviceaccounts", "ServiceAccount", short_names=["sa"]),
    _rt("v1", "nodes", "Node", False, short_names=["no"], status=True),
    _rt("apps/v1", "deployments", "Deployment", short_names=["deploy"], status=True,
        scale=_REPLICAS, categories=["all"]),
    _rt("apps/v1", "statefulsets", "StatefulSet", short_names=["sts"], status=True,
        scale=_REPLICAS, categories=["all"]),
    _rt("apps/v1", "replicasets", "ReplicaSet", short_names=["rs"], status=True,
        scale=_REPLICAS, categories=["all"]),
    _rt("batch/v1", "jobs", "Job", status=True, categories=["all"]),
    _rt("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy", short_names=["netpol"]),
    _rt("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", short_names=["pdb"],
        status=True),
    _rt("coordination.k8s.io/v1", "leases", "Lease"),
    _rt("rbac.authorization.k8s.io/v1", "roles", "Role"),
    _rt("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding"),
    _rt("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", False),
    _rt("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _rt("apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition",
        False, short_names=["crd", "crds"], status=True, categories=["api-extensions"]),
    _rt("events.k8s.io/v1", "events", "Event", short_names=["ev"]),
    _rt("autoscaling/v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler",
        short_names=["hpa"], status=True, categories=["all"]),
]


class Registry:
    """Maps (group, version, plural) to a ResourceType; CRDs add and remove entries."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        for rt in BUILTINS:
            self.add(rt)

    def add(self, rt: ResourceType) -> None:
        self._types[(rt.group, rt.version, rt.plural)] = rt

    def remove_crd(self, crd_name: str) -> list[ResourceType]:
        """Unregister every version a CRD served; returns what was removed."""
        gone = [rt for rt in self._types.values() if rt.custom and rt.crd_name == crd_name]
        for rt in gone:
            del self._types[(rt.group, rt.version, rt.plural)]
        return gone

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def all(self) -> list[ResourceType]:
        return list(self._types.values())

    def by_key(self, key: tuple[str, str]) -> list[ResourceType]:
        return [rt for rt in self._types.values() if rt.key == key]

    def groups(self) -> dict[str, list[str]]:
        """Group name to its served versions (core group excluded), in registration order."""
        out: dict[str, list[str]] = {}
        for rt in self._types.values():
            if rt.group and rt.version not in out.setdefault(rt.group, []):
                out[rt.group].append(rt.version)
        return out

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        """The APIResourceList of one group/version, or None when nothing serves it."""
        types = [rt for rt in self._types.values() if rt.group == group and rt.version == version]
        if not types:
            return None
        resources = [entry for rt in types for entry in rt.discovery()]
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": resources}

    def api_group_list(self) -> dict[str, Any]:
        groups = []
        for name, versions in self.groups().items():
            gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
            groups.append({"name": name, "versions": gvs, "preferredVersion": gvs[0]})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def api_group(self, group: str) -> dict[str, Any] | None:
        versions = self.groups().get(group)
        if not versions:
            return None
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs,
                "preferredVersion": gvs[0]}


def crd_resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """The ResourceTypes one CustomResourceDefinition serves (one per served version)."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    out = []
    for ver in spec.get("versions", []):
        if not ver.get("served", True):
            continue
        sub = ver.get("subresources") or {}
        scale = None
        if "scale" in sub:
            s = sub["scale"] or {}
            scale = ScalePaths(s.get("specReplicasPath", ".spec.replicas"),
                               s.get("statusReplicasPath", ".status.replicas"),
                               s.get("labelSelectorPath"))
        cols = [PrinterColumn(name=c["name"], type=c.get("type", "string"),
                              json_path=c["jsonPath"], description=c.get("description", ""),
                              priority=int(c.get("priority", 0)), format=c.get("format", ""))
                for c in ver.get("additionalPrinterColumns") or []]
        out.append(ResourceType(
            group=spec["group"], version=ver["name"], plural=names["plural"], kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            singular=names.get("singular", ""), short_names=list(names.get("shortNames", [])),
            categories=list(names.get("categories", [])), status="status" in sub, scale=scale,
            schema=(ver.get("schema") or {}).get("openAPIV3Schema"), printer_columns=cols,
            custom=True, crd_name=crd["metadata"]["name"],
            list_kind=names.get("listKind", ""),
            selectable=[f["jsonPath"].lstrip(".") for f in ver.get("selectableFields") or []],
        ))
    return out
