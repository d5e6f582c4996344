"""A minimal /openapi/v3: per group/version, the PATCH operations (with the fieldValidation
parameter, so kubectl leaves validation to the server) and each CRD's schema (so
`kubectl explain` works). Built-in kinds carry no schema here."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from .registry import Registry, ResourceType

_BODY_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/apply-patch+yaml")


def _schema_name(rt: ResourceType) -> str:
    group = ".".join(reversed(rt.group.split("."))) if rt.group else "io.k8s.api.core"
    return f"{group}.{rt.version}.{rt.kind}"


def _gvk(rt: ResourceType) -> dict[str, str]:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def _paths(rt: ResourceType) -> dict[str, Any]:
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    scope = "/namespaces/{namespace}" if rt.namespaced else ""
    ref = {"$ref": f"#/components/schemas/{_schema_name(rt)}"} if rt.custom else {}
    patch = {
        "operationId": f"patch{rt.kind}",
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": _gvk(rt),
        "parameters": [
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
        ],
        "requestBody": {"content": {t: {"schema": {"type": "object"}} for t in _BODY_TYPES}},
        "responses": {"200": {"content": {"application/json": {"schema": ref}}}},
    }
    post = copy.deepcopy(patch)
    post.update({"operationId": f"create{rt.kind}", "x-kubernetes-action": "post",
                 "requestBody": {"content": {"application/json": {"schema": ref}}}})
    return {
        f"{prefix}{scope}/{rt.plural}/{{name}}": {"patch": patch},
        f"{prefix}{scope}/{rt.plural}": {"post": post},
    }


def _component(rt: ResourceType) -> dict[str, Any]:
    schema = copy.deepcopy(rt.schema or {"type": "object"})
    props = schema.setdefault("properties", {})
    props.setdefault("apiVersion", {"type": "string", "description": "APIVersion defines the "
                     "versioned schema of this representation of an object."})
    props.setdefault("kind", {"type": "string", "description": "Kind is a string value "
                     "representing the REST resource this object represents."})
    props["metadata"] = {"type": "object", "description": "Standard object's metadata."}
    schema["x-kubernetes-group-version-kind"] = [_gvk(rt)]
    return schema


def group_version_doc(registry: Registry, prefix: str) -> dict[str, Any] | None:
    """The OpenAPI v3 document of `api/v1` or `apis/GROUP/VERSION`, or None."""
    types = [rt for rt in registry.all()
             if (f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}") == prefix]
    if not types:
        return None
    paths: dict[str, Any] = {}
    for rt in types:
        paths.update(_paths(rt))
    schemas = {_schema_name(rt): _component(rt) for rt in types if rt.custom}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": paths, "components": {"schemas": schemas}}


def root(registry: Registry) -> dict[str, Any]:
    """/openapi/v3: each group/version with a content hash, so clients refetch on change."""
    prefixes = sorted({f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"
                       for rt in registry.all()})
    out: dict[str, Any] = {}
    for prefix in prefixes:
        doc = group_version_doc(registry, prefix)
        digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()
        out[prefix] = {"serverRelativeURL": f"/openapi/v3/{prefix}?hash={digest}"}
    return {"paths": out}
