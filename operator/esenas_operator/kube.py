"""A small raw-JSON Kubernetes client over the official client's auth and connection pool.

Handlers work with plain dicts (what the builders return); this module creates, compares and
patches them, writing only when something differs, so a reconcile of an up-to-date job is read-only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Final

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]

#: (apiVersion, kind) -> (URL prefix, plural)
RESOURCES: Final[Mapping[tuple[str, str], tuple[str, str]]] = {
    ("v1", "ConfigMap"): ("/api/v1", "configmaps"),
    ("v1", "Secret"): ("/api/v1", "secrets"),
    ("v1", "Service"): ("/api/v1", "services"),
    ("v1", "PersistentVolumeClaim"): ("/api/v1", "persistentvolumeclaims"),
    ("v1", "Pod"): ("/api/v1", "pods"),
    ("apps/v1", "Deployment"): ("/apis/apps/v1", "deployments"),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("/apis/networking.k8s.io/v1", "networkpolicies"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ("/apis/monitoring.coreos.com/v1", "servicemonitors"),
    ("esenas.dev/v1alpha1", "ESENASJob"): ("/apis/esenas.dev/v1alpha1", "esenasjobs"),
}

#: Kinds whose content must never be rewritten once created (the token is random).
CREATE_ONLY: Final = frozenset({"Secret", "PersistentVolumeClaim"})


def load_config() -> client.ApiClient:
    """In-cluster credentials in a pod, else the kubeconfig (KUBECONFIG) like kubectl."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


def is_subset(desired: Any, actual: Any) -> bool:
    """True when every field of desired has the same value in actual (server defaults are ignored)."""
    if isinstance(desired, Mapping):
        return isinstance(actual, Mapping) and all(k in actual and is_subset(v, actual[k]) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(actual, list) and len(desired) == len(actual) and all(map(is_subset, desired, actual))
    return bool(desired == actual)


class Kube:
    """Raw JSON requests with a per-request timeout; errors raise ApiException with .status."""

    def __init__(self, api: client.ApiClient, timeout: float = 30.0) -> None:
        self.api = api
        self.timeout = timeout
        self._groups: tuple[float, set[str]] | None = None

    def request(self, method: str, path: str, body: Any = None, query: Mapping[str, str] | None = None, content_type: str = "application/json") -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method_, url, hdrs, data, post = self.api.param_serialize(
            method, path, query_params=list((query or {}).items()), header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        resp = self.api.call_api(method_, url, header_params=hdrs, body=data, post_params=post, _request_timeout=self.timeout)
        raw = resp.read()  # type: ignore[no-untyped-call]
        if resp.status >= 400:
            raise ApiException(status=resp.status, reason=resp.reason, body=raw.decode(errors="replace") if raw else None)
        return json.loads(raw) if raw else None

    @staticmethod
    def path(api_version: str, kind: str, namespace: str, name: str | None = None, sub: str | None = None) -> str:
        prefix, plural = RESOURCES[(api_version, kind)]
        p = f"{prefix}/namespaces/{namespace}/{plural}"
        if name:
            p += f"/{name}"
        if sub:
            p += f"/{sub}"
        return p

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            result: Obj = self.request("GET", self.path(api_version, kind, namespace, name))
            return result
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str, selector: str) -> list[Obj]:
        result = self.request("GET", self.path(api_version, kind, namespace), query={"labelSelector": selector})
        items: list[Obj] = result.get("items") or []
        return items

    def patch(self, api_version: str, kind: str, namespace: str, name: str, patch: Obj, sub: str | None = None) -> Obj:
        result: Obj = self.request(
            "PATCH", self.path(api_version, kind, namespace, name, sub), body=patch, content_type="application/merge-patch+json"
        )
        return result

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete in the background (dependents go by the garbage collector); False when already gone."""
        try:
            self.request(
                "DELETE", self.path(api_version, kind, namespace, name), body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
            )
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    def ensure(self, obj: Obj) -> str:
        """Create obj, or patch the existing one where it differs: 'created', 'patched' or 'unchanged'.

        Create first (not get first): after a crash most children exist and a create costs one
        request either way, while a fresh job needs no read at all.
        """
        meta = obj["metadata"]
        av, kind, ns, name = obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"]
        try:
            self.request("POST", self.path(av, kind, ns), body=obj)
            return "created"
        except ApiException as exc:
            if exc.status != 409:
                raise
        if kind in CREATE_ONLY:
            return "unchanged"
        existing = self.get(av, kind, ns, name)
        if existing is None:  # deleted meanwhile: the next reconcile creates it
            return "unchanged"
        desired = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        desired["metadata"] = {k: meta[k] for k in ("labels", "ownerReferences") if k in meta}
        if is_subset(desired, existing):
            return "unchanged"
        self.patch(av, kind, ns, name, desired)
        return "patched"

    def has_group_version(self, group_version: str, ttl: float = 60.0) -> bool:
        """Whether the API server serves group/version (e.g. monitoring.coreos.com/v1); cached for ttl."""
        now = time.monotonic()
        if self._groups is None or now - self._groups[0] > ttl:
            found: set[str] = set()
            for group in (self.request("GET", "/apis") or {}).get("groups", []):
                found.update(v["groupVersion"] for v in group.get("versions", []))
            self._groups = (now, found)
        return group_version in self._groups[1]
