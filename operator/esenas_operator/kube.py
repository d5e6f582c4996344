"""A small raw-JSON Kubernetes client over the official client's auth and connection pool.

Handlers work with plain dicts (what the builders return). Children converge by server-side
apply under one field manager: a field the spec no longer sets (a removed nodeSelector, a
narrowed resources map) goes away, and an unchanged apply is a no-op on the server. Every set of
children is first applied with ``dryRun=All``, so the API server's own validation refuses a bad
spec before anything exists.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable, Mapping, Sequence
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

#: Kinds whose content must never be rewritten once created (the token is random; the checkpoint
#: claim is never resized: a reconcile refuses an edit of its size or class, esenas_operator.claims).
CREATE_ONLY: Final = frozenset({"Secret", "PersistentVolumeClaim"})
#: The field manager of every apply: the operator owns exactly the fields its builders set.
FIELD_MANAGER: Final = "esenas-operator"
APPLY: Final = "application/apply-patch+yaml"
#: API errors that mean the request itself is wrong (a child the spec made invalid), not the cluster.
REFUSED: Final = frozenset({400, 422})


def api_message(exc: ApiException) -> str:
    """The API server's own message from a Status body, else the HTTP reason."""
    try:
        body = json.loads(exc.body or "")
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return f"{exc.status} {exc.reason}"


class Stale(Exception):
    """A create-only child (the token Secret, the checkpoint claim) exists, and the job cannot take
    it as its own: an earlier job of the same name left it for the garbage collector (or someone
    made it by hand). Nothing was written; the reconcile retries until it is gone."""

    def __init__(self, objs: Sequence[Mapping[str, Any]]) -> None:
        self.children = [f"{o['kind']} {o['metadata']['name']}" for o in objs]
        one = len(self.children) == 1
        super().__init__(f"{' and '.join(self.children)} {'exists' if one else 'exist'} but {'is' if one else 'are'} not this job's "
                         "(an earlier job of the same name, or made by hand): waiting for the garbage collector to remove "
                         f"{'it' if one else 'them'}; delete {'it' if one else 'them'} if {'it stays' if one else 'they stay'}")


class Refused(Exception):
    """The API server refused a child as invalid (400/422): the spec made it so, and retrying
    cannot help. The message names the child and quotes the server."""

    def __init__(self, obj: Mapping[str, Any], exc: ApiException) -> None:
        self.kind = str(obj["kind"])
        self.name = str(obj["metadata"]["name"])
        self.status = int(exc.status or 0)
        super().__init__(f"the API server refused {self.kind} {self.name}: {api_message(exc)}")


def load_config() -> client.ApiClient:
    """In-cluster credentials in a pod, else the kubeconfig (KUBECONFIG) like kubectl."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


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

    def list(self, api_version: str, kind: str, namespace: str, selector: str, limit: int = 0) -> list[Obj]:
        """The objects matching ``selector``; with ``limit``, the first page of at most that many."""
        query = {"labelSelector": selector, **({"limit": str(limit)} if limit else {})}
        result = self.request("GET", self.path(api_version, kind, namespace), query=query)
        items: list[Obj] = result.get("items") or []
        return items

    def patch(self, api_version: str, kind: str, namespace: str, name: str, patch: Obj, sub: str | None = None) -> Obj:
        result: Obj = self.request(
            "PATCH", self.path(api_version, kind, namespace, name, sub), body=patch,
            query={"fieldManager": FIELD_MANAGER}, content_type="application/merge-patch+json",
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

    def delete_collection(self, api_version: str, kind: str, namespace: str, selector: str) -> tuple[str, ...]:
        """Delete every object matching the label selector; the names deleted."""
        result = self.request(
            "DELETE", self.path(api_version, kind, namespace), query={"labelSelector": selector},
            body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
        )
        return tuple(o["metadata"]["name"] for o in (result or {}).get("items") or [])

    def write(self, obj: Obj, dry_run: bool = False) -> Obj | None:
        """Server-side apply obj (create-only kinds: create it); None when a create-only object
        already exists. ``dry_run``: the API server validates and admits it, and persists nothing."""
        meta = obj["metadata"]
        av, kind, ns, name = obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"]
        query = {"dryRun": "All"} if dry_run else {}
        if kind in CREATE_ONLY:
            try:
                created: Obj = self.request("POST", self.path(av, kind, ns), body=obj, query=query)
                return created
            except ApiException as exc:
                if exc.status == 409:
                    return None
                raise
        # force: the operator's fields are the spec's, so this apply takes back a field someone
        # edited by hand. It runs on a reconcile (a spec change, the operator's start) and on a
        # drift repair, which notices only a job's Deployments deleted, rescaled or surplus
        # (esenas_operator.drift); other hand edits stay until one of those. Fields other
        # managers own alone are left alone.
        applied: Obj = self.request(
            "PATCH", self.path(av, kind, ns, name), body=json.dumps(obj),
            query={**query, "fieldManager": FIELD_MANAGER, "force": "true"}, content_type=APPLY,
        )
        return applied

    def converge(self, objs: Sequence[Obj], owned: Callable[[], bool] | None = None) -> builtins.list[str]:
        """Dry-run every object, then apply them all; the ones that changed ('Kind/name').

        A refusal in the dry run raises before anything is written, so a spec the API server
        refuses leaves no partial set of children. ``owned``: asked (once) when a create-only
        object already exists in the dry run; False raises Stale, before anything is written.
        """
        planned = [self._checked(o, dry_run=True) for o in objs]
        existing = [o for o, p in zip(objs, planned, strict=True) if p is None and o["kind"] in CREATE_ONLY]
        if existing and owned is not None and not owned():
            raise Stale(existing)
        changed: builtins.list[str] = []
        for obj, plan in zip(objs, planned, strict=True):
            done = self._checked(obj)
            before = ((plan or {}).get("metadata") or {}).get("resourceVersion")
            after = ((done or {}).get("metadata") or {}).get("resourceVersion")
            if done is not None and after != before:
                changed.append(f"{obj['kind']}/{obj['metadata']['name']}")
        return changed

    def _checked(self, obj: Obj, dry_run: bool = False) -> Obj | None:
        try:
            return self.write(obj, dry_run)
        except ApiException as exc:
            if exc.status in REFUSED:
                raise Refused(obj, exc) from exc
            raise

    def has_group_version(self, group_version: str, ttl: float = 60.0) -> bool:
        """Whether the API server serves group/version (e.g. monitoring.coreos.com/v1); cached for ttl."""
        now = time.monotonic()
        if self._groups is None or now - self._groups[0] > ttl:
            found: set[str] = set()
            for group in (self.request("GET", "/apis") or {}).get("groups", []):
                found.update(v["groupVersion"] for v in group.get("versions", []))
            self._groups = (now, found)
        return group_version in self._groups[1]
