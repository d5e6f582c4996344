"""The API server's write rules, free of HTTP: create, update and patch with the status and
scale subresources, no-op detection, generation, admission (schema, CEL, built-in checks)."""

from __future__ import annotations

import copy
import json
import random
import uuid
from typing import Any, Final

from . import kinds, managed, psadmission
from .cel import check_rules
from .crd import check_crd, crd_status
from .errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    invalid,
    not_found,
    unsupported_media,
)
from .patching import json_patch, merge_patch, strategic_merge
from .registry import Registry, ResourceType, crd_resource_types
from .schema import Outcome
from .schema import process as process_schema
from .store import Obj, Store, now

NS_KEY: Final = ("", "namespaces")
CRD_KEY: Final = ("apiextensions.k8s.io", "customresourcedefinitions")
MERGE: Final = "application/merge-patch+json"
JSON: Final = "application/json-patch+json"
STRATEGIC: Final = "application/strategic-merge-patch+json"
APPLY: Final = "application/apply-patch+yaml"
_GEN_CHARS: Final = "bcdfghjklmnpqrstvwxz2456789"
#: etcd's default --max-request-bytes: the most a stored object can be (as JSON here).
ETCD_MAX_REQUEST_BYTES: Final = 1536 * 1024


def check_stored_size(obj: Obj) -> None:
    """etcd refuses a request over --max-request-bytes (1.5 MiB by default); the API server
    answers 413. A dry run never reaches etcd, so only real writes are checked."""
    size = len(json.dumps(obj, separators=(",", ":")).encode())
    if size > ETCD_MAX_REQUEST_BYTES:
        raise ApiError(413, "RequestEntityTooLarge",
                       "Request entity too large: etcdserver: request is too large")


def get_path(obj: Any, path: str) -> Any:
    """Value at a `.a.b.c` path (CRD scale paths), or None."""
    node = obj
    for part in path.strip(".").split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    node = obj
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _content(obj: Obj, skip_status: bool) -> Obj:
    """The part of an object whose change bumps metadata.generation."""
    return {k: v for k, v in obj.items()
            if k not in ("metadata", "apiVersion", "kind") and not (skip_status and k == "status")}


def _comparable(obj: Obj) -> Obj:
    """What a write must change to count: managedFields only by who owns what, not when."""
    out = copy.deepcopy(obj)
    meta = out.get("metadata", {})
    for fld in ("resourceVersion", "generation"):
        meta.pop(fld, None)
    for entry in meta.get("managedFields") or ():
        entry.pop("time", None)
    return out


class Writes:
    """Reads and writes of every object; removal is left to the subclass (the collector)."""

    def __init__(self, history: int = 10_000) -> None:
        self.registry = Registry()
        self.store = Store(history)
        self.ips = kinds.ClusterIPs()

    def _after_removal(self, key: tuple[str, str], gone: Obj, policy: str = "Background") -> None:
        """Hook: what the garbage collector does once an object is really gone."""
        raise NotImplementedError

    def _after_write(self, key: tuple[str, str], stored: Obj) -> None:
        """Hook: what the garbage collector does with an object just created or changed."""
        raise NotImplementedError

    # ----- reads ---------------------------------------------------------------------------
    def get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        obj = self.store.get(rt.key, ns, name)
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return self.view(rt, obj)

    def view(self, rt: ResourceType, obj: Obj) -> Obj:
        """The object as the requested version presents it."""
        out = copy.deepcopy(obj)
        out["apiVersion"] = rt.api_version
        return out

    def type_for(self, key: tuple[str, str]) -> ResourceType:
        return self.registry.by_key(key)[0]

    # ----- create --------------------------------------------------------------------------
    def create(self, rt: ResourceType, ns: str, body: Any, *, verb: str = "create",
               dry_run: bool = False, validation: str = "Warn", manager: str = "",
               force: bool = False, applied: bool = False) -> tuple[Obj, list[str]]:
        """POST; `applied`: a server-side apply that creates, owning only what it sent."""
        obj = self._incoming(rt, body)
        config = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            meta["namespace"] = ns
            space = self.store.get(NS_KEY, "", ns)
            if space is None:
                raise not_found("namespaces", "", ns)
            if space["metadata"].get("deletionTimestamp"):
                raise ApiError(403, "Forbidden", f'{rt.plural} "{meta.get("name", "")}" is '
                               f"forbidden: unable to create new content in namespace {ns} "
                               "because it is being terminated")
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = self._generate(rt, ns, meta["generateName"])
        name = meta.get("name", "")
        if not name:
            raise invalid(rt.kind, rt.group, "", [{
                "reason": "FieldValueRequired", "field": "metadata.name",
                "message": "Required value: name or generateName is required"}])
        if self.store.get(rt.key, ns if rt.namespaced else "", name) is not None:
            raise already_exists(rt.plural, rt.group, name)
        for fld in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                    "managedFields"):
            meta.pop(fld, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        if rt.custom or (rt.status and rt.key != NS_KEY):
            meta["generation"] = 1
        if rt.status:
            status = kinds.initial_status(rt)
            obj.pop("status", None)
            if status is not None:
                obj["status"] = status
        kinds.apply_defaults(rt, obj, self.ips)
        obj, warnings = self._admit(rt, obj, validation)
        warnings += self._pod_security(rt, obj, None)
        if rt.key == CRD_KEY:
            check_crd(obj)
            obj["status"] = crd_status(obj)
        if applied:
            config["metadata"].pop("managedFields", None)
            fields = managed.apply({"apiVersion": rt.api_version, "metadata": {}}, config,
                                   manager, "", force=True, custom=rt.custom,
                                   status_sub=rt.status)["metadata"].get("managedFields")
            obj["metadata"]["managedFields"] = fields
        else:
            managed.record_update(None, obj, manager, "", custom=rt.custom, status_sub=rt.status)
        if dry_run:
            return self.view(rt, obj), warnings
        check_stored_size(obj)
        stored = self.store.commit(rt.key, "ADDED", obj, None, verb, self._label(rt))
        if rt.key == CRD_KEY:
            self._register(stored)
        self._after_write(rt.key, stored)
        return self.view(rt, stored), warnings

    def _incoming(self, rt: ResourceType, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise bad_request(f"the body of the request must be a {rt.kind} object")
        obj = copy.deepcopy(body)
        if obj.get("kind") and obj["kind"] != rt.kind:
            raise bad_request(f'the API version in the data ({obj.get("apiVersion")}) or kind '
                              f'({obj["kind"]}) does not match the expected {rt.api_version}, '
                              f"{rt.kind}")
        if obj.get("apiVersion") and obj["apiVersion"] != rt.api_version:
            group = obj["apiVersion"].rpartition("/")[0]
            if group != rt.group:
                raise bad_request(f'the API version in the data ({obj["apiVersion"]}) does not '
                                  f"match the expected API version ({rt.api_version})")
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if not isinstance(obj.get("metadata", {}), dict):
            raise bad_request("metadata must be an object")
        return obj

    def _generate(self, rt: ResourceType, ns: str, prefix: str) -> str:
        while True:
            name = prefix[:58] + "".join(random.choice(_GEN_CHARS) for _ in range(5))
            if self.store.get(rt.key, ns if rt.namespaced else "", name) is None:
                return name

    def _label(self, rt: ResourceType, sub: str = "") -> str:
        base = f"{rt.group}/{rt.plural}" if rt.group else rt.plural
        return f"{base}/{sub}" if sub else base

    def _admit(self, rt: ResourceType, obj: Obj, validation: str,
               old: Obj | None = None) -> tuple[Obj, list[str]]:
        """Schema pruning/defaulting/validation and CEL rules (CRs), metadata/built-in checks."""
        out = Outcome()
        if rt.custom:
            obj, out = process_schema(obj, rt.schema)
            if not out.causes and rt.schema:
                check_rules(obj, old, rt.schema, "", out)
        kinds.check_name(rt, obj["metadata"]["name"], out)
        kinds.check_metadata(obj["metadata"], out)
        if not rt.custom:
            kinds.check_builtin(rt, obj, out)
        if out.unknown and validation == "Strict":
            fields = ", ".join(f'unknown field "{f}"' for f in out.unknown)
            raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a '
                              f"{rt.kind}: strict decoding error: {fields}")
        if out.causes:
            raise invalid(rt.kind, rt.group, obj["metadata"]["name"], out.causes)
        warnings = [f'unknown field "{f}"' for f in out.unknown] if validation == "Warn" else []
        return obj, warnings

    def _pod_security(self, rt: ResourceType, obj: Obj, old: Obj | None) -> list[str]:
        """PodSecurity admission by the namespace's pod-security.kubernetes.io labels."""
        if rt.key == NS_KEY:
            pods = self.store.items(("", "pods"), obj["metadata"]["name"])
            return psadmission.admit_namespace(obj, old, pods)
        if not rt.namespaced:
            return []
        space = self.store.get(NS_KEY, "", obj["metadata"].get("namespace", ""))
        labels = ((space or {}).get("metadata") or {}).get("labels") or {}
        return psadmission.admit(rt.key, obj, old, labels)

    # ----- update and patch ----------------------------------------------------------------
    def update(self, rt: ResourceType, ns: str, name: str, body: Any, sub: str = "", *,
               verb: str = "update", dry_run: bool = False, validation: str = "Warn",
               manager: str = "", force: bool = False) -> tuple[Obj, list[str]]:
        old = self._existing(rt, ns, name)
        new = self._incoming(rt, body)
        meta = new.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name "
                              f"on the URL ({name})")
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        if not rv and rt.custom:  # custom resources do not allow unconditional updates
            raise invalid(rt.kind, rt.group, name, [{
                "reason": "FieldValueInvalid", "field": "metadata.resourceVersion",
                "message": "Invalid value: 0x0: must be specified for an update"}])
        return self._replace(rt, old, new, sub, verb, dry_run, validation, manager)

    def patch(self, rt: ResourceType, ns: str, name: str, content_type: str, body: Any,
              sub: str = "", *, dry_run: bool = False, validation: str = "Warn",
              manager: str = "", force: bool = False) -> tuple[Obj, list[str]]:
        if content_type == STRATEGIC and rt.custom:
            raise unsupported_media(content_type, [JSON, MERGE, APPLY])
        current = self.store.get(rt.key, ns if rt.namespaced else "", name)
        if current is None:
            if content_type == APPLY and not sub:
                obj = dict(body) if isinstance(body, dict) else {}
                obj.setdefault("metadata", {}).setdefault("name", name)
                return self.create(rt, ns, obj, verb="patch", dry_run=dry_run,
                                   validation=validation, manager=manager, applied=True)
            raise not_found(rt.plural, rt.group, name)
        old = self.view(rt, current)
        if sub == "scale":
            scale = self.scale_of(rt, old)
            patched = self._apply_patch(content_type, scale, body)
            return self._set_replicas(rt, old, patched, "patch", dry_run, manager)
        if content_type == APPLY:
            if not isinstance(body, dict):
                raise bad_request("the apply configuration must be an object")
            config = self._incoming(rt, body)
            if (config.get("metadata") or {}).get("name", name) != name:
                raise bad_request(f"the name of the object ({config['metadata']['name']}) does "
                                  f"not match the name on the URL ({name})")
            new = managed.apply(old, config, manager, sub, force=force, custom=rt.custom,
                                status_sub=rt.status)
            return self._replace(rt, old, self._incoming(rt, new), sub, "patch", dry_run,
                                 validation, None)
        new = self._apply_patch(content_type, old, body)
        if not isinstance(new, dict):
            raise bad_request("the patch must leave an object")
        new_rv = (new.get("metadata") or {}).get("resourceVersion")
        if new_rv and new_rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        return self._replace(rt, old, self._incoming(rt, new), sub, "patch", dry_run, validation,
                             manager)

    @staticmethod
    def _apply_patch(content_type: str, target: Obj, body: Any) -> Any:
        if content_type == JSON:
            return json_patch(target, body)
        if not isinstance(body, dict):
            raise bad_request("the patch body must be a JSON object")
        if content_type == STRATEGIC:
            return strategic_merge(target, body)
        return merge_patch(target, body)

    def _existing(self, rt: ResourceType, ns: str, name: str) -> Obj:
        current = self.store.get(rt.key, ns if rt.namespaced else "", name)
        if current is None:
            raise not_found(rt.plural, rt.group, name)
        return self.view(rt, current)

    def _replace(self, rt: ResourceType, old: Obj, new: Obj, sub: str, verb: str,
                 dry_run: bool, validation: str,
                 manager: str | None = "kube-controller-manager") -> tuple[Obj, list[str]]:
        """Apply the subresource rules, keep immutable metadata, record who changed which
        fields (manager None: an apply that already did), and commit unless a no-op."""
        old_meta = old["metadata"]
        fields = (new.get("metadata") or {}).get("managedFields")
        if sub == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        elif rt.status:
            new = copy.deepcopy(new)
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        meta = new.setdefault("metadata", {})
        for fld in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "generation"):
            if fld in old_meta:
                meta[fld] = old_meta[fld]
            else:
                meta.pop(fld, None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        meta.pop("managedFields", None)
        if manager is None and fields:
            meta["managedFields"] = fields
        elif old_meta.get("managedFields"):
            meta["managedFields"] = copy.deepcopy(old_meta["managedFields"])
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise invalid(rt.kind, rt.group, old_meta["name"], [{
                    "reason": "FieldValueForbidden", "field": "metadata.finalizers",
                    "message": "Forbidden: no new finalizers can be added if the object is "
                               "being deleted"}])
        new, warnings = self._admit(rt, new, validation, old)
        if not sub:
            warnings += self._pod_security(rt, new, old)
        meta = new["metadata"]
        if rt.key == CRD_KEY:
            check_crd(new)
            fresh = crd_status(new)
            same = (old.get("status") or {}).get("acceptedNames") == fresh["acceptedNames"]
            new["status"] = copy.deepcopy(old["status"]) if same else fresh
        if manager is not None:
            managed.record_update(old, new, manager, sub, custom=rt.custom, status_sub=rt.status)
        if _comparable(new) == _comparable(old):
            return old, warnings
        if "generation" in old_meta and _content(new, rt.status) != _content(old, rt.status):
            meta["generation"] = int(old_meta["generation"]) + 1
        if dry_run:
            return new, warnings
        if old_meta.get("deletionTimestamp") and not meta.get("finalizers"):
            gone = self.store.commit(rt.key, "DELETED", new, old, verb, self._label(rt, sub))
            self._after_removal(rt.key, gone)
            return self.view(rt, gone), warnings
        check_stored_size(new)
        stored = self.store.commit(rt.key, "MODIFIED", new, old, verb, self._label(rt, sub))
        if rt.key == CRD_KEY:
            self._register(stored)
        self._after_write(rt.key, stored)
        return self.view(rt, stored), warnings

    # ----- scale ---------------------------------------------------------------------------
    def scale_of(self, rt: ResourceType, obj: Obj) -> Obj:
        """The autoscaling/v1 Scale view of an object with a scale subresource."""
        if rt.scale is None:
            raise not_found(f"{rt.plural}/scale", rt.group, obj["metadata"]["name"])
        meta = obj["metadata"]
        selector: Any = None
        if rt.scale.label_selector:
            selector = get_path(obj, rt.scale.label_selector)
        elif rt.group == "apps":
            match = (get_path(obj, ".spec.selector.matchLabels") or {})
            selector = ",".join(f"{k}={v}" for k, v in sorted(match.items())) or None
        status: dict[str, Any] = {"replicas": get_path(obj, rt.scale.status_replicas) or 0}
        if selector:
            status["selector"] = selector
        return {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                              "creationTimestamp") if k in meta},
            "spec": {"replicas": get_path(obj, rt.scale.spec_replicas) or 0},
            "status": status,
        }

    def get_scale(self, rt: ResourceType, ns: str, name: str) -> Obj:
        return self.scale_of(rt, self._existing(rt, ns, name))

    def update_scale(self, rt: ResourceType, ns: str, name: str, body: Any,
                     dry_run: bool = False, manager: str = "") -> tuple[Obj, list[str]]:
        return self._set_replicas(rt, self._existing(rt, ns, name), body, "update", dry_run,
                                  manager)

    def _set_replicas(self, rt: ResourceType, old: Obj, scale: Any, verb: str,
                      dry_run: bool, manager: str = "") -> tuple[Obj, list[str]]:
        if rt.scale is None:
            raise not_found(f"{rt.plural}/scale", rt.group, old["metadata"]["name"])
        replicas = (scale.get("spec") or {}).get("replicas") if isinstance(scale, dict) else None
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid("Scale", "autoscaling", old["metadata"]["name"], [{
                "reason": "FieldValueInvalid", "field": "spec.replicas",
                "message": f"Invalid value: {replicas!r}: must be greater than or equal to 0"}])
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(f"{rt.plural}", rt.group, old["metadata"]["name"])
        new = copy.deepcopy(old)
        set_path(new, rt.scale.spec_replicas, replicas)
        obj, warnings = self._replace(rt, old, new, "", verb, dry_run, "Ignore", manager)
        return self.scale_of(rt, obj), warnings

    def _register(self, crd: Obj) -> None:
        self.registry.remove_crd(crd["metadata"]["name"])
        for rt in crd_resource_types(crd):
            self.registry.add(rt)
