"""Server-side printing (meta.k8s.io/v1 Table), which `kubectl get` asks for: Name, the
kind's columns (a CRD's additionalPrinterColumns), and Age."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from .registry import PrinterColumn, ResourceType

_NAME_COL = {"name": "Name", "type": "string", "format": "name", "priority": 0,
             "description": "Name must be unique within a namespace."}
_AGE_DESC = "CreationTimestamp is a timestamp representing the server time when this object was created."
_TOKEN = re.compile(r'\.([A-Za-z0-9_-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_.-]+)\s*==\s*"([^"]*)"\)\]')


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration, so ages read as kubectl prints them."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    return f"{hours // (24 * 365)}y"


def age(stamp: str | None) -> str:
    if not stamp:
        return "<unknown>"
    then = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return human_duration((dt.datetime.now(dt.UTC) - then).total_seconds())


def jsonpath(obj: Any, path: str) -> Any:
    """The subset of JSONPath printer columns use: `.a.b`, `[0]`, `[?(@.type=="Ready")]`."""
    node = obj
    for m in _TOKEN.finditer(path.strip("{}")):
        key, index, fkey, fval = m.groups()
        if key is not None:
            node = node.get(key) if isinstance(node, dict) else None
        elif index is not None:
            node = node[int(index)] if isinstance(node, list) and int(index) < len(node) else None
        else:
            node = next((i for i in node if isinstance(i, dict) and str(_dig(i, fkey)) == fval),
                        None) if isinstance(node, list) else None
        if node is None:
            return None
    return node


def _dig(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _builtin_columns(rt: ResourceType) -> list[PrinterColumn]:
    cols = {
        "deployments": [PrinterColumn("Ready", "string", ""), PrinterColumn(
            "Up-to-date", "integer", ".status.updatedReplicas"), PrinterColumn(
            "Available", "integer", ".status.availableReplicas")],
        "statefulsets": [PrinterColumn("Ready", "string", "")],
        "pods": [PrinterColumn("Ready", "string", ""), PrinterColumn(
            "Status", "string", ".status.phase"), PrinterColumn("Restarts", "integer", "")],
        "namespaces": [PrinterColumn("Status", "string", ".status.phase")],
        "configmaps": [PrinterColumn("Data", "integer", "")],
        "secrets": [PrinterColumn("Type", "string", ".type"), PrinterColumn("Data", "integer", "")],
        "services": [PrinterColumn("Type", "string", ".spec.type"), PrinterColumn(
            "Cluster-IP", "string", ".spec.clusterIP"), PrinterColumn("Port(s)", "string", "")],
        "jobs": [PrinterColumn("Status", "string", ""), PrinterColumn(
            "Completions", "string", "")],
    }
    return cols.get(rt.plural, []) if rt.group in ("", "apps", "batch") else []


def _computed(rt: ResourceType, col: PrinterColumn, obj: dict[str, Any]) -> Any:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if rt.plural in ("deployments", "statefulsets") and col.name == "Ready":
        return f'{status.get("readyReplicas", 0)}/{spec.get("replicas", 0)}'
    if rt.plural == "pods" and col.name == "Ready":
        cs = status.get("containerStatuses") or []
        return f'{sum(1 for c in cs if c.get("ready"))}/{len(spec.get("containers") or [])}'
    if rt.plural == "pods" and col.name == "Restarts":
        return sum(int(c.get("restartCount", 0)) for c in status.get("containerStatuses") or [])
    if col.name == "Data":
        return len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    if rt.plural == "services":
        return ",".join(f'{p.get("port")}/{p.get("protocol", "TCP")}' for p in
                        spec.get("ports") or []) or "<none>"
    if rt.plural == "jobs" and col.name == "Status":
        return "Complete" if status.get("succeeded") else "Running"
    if rt.plural == "jobs":
        return f'{status.get("succeeded", 0)}/{spec.get("completions", 1)}'
    return None


def columns(rt: ResourceType) -> list[PrinterColumn]:
    if rt.custom:
        return rt.printer_columns or [PrinterColumn("Age", "date", ".metadata.creationTimestamp")]
    return [*_builtin_columns(rt), PrinterColumn("Age", "date", ".metadata.creationTimestamp",
                                                 _AGE_DESC)]


def cell(rt: ResourceType, col: PrinterColumn, obj: dict[str, Any]) -> Any:
    value = jsonpath(obj, col.json_path) if col.json_path else _computed(rt, col, obj)
    if col.type == "date" and isinstance(value, str):
        return age(value)
    if col.type == "integer" and value is None and not col.json_path:
        return 0
    return value


def table(rt: ResourceType, objs: list[dict[str, Any]], rv: str, include: str = "Metadata",
          with_columns: bool = True) -> dict[str, Any]:
    """A Table of `objs`; `include` is the includeObject parameter (None/Metadata/Object)."""
    cols = columns(rt)
    defs = [_NAME_COL] + [{"name": c.name, "type": c.type if c.type != "date" else "string",
                           "format": c.format, "description": c.description,
                           "priority": c.priority} for c in cols]
    rows = []
    for obj in objs:
        row: dict[str, Any] = {"cells": [obj["metadata"]["name"]] +
                               [cell(rt, c, obj) for c in cols]}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj["metadata"]}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
            "columnDefinitions": defs if with_columns else [], "rows": rows}
