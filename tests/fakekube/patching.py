"""The PATCH formats a real API server accepts: JSON merge patch (RFC 7386), JSON patch
(RFC 6902) and an approximation of strategic merge patch (lists merged by their merge key)."""

from __future__ import annotations

import copy
from typing import Any, Final

from .errors import ApiError

# Merge keys of the strategic-merge lists the project's objects use (k8s.io/api patchMergeKey).
MERGE_KEYS: Final[dict[str, str]] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
# Lists of scalars merged as sets (patchStrategy "merge" without a key).
SET_LISTS: Final = frozenset({"finalizers"})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f'json patch: invalid path "{path}"')
    return [_unescape(t) for t in path[1:].split("/")]


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for tok in tokens[:-1]:
        node = _child(node, tok, path)
    return node


def _child(node: Any, tok: str, path: str) -> Any:
    if isinstance(node, dict):
        if tok not in node:
            raise ApiError(422, "Invalid", f'json patch: path "{path}" does not exist')
        return node[tok]
    if isinstance(node, list):
        idx = _index(node, tok, path, allow_end=False)
        return node[idx]
    raise ApiError(422, "Invalid", f'json patch: path "{path}" does not exist')


def _index(node: list[Any], tok: str, path: str, *, allow_end: bool) -> int:
    if allow_end and tok == "-":
        return len(node)
    if not tok.isdigit():
        raise ApiError(422, "Invalid", f'json patch: invalid array index "{tok}" in "{path}"')
    idx = int(tok)
    if idx > len(node) or (idx == len(node) and not allow_end):
        raise ApiError(422, "Invalid", f'json patch: index {idx} out of bounds in "{path}"')
    return idx


def _get(doc: Any, path: str) -> Any:
    node = doc
    for tok in _pointer(path):
        node = _child(node, tok, path)
    return node


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        return None, doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise ApiError(422, "Invalid", f'json patch: cannot remove missing "{path}"')
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, path, allow_end=False))
    raise ApiError(422, "Invalid", f'json patch: path "{path}" does not exist')


def _add(doc: Any, path: str, value: Any, *, replace: bool = False) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise ApiError(422, "Invalid", f'json patch: cannot replace missing "{path}"')
        parent[last] = value
    elif isinstance(parent, list):
        if replace:
            parent[_index(parent, last, path, allow_end=False)] = value
        else:
            parent.insert(_index(parent, last, path, allow_end=True), value)
    else:
        raise ApiError(422, "Invalid", f'json patch: path "{path}" does not exist')
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 on a copy of `target`; a failed `test` or a bad path answers 422 Invalid."""
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "json patch: the body must be a JSON array of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ApiError(400, "BadRequest", f"json patch: malformed operation {op!r}")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise ApiError(400, "BadRequest", f'json patch: "{kind}" at "{path}" needs a value')
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "replace":
            doc = _add(doc, path, copy.deepcopy(op["value"]), replace=True)
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind in ("move", "copy"):
            src = op.get("from", "")
            if kind == "move":
                doc, value = _remove(doc, src)
            else:
                value = copy.deepcopy(_get(doc, src))
            doc = _add(doc, path, value)
        elif kind == "test":
            try:
                actual = repr(_get(doc, path))
                same = _get(doc, path) == op["value"]
            except ApiError:
                actual, same = "nothing (missing)", False
            if not same:
                raise ApiError(
                    422, "Invalid",
                    f'the server rejected our request due to an error in our request: '
                    f'testing value {path} failed: expected {op["value"]!r}, got {actual}',
                )
        else:
            raise ApiError(400, "BadRequest", f'json patch: unknown operation "{kind}"')
    return doc


def _merge_key(name: str, items: list[Any]) -> str | None:
    if name == "ports":
        probe = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in probe else "port"
    return MERGE_KEYS.get(name)


def _smp_list(name: str, current: Any, patch: list[Any]) -> list[Any]:
    base = list(current) if isinstance(current, list) else []
    if name in SET_LISTS:
        return base + [v for v in patch if v not in base]
    key = _merge_key(name, patch + base)
    if key is None or not all(isinstance(i, dict) for i in patch + base):
        return [strategic_merge(None, i) if isinstance(i, dict) else i for i in patch]
    out = [copy.deepcopy(i) for i in base]
    for item in patch:
        directive = item.get("$patch")
        idx = next((n for n, cur in enumerate(out) if cur.get(key) == item.get(key)), None)
        if directive == "delete":
            if idx is not None:
                out.pop(idx)
        elif directive == "replace" or idx is None:
            clean = {k: v for k, v in item.items() if k != "$patch"}
            if idx is None:
                out.append(strategic_merge(None, clean))
            else:
                out[idx] = strategic_merge(None, clean)
        else:
            out[idx] = strategic_merge(out[idx], item)
    return out


def strategic_merge(target: Any, patch: Any) -> Any:
    """Strategic merge patch, approximated: a merge patch whose known lists merge by key,
    honouring the `$patch`, `$retainKeys`, `$deleteFromPrimitiveList` and
    `$setElementOrder` directives kubectl sends."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return strategic_merge(None, {k: v for k, v in patch.items() if k != "$patch"})
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _smp_list(key, result.get(key), value)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result
