"""The fake API server's whole state: Writes plus deletion with finalizers, the garbage
collector's ownerReference cascade (background, foreground, orphan), namespace termination
and CRD removal."""

from __future__ import annotations

import copy
from typing import Any, Final

from .errors import conflict, invalid
from .registry import ResourceType
from .store import Obj, now
from .writes import APPLY, CRD_KEY, JSON, MERGE, NS_KEY, STRATEGIC, Writes

__all__ = ["APPLY", "JSON", "MERGE", "STRATEGIC", "Cluster"]

INITIAL_NAMESPACES: Final = ("default", "kube-system", "kube-public", "kube-node-lease")


class Cluster(Writes):
    """Every object and type, with the write rules a real kube-apiserver applies."""

    def __init__(self, history: int = 10_000) -> None:
        super().__init__(history)
        ns_rt = self.registry.get("", "v1", "namespaces")
        assert ns_rt is not None
        for name in INITIAL_NAMESPACES:
            self.create(ns_rt, "", {"metadata": {"name": name}}, verb="init")

    # ----- delete --------------------------------------------------------------------------
    def delete(self, rt: ResourceType, ns: str, name: str, options: dict[str, Any] | None = None,
               *, verb: str = "delete", dry_run: bool = False) -> Obj:
        """Delete now, or mark deleting while finalizers remain; cascade to dependents."""
        options = options or {}
        old = self._existing(rt, ns, name)
        meta = old["metadata"]
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise conflict(rt.plural, rt.group, name, f"Precondition failed: UID in precondition: "
                           f'{pre["uid"]}, UID in object meta: {meta["uid"]}')
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        policy = options.get("propagationPolicy") or (
            "Orphan" if options.get("orphanDependents") else "Background")
        if policy not in ("Background", "Foreground", "Orphan"):
            raise invalid("DeleteOptions", "", "", [{
                "reason": "FieldValueNotSupported", "field": "propagationPolicy",
                "message": f'Unsupported value: "{policy}": supported values: "Foreground", '
                           '"Background", "Orphan", "nil"'}])
        if dry_run:
            return old
        if meta.get("deletionTimestamp"):
            return old
        finalizers = list(meta.get("finalizers") or [])
        if policy == "Foreground" and self._dependents(meta["uid"]):
            finalizers.append("foregroundDeletion")
        if rt.key == NS_KEY:
            return self._delete_namespace(rt, old, verb)
        if not finalizers:
            gone = self.store.commit(rt.key, "DELETED", old, old, verb, self._label(rt))
            self._after_removal(rt.key, gone, policy)
            return self.view(rt, gone)
        new = copy.deepcopy(old)
        new["metadata"].update(deletionTimestamp=now(), deletionGracePeriodSeconds=0,
                               finalizers=finalizers)
        stored = self.store.commit(rt.key, "MODIFIED", new, old, verb, self._label(rt))
        if policy == "Orphan":
            self._orphan(meta["uid"])
        elif policy == "Foreground":
            for key, dep in self._dependents(meta["uid"]):
                self._gc_delete(key, dep, "Foreground")
        return self.view(rt, stored)

    def delete_collection(self, rt: ResourceType, ns: str | None, items: list[Obj],
                          options: dict[str, Any] | None) -> None:
        for obj in items:
            meta = obj["metadata"]
            if self.store.get(rt.key, meta.get("namespace", ""), meta["name"]) is not None:
                self.delete(rt, meta.get("namespace", ""), meta["name"], options,
                            verb="deletecollection")

    def _delete_namespace(self, rt: ResourceType, old: Obj, verb: str) -> Obj:
        name = old["metadata"]["name"]
        new = copy.deepcopy(old)
        new["metadata"]["deletionTimestamp"] = now()
        new["status"] = {"phase": "Terminating"}
        stored = self.store.commit(rt.key, "MODIFIED", new, old, verb, self._label(rt))
        for key, obj in list(self.store.all_items()):
            if obj["metadata"].get("namespace") == name:
                self._gc_delete(key, obj, "Background")
        self._settle_namespace(name)
        return self.view(rt, self.store.get(NS_KEY, "", name) or stored)

    def _settle_namespace(self, name: str) -> None:
        space = self.store.get(NS_KEY, "", name)
        if space is None or not space["metadata"].get("deletionTimestamp"):
            return
        if any(o["metadata"].get("namespace") == name for _, o in self.store.all_items()):
            return
        gone = self.store.commit(NS_KEY, "DELETED", space, space, "gc", "namespaces")
        self._after_removal(NS_KEY, gone)

    # ----- the garbage collector -----------------------------------------------------------
    def _dependents(self, uid: str) -> list[tuple[tuple[str, str], Obj]]:
        return self.store.dependents(uid)

    def _gc_delete(self, key: tuple[str, str], obj: Obj, policy: str) -> None:
        meta = obj["metadata"]
        if self.store.get(key, meta.get("namespace", ""), meta["name"]) is None:
            return
        rt = self.type_for(key)
        self.delete(rt, meta.get("namespace", ""), meta["name"],
                    {"propagationPolicy": policy}, verb="gc")

    def _after_write(self, key: tuple[str, str], stored: Obj) -> None:
        """The collector deletes an object whose every owner is absent (a create that raced the
        owner's deletion, as a controller acting on a stale cache does), in the background."""
        meta = stored["metadata"]
        refs = [r for r in meta.get("ownerReferences") or [] if isinstance(r, dict)]
        if refs and not meta.get("deletionTimestamp") and all(self.store.by_id(r.get("uid", "")) is None for r in refs):
            self._gc_delete(key, stored, "Background")

    def _orphan(self, uid: str) -> None:
        for key, dep in self._dependents(uid):
            new = copy.deepcopy(dep)
            refs = [r for r in new["metadata"]["ownerReferences"] if r.get("uid") != uid]
            if refs:
                new["metadata"]["ownerReferences"] = refs
            else:
                new["metadata"].pop("ownerReferences")
            self.store.commit(key, "MODIFIED", new, dep, "gc", f"{key[0]}/{key[1]}".lstrip("/"))
        owner = self.store.by_id(uid)
        if owner is not None:
            self._drop_finalizer(owner[0], owner[1], "orphan")

    def _drop_finalizer(self, key: tuple[str, str], obj: Obj, finalizer: str) -> None:
        fins = obj["metadata"].get("finalizers") or []
        if finalizer not in fins:
            return
        rt = self.type_for(key)
        new = copy.deepcopy(obj)
        new["metadata"]["finalizers"] = [f for f in fins if f != finalizer]
        self._replace(rt, self.view(rt, obj), new, "", "gc", False, "Ignore")

    def _after_removal(self, key: tuple[str, str], gone: Obj, policy: str = "Background") -> None:
        """What the garbage collector and namespace/CRD controllers do after a removal."""
        meta = gone["metadata"]
        if key == CRD_KEY:
            for rt in self.registry.remove_crd(meta["name"]):
                for obj in self.store.items(rt.key):
                    self.store.commit(rt.key, "DELETED", obj, obj, "gc", self._label(rt))
                self.store.drop_resource(rt.key)
        if policy == "Orphan":
            self._orphan(meta["uid"])
        else:
            for dep_key, dep in self._dependents(meta["uid"]):
                self._gc_delete(dep_key, dep, policy)
        for ref in meta.get("ownerReferences") or []:
            owner = self.store.by_id(ref.get("uid", ""))
            if owner is not None and owner[1]["metadata"].get("deletionTimestamp") and not (
                self._dependents(ref["uid"])
            ):
                self._drop_finalizer(owner[0], owner[1], "foregroundDeletion")
        if meta.get("namespace"):
            self._settle_namespace(meta["namespace"])
