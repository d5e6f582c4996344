"""Server-side apply and managedFields, as structured-merge-diff does them for the fields the
project's objects use.

Each writer is a field manager; metadata.managedFields holds, per (manager, operation,
subresource), the set of fields it owns, as FieldsV1 (`f:name`, `k:{"name":"worker"}` for an
element of an associative list, `v:"x"` for a set member, `.` for the element itself).

- An update (create, PUT, merge/JSON/strategic patch) gives its manager the fields whose value
  it changed, and takes them from every other manager.
- An apply owns exactly the fields of its configuration: a field it owned before and leaves
  out now is removed from the object, unless another manager owns it too. A field another
  manager owns with a different value is a conflict (409), unless `force=true` takes it over.

Lists are atomic unless Kubernetes declares them associative (`x-kubernetes-list-type: map`)
for built-in kinds; custom resources' lists are atomic, as in a CRD without list-type markers.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from .errors import ApiError
from .store import now

Path = tuple[str, ...]
Obj = dict[str, Any]

#: listMapKeys of the built-in associative lists the project's objects use (k8s.io/api markers).
LIST_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "imagePullSecrets": ("name",),
    "ownerReferences": ("uid",),
    "conditions": ("type",),
}
SET_LISTS: Final = frozenset({"finalizers"})
#: Metadata the server owns; never part of a field set.
_SERVER_META: Final = frozenset({"name", "namespace", "uid", "resourceVersion", "generation",
                                 "creationTimestamp", "deletionTimestamp", "managedFields",
                                 "deletionGracePeriodSeconds", "generateName", "selfLink"})


def _key(item: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    return "k:" + json.dumps({k: item.get(k) for k in keys}, separators=(",", ":"))


def _list_keys(name: str, items: list[Any], custom: bool, in_meta: bool) -> tuple[str, ...] | None:
    """The list-map keys of list `name`, or None when the list is atomic."""
    if custom and not in_meta:
        return None
    keys = LIST_KEYS.get(name)
    if keys is None or not all(isinstance(i, dict) and all(k in i for k in keys) for i in items):
        return None
    return keys


def leaves(obj: Any, *, custom: bool = False, status: bool | None = None) -> dict[Path, Any]:
    """Every owned-able field of obj with its value: scalars, empty maps, atomic lists, and the
    elements of associative lists and sets (those with their own entry `.`).

    status: None keeps everything, False drops `.status`, True keeps only `.status`.
    """
    out: dict[Path, Any] = {}

    def walk(node: Any, path: Path, name: str, in_meta: bool) -> None:
        if isinstance(node, dict) and node:
            for k, v in node.items():
                if not path and (k in ("apiVersion", "kind") or (status is False and k == "status")
                                 or (status is True and k != "status")):
                    continue
                if path == ("f:metadata",) and k in _SERVER_META:
                    continue
                walk(v, (*path, f"f:{k}"), k, in_meta or (path == () and k == "metadata"))
            return
        if isinstance(node, list) and path:
            if name in SET_LISTS and in_meta:
                for v in node:
                    out[(*path, "v:" + json.dumps(v))] = v
                return
            keys = _list_keys(name, node, custom, in_meta)
            if keys is not None:
                for item in node:
                    elem = (*path, _key(item, keys))
                    out[elem] = {k: item[k] for k in keys}
                    for k, v in item.items():
                        walk(v, (*elem, f"f:{k}"), k, in_meta)
                return
        if path:
            out[path] = node

    walk(obj, (), "", False)
    return out


def to_fields_v1(paths: Iterable[Path]) -> Obj:
    """The FieldsV1 tree of a set of paths."""
    root: Obj = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(part, {})
        node["\0own"] = True
    return _render(root)


def _render(node: Obj) -> Obj:
    own = node.pop("\0own", False)
    out = {k: _render(v) for k, v in node.items()}
    if own and out:
        out["."] = {}
    return out


def from_fields_v1(tree: Mapping[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    if not tree and prefix:
        out.add(prefix)
    for k, v in tree.items():
        if k == ".":
            out.add(prefix)
        else:
            out |= from_fields_v1(v or {}, (*prefix, k))
    return out


def _ident(entry: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(entry.get("manager", "")), str(entry.get("operation", "")),
            str(entry.get("subresource", "")))


class Ownership:
    """The managedFields of one object, as sets of paths per (manager, operation, subresource)."""

    def __init__(self, entries: Iterable[Mapping[str, Any]] | None) -> None:
        self.sets: dict[tuple[str, str, str], set[Path]] = {}
        self.meta: dict[tuple[str, str, str], Obj] = {}
        for e in entries or ():
            ident = _ident(e)
            self.sets[ident] = from_fields_v1(e.get("fieldsV1") or {})
            self.meta[ident] = {k: v for k, v in e.items() if k != "fieldsV1"}

    def others(self, ident: tuple[str, str, str]) -> set[Path]:
        return set().union(*(s for i, s in self.sets.items() if i != ident))

    def take(self, ident: tuple[str, str, str], paths: set[Path], api_version: str, *,
             replace: bool = False, shared: bool = False) -> None:
        """Give ident the paths (all of its set when replace); unless shared (an apply that
        agrees with the value), they leave every other manager."""
        for other, owned in self.sets.items():
            if other != ident and not shared:
                owned -= paths
        before = self.sets.get(ident, set())
        after = set(paths) if replace else before | paths
        if after != before or ident not in self.sets:
            self.sets[ident] = after
            manager, operation, sub = ident
            entry: Obj = {"manager": manager, "operation": operation, "apiVersion": api_version,
                          "time": now(), "fieldsType": "FieldsV1"}
            if sub:
                entry["subresource"] = sub
            self.meta[ident] = entry

    def forget(self, paths: set[Path]) -> None:
        """Fields no longer in the object belong to nobody."""
        for owned in self.sets.values():
            owned -= paths

    def entries(self) -> list[Obj]:
        out = []
        for ident, owned in self.sets.items():
            if owned:
                out.append({**self.meta[ident], "fieldsV1": to_fields_v1(owned)})
        return out


def _present(obj: Any, status: bool | None, custom: bool) -> set[Path]:
    """Every path of obj, leaves and their parents, so that removed fields can be found."""
    found = set(leaves(obj, custom=custom, status=status))
    for p in list(found):
        found.update(p[:i] for i in range(1, len(p)))
    return found


def record_update(old: Obj | None, new: Obj, manager: str, sub: str, *, custom: bool,
                  status_sub: bool, operation: str = "Update") -> None:
    """Set new's managedFields after a create or update by manager (in place)."""
    scope = True if sub == "status" else (False if status_sub else None)
    before = leaves(old, custom=custom, status=scope) if old is not None else {}
    after = leaves(new, custom=custom, status=scope)
    changed = {p for p, v in after.items() if p not in before or before[p] != v}
    own = Ownership((old or {}).get("metadata", {}).get("managedFields"))
    own.forget({p for p in before if p not in after})
    if changed:
        own.take((manager or "unknown", operation, sub), changed, new.get("apiVersion", ""))
    new.setdefault("metadata", {})["managedFields"] = own.entries()
    if not new["metadata"]["managedFields"]:
        new["metadata"].pop("managedFields")


def _merge(live: Any, applied: Any, name: str, custom: bool, in_meta: bool) -> Any:
    """The applied configuration laid over the live object: maps merge, associative lists merge
    by key, everything else is replaced."""
    if isinstance(applied, dict) and isinstance(live, dict):
        out = copy.deepcopy(live)
        for k, v in applied.items():
            out[k] = _merge(live.get(k), v, k, custom, in_meta or k == "metadata")
        return out
    if isinstance(applied, list) and isinstance(live, list):
        if name in SET_LISTS and in_meta:
            return list(applied) + [v for v in live if v not in applied]
        keys = _list_keys(name, applied + live, custom, in_meta)
        if keys is not None:
            by_key = {_key(i, keys): i for i in live}
            out_list = [_merge(by_key.pop(_key(i, keys), None), i, "", custom, in_meta) for i in applied]
            return out_list + [copy.deepcopy(i) for i in by_key.values()]
    return copy.deepcopy(applied)


def _remove(obj: Any, path: Path) -> None:
    """Delete the field or element at path, and the maps it leaves empty."""
    if not path:
        return
    parent: Any = obj
    trail: list[tuple[Any, str]] = []
    for part in path[:-1]:
        trail.append((parent, part))
        parent = _step(parent, part)
        if parent is None:
            return
    _drop(parent, path[-1])
    for node, part in reversed(trail):
        child = _step(node, part)
        if isinstance(child, dict | list) and not child:
            _drop(node, part)
        else:
            break


def _step(node: Any, part: str) -> Any:
    if part.startswith("f:") and isinstance(node, dict):
        return node.get(part[2:])
    if part.startswith("k:") and isinstance(node, list):
        want = json.loads(part[2:])
        return next((i for i in node if isinstance(i, dict) and all(i.get(k) == v for k, v in want.items())), None)
    return None


def _drop(node: Any, part: str) -> None:
    if part.startswith("f:") and isinstance(node, dict):
        node.pop(part[2:], None)
    elif part.startswith("k:") and isinstance(node, list):
        item = _step(node, part)
        if item is not None:
            node.remove(item)
    elif part.startswith("v:") and isinstance(node, list):
        value = json.loads(part[2:])
        if value in node:
            node.remove(value)


def _dotted(path: Path) -> str:
    return "".join("." + p[2:] if p.startswith("f:") else f"[{p[2:]}]" if p.startswith("k:") else f"[={p[2:]}]"
                   for p in path)


def apply(live: Obj, applied: Obj, manager: str, sub: str, *, force: bool, custom: bool,
          status_sub: bool) -> Obj:
    """The object after manager applies `applied` to `live`, with its managedFields set."""
    scope = True if sub == "status" else (False if status_sub else None)
    config = copy.deepcopy(applied)
    meta = config.get("metadata") or {}
    config["metadata"] = {k: v for k, v in meta.items() if k not in _SERVER_META or k in ("name", "namespace")}
    if scope is False:
        config.pop("status", None)
    wanted = leaves(config, custom=custom, status=scope)
    current = leaves(live, custom=custom, status=scope)
    ident = (manager, "Apply", sub)
    own = Ownership(live.get("metadata", {}).get("managedFields"))
    conflicts: list[tuple[Path, str]] = []
    for path, value in wanted.items():
        if path in current and current[path] != value:
            for other, owned in own.sets.items():
                if other != ident and path in owned:
                    conflicts.append((path, other[0]))
    if conflicts and not force:
        names = [f'conflict with "{m}": {_dotted(p)}' for p, m in conflicts]
        raise ApiError(409, "Conflict", f"Apply failed with {len(conflicts)} conflict"
                       f"{'s' if len(conflicts) > 1 else ''}: " + "; ".join(names),
                       causes=[{"reason": "FieldManagerConflict", "message": f'conflict with "{m}"',
                                "field": _dotted(p)} for p, m in conflicts])
    if scope is True:
        config = {"status": config.get("status")} if "status" in config else {}
    merged: Obj = _merge(live, config, "", custom, False)
    before = own.sets.get(ident, set())
    for path in sorted(before - set(wanted) - own.others(ident), key=len, reverse=True):
        _remove(merged, path)
    present = _present(merged, scope, custom)
    own.forget({p for owned in own.sets.values() for p in owned if p not in present})
    for other, owned in own.sets.items():  # force: the conflicting fields change hands
        if other != ident:
            owned -= {p for p, m in conflicts if m == other[0]}
    own.take(ident, set(wanted), live.get("apiVersion", ""), replace=True, shared=True)
    merged["metadata"]["managedFields"] = own.entries()
    return merged
