"""Label and field selectors, parsed once per request and matched against objects."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import bad_request

Matcher = Callable[[dict[str, Any]], bool]

_SET_RE = re.compile(r"^\s*(!?)([A-Za-z0-9./_-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")


def _split(selector: str) -> list[str]:
    """Split on commas that are not inside `in (...)` sets."""
    parts, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p for p in parts if p.strip()]


def _requirement(term: str, selector: str) -> tuple[str, str, frozenset[str]]:
    """One label requirement as (key, operator, values)."""
    eq = _EQ_RE.match(term)
    if eq:
        key, op, value = eq.groups()
        return key, "!=" if op == "!=" else "=", frozenset({value})
    st = _SET_RE.match(term)
    if not st:
        raise bad_request(f'unable to parse requirement: invalid label selector "{selector}"')
    neg, key, op, values = st.groups()
    if op:
        return key, op, frozenset(v.strip() for v in values.split(",") if v.strip())
    return key, "!exists" if neg else "exists", frozenset()


def _holds(labels: dict[str, str], key: str, op: str, values: frozenset[str]) -> bool:
    if op == "=":
        return labels.get(key) in values
    if op == "!=":
        return labels.get(key) not in values
    if op == "in":
        return labels.get(key) in values
    if op == "notin":
        return labels.get(key) not in values
    return (key in labels) == (op == "exists")


def label_matcher(selector: str | None) -> Matcher:
    """`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma-joined (AND)."""
    if not selector:
        return lambda obj: True
    reqs = [_requirement(term, selector) for term in _split(selector)]

    def match(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(_holds(labels, key, op, values) for key, op, values in reqs)

    return match


def lookup(obj: Any, dotted: str) -> Any:
    """The value at a dotted path (`metadata.name`, `involvedObject.uid`), or None."""
    node = obj
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _field_text(obj: dict[str, Any], path: str) -> str:
    value = lookup(obj, path)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def field_matcher(selector: str | None, allowed: frozenset[str] | None = None) -> Matcher:
    """`path=value`, `path==value`, `path!=value`; a missing field compares as the empty
    string. `allowed` lists the field labels this resource supports (None: any), since the
    real server answers 400 for others."""
    if not selector:
        return lambda obj: True
    reqs: list[tuple[str, bool, str]] = []
    for term in _split(selector):
        eq = _EQ_RE.match(term)
        if not eq:
            raise bad_request(f'invalid field selector: "{term}"')
        path, op, value = eq.groups()
        if allowed is not None and path not in allowed:
            raise bad_request(f'field label not supported: {path}')
        reqs.append((path, op != "!=", value))

    def match(obj: dict[str, Any]) -> bool:
        return all((_field_text(obj, path) == value) == equal for path, equal, value in reqs)

    return match
