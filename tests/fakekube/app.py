"""The aiohttp application: discovery, OpenAPI, the REST verbs of every resource, chunked
watches, Tables for kubectl, and /_fake endpoints for request counts and test control."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Callable
from typing import Any, Final

import yaml
from aiohttp import web

from . import openapi
from .cluster import APPLY, JSON, MERGE, STRATEGIC, Cluster
from .errors import ApiError, bad_request, gone, invalid, method_not_allowed, unsupported_media
from .registry import ResourceType
from .selectors import field_matcher, label_matcher
from .store import Event, Obj
from .tables import table

CLUSTER: Final = web.AppKey("cluster", Cluster)
BOOKMARK: Final = web.AppKey("bookmark_interval", float)
PATCH_TYPES: Final = (MERGE, JSON, STRATEGIC, APPLY)
VERSION: Final = {"major": "1", "minor": "33", "gitVersion": "v1.33.0-fakekube",
                  "gitCommit": "0000000000000000000000000000000000000000",
                  "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                  "goVersion": "go1.24.0", "compiler": "gc", "platform": "linux/amd64"}


def _json(body: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers = None
    if warnings:  # RFC 7234 warn-text is a quoted-string: escape quotes and backslashes
        texts = [w.replace("\\", "\\\\").replace('"', '\\"') for w in warnings]
        headers = {"Warning": ", ".join(f'299 - "{t}"' for t in texts)}
    return web.Response(text=json.dumps(body), status=status, content_type="application/json",
                        headers=headers)


@web.middleware
async def errors_as_status(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every ApiError becomes a metav1.Status body with its code."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as err:
        return _json(err.status(), err.code)


def _cluster(request: web.Request) -> Cluster:
    return request.app[CLUSTER]


async def version(request: web.Request) -> web.Response:
    return _json(VERSION)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def api_versions(request: web.Request) -> web.Response:
    host = request.host
    return _json({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": host}]})


async def api_groups(request: web.Request) -> web.Response:
    return _json(_cluster(request).registry.api_group_list())


async def api_group(request: web.Request) -> web.Response:
    found = _cluster(request).registry.api_group(request.match_info["group"])
    if found is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return _json(found)


async def openapi_root(request: web.Request) -> web.Response:
    return _json(openapi.root(_cluster(request).registry))


async def openapi_doc(request: web.Request) -> web.Response:
    doc = openapi.group_version_doc(_cluster(request).registry, request.match_info["path"])
    if doc is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return _json(doc)


async def stats(request: web.Request) -> web.Response:
    return _json(_cluster(request).store.stats())


async def reset_stats(request: web.Request) -> web.Response:
    store = _cluster(request).store
    store.requests.clear()
    store.writes.clear()
    return _json({"reset": True})


async def compact(request: web.Request) -> web.Response:
    _cluster(request).store.compact()
    return _json({"compacted": _cluster(request).store.compacted})


def _resolve(request: web.Request) -> tuple[ResourceType, str | None, str, str]:
    """Split a resource URL into (type, namespace or None, name, subresource)."""
    cluster = _cluster(request)
    path = [p for p in request.path.split("/") if p]
    if path[0] == "api":
        group, version, rest = "", path[1], path[2:]
    else:
        group, version, rest = path[1], path[2], path[3:]
    ns: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        candidate = cluster.registry.get(group, version, rest[2])
        if candidate is not None and candidate.namespaced:
            ns, rest = rest[1], rest[2:]
    rt = cluster.registry.get(group, version, rest[0]) if rest else None
    if rt is None or len(rest) > 3:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    eviction = sub == "eviction" and rt.key == ("", "pods")
    if sub and not ((sub == "status" and rt.status) or (sub == "scale" and rt.scale) or eviction):
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if rt.namespaced and name and ns is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return rt, ns, name, sub


def _wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def _flag(request: web.Request, key: str) -> bool:
    return request.query.get(key, "").lower() in ("true", "1")


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return {}
    if request.content_type == "application/vnd.kubernetes.protobuf":
        raise unsupported_media(request.content_type, ["application/json", "application/yaml"])
    try:
        if request.content_type in (APPLY, "application/yaml"):
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as err:
        raise bad_request(f"the request body could not be decoded: {err}") from err


def _write_opts(request: web.Request) -> dict[str, Any]:
    validation = request.query.get("fieldValidation", "Warn")
    if validation not in ("Strict", "Warn", "Ignore"):
        raise bad_request(f'fieldValidation must be one of "Ignore", "Warn", or "Strict", '
                          f'got "{validation}"')
    dry_run = request.query.get("dryRun", "")
    if dry_run not in ("", "All"):
        options = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions"}
        raise invalid(options.get(request.method, "DeleteOptions"), "meta.k8s.io", "", [{"reason": "FieldValueNotSupported", "field": "dryRun",
                                           "message": f'Unsupported value: "{dry_run}": '
                                           'supported values: "All"'}])
    # Like the real server: an explicit fieldManager, else the User-Agent up to its first "/".
    manager = request.query.get("fieldManager") or request.headers.get("User-Agent", "").split("/")[0]
    if request.method == "PATCH":
        apply = request.content_type == APPLY
        if apply and not request.query.get("fieldManager"):
            raise invalid("PatchOptions", "meta.k8s.io", "", [{
                "reason": "FieldValueRequired", "field": "fieldManager",
                "message": "Required value: is required for apply patch"}])
        if not apply and "force" in request.query:
            raise invalid("PatchOptions", "meta.k8s.io", "", [{
                "reason": "FieldValueForbidden", "field": "force",
                "message": "Forbidden: may not be specified for non-apply patch"}])
    return {"dry_run": dry_run == "All", "validation": validation, "manager": manager,
            "force": _flag(request, "force")}


def _count(request: web.Request, verb: str, rt: ResourceType, sub: str) -> None:
    res = f"{rt.group}/{rt.plural}" if rt.group else rt.plural
    _cluster(request).store.requests[(verb, f"{res}/{sub}" if sub else res)] += 1


async def resource(request: web.Request) -> web.StreamResponse:
    """Dispatch GET/POST/PUT/PATCH/DELETE on collections and items."""
    rt, ns, name, sub = _resolve(request)
    cluster = _cluster(request)
    method = request.method
    nsv = ns or ""
    if not name:
        if method == "GET":
            watch = _flag(request, "watch")
            _count(request, "watch" if watch else "list", rt, "")
            return await (_watch(request, rt, ns) if watch else _list(request, rt, ns))
        if method == "POST" and (ns is not None or not rt.namespaced):
            _count(request, "create", rt, "")
            obj, warns = cluster.create(rt, nsv, await _body(request), **_write_opts(request))
            return _json(obj, 201, warns)
        if method == "DELETE":
            _count(request, "deletecollection", rt, "")
            items = _select(request, rt, ns)
            body = await _body(request)
            cluster.delete_collection(rt, ns, items, body if isinstance(body, dict) else {})
            return _json({"kind": rt.list_kind, "apiVersion": rt.api_version,
                          "metadata": {"resourceVersion": str(cluster.store.rv)}, "items": items})
        raise method_not_allowed()
    if sub == "eviction":
        if method != "POST":
            raise method_not_allowed()
        # Eviction without PodDisruptionBudget accounting: the pod is deleted gracefully.
        _count(request, "create", rt, sub)
        body = await _body(request)
        options = body.get("deleteOptions") if isinstance(body, dict) else None
        cluster.delete(rt, nsv, name, options or {})
        return _json({"kind": "Status", "apiVersion": "v1", "metadata": {},
                      "status": "Success", "code": 201}, 201)
    if method == "GET":
        _count(request, "get", rt, sub)
        if sub == "scale":
            return _json(cluster.get_scale(rt, nsv, name))
        obj = cluster.get(rt, nsv, name)
        return _json(table(rt, [obj], obj["metadata"]["resourceVersion"],
                           request.query.get("includeObject", "Metadata"))
                     if _wants_table(request) else obj)
    if method == "PUT":
        _count(request, "update", rt, sub)
        if sub == "scale":
            opts = _write_opts(request)
            obj, warns = cluster.update_scale(rt, nsv, name, await _body(request),
                                              opts["dry_run"], opts["manager"])
        else:
            obj, warns = cluster.update(rt, nsv, name, await _body(request), sub,
                                        **_write_opts(request))
        return _json(obj, 200, warns)
    if method == "PATCH":
        _count(request, "patch", rt, sub)
        ctype = request.content_type
        if ctype not in PATCH_TYPES:
            raise unsupported_media(ctype, list(PATCH_TYPES))
        obj, warns = cluster.patch(rt, nsv, name, ctype, await _body(request), sub,
                                   **_write_opts(request))
        return _json(obj, 200, warns)
    if method == "DELETE" and not sub:
        _count(request, "delete", rt, "")
        body = await _body(request)
        options = dict(body) if isinstance(body, dict) else {}
        if "propagationPolicy" in request.query:
            options["propagationPolicy"] = request.query["propagationPolicy"]
        obj = cluster.delete(rt, nsv, name, options, dry_run=_write_opts(request)["dry_run"])
        meta = obj["metadata"]
        pending = cluster.store.get(rt.key, meta.get("namespace", ""), meta["name"]) is not None
        return _json(obj, 202 if pending and meta.get("deletionTimestamp") else 200)
    raise method_not_allowed()


def _select(request: web.Request, rt: ResourceType, ns: str | None) -> list[Obj]:
    cluster = _cluster(request)
    labels = label_matcher(request.query.get("labelSelector"))
    fields = field_matcher(request.query.get("fieldSelector"), rt.field_labels)
    return [cluster.view(rt, o) for o in cluster.store.items(rt.key, ns) if labels(o) and fields(o)]


async def _list(request: web.Request, rt: ResourceType, ns: str | None) -> web.Response:
    """A list (or Table) with metadata.resourceVersion, paginated by limit/continue."""
    cluster = _cluster(request)
    items = _select(request, rt, ns)
    rv = str(cluster.store.rv)
    start = 0
    if request.query.get("continue"):
        try:
            token = json.loads(base64.urlsafe_b64decode(request.query["continue"]))
            start, rv = int(token["start"]), str(token["rv"])
        except (ValueError, KeyError, TypeError) as err:
            raise bad_request(f"invalid continue token: {err}") from err
    meta: dict[str, Any] = {"resourceVersion": rv}
    limit = int(request.query.get("limit") or 0)
    if limit > 0:
        if start + limit < len(items):
            token_raw = json.dumps({"start": start + limit, "rv": rv}).encode()
            meta["continue"] = base64.urlsafe_b64encode(token_raw).decode()
            meta["remainingItemCount"] = len(items) - start - limit
        items = items[start:start + limit]
    else:
        items = items[start:]
    if _wants_table(request):
        out = table(rt, items, rv, request.query.get("includeObject", "Metadata"))
        out["metadata"] = meta
        return _json(out)
    return _json({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta,
                  "items": items})


async def _watch(request: web.Request, rt: ResourceType, ns: str | None) -> web.StreamResponse:
    """Newline-delimited JSON events strictly after ?resourceVersion, with bookmarks."""
    cluster = _cluster(request)
    store = cluster.store
    labels = label_matcher(request.query.get("labelSelector"))
    fields = field_matcher(request.query.get("fieldSelector"), rt.field_labels)
    as_table = _wants_table(request)
    include = request.query.get("includeObject", "Metadata")
    bookmarks = _flag(request, "allowWatchBookmarks")
    interval = request.app[BOOKMARK]
    timeout = float(request.query.get("timeoutSeconds") or 0) or None
    rv_text = request.query.get("resourceVersion", "")

    def matches(obj: Obj | None) -> bool:
        if obj is None:
            return False
        if ns is not None and obj["metadata"].get("namespace") != ns:
            return False
        return labels(obj) and fields(obj)

    def render(etype: str, obj: Obj) -> bytes:
        shown = cluster.view(rt, obj)
        if as_table and etype != "BOOKMARK":
            shown = table(rt, [shown], shown["metadata"]["resourceVersion"], include)
        return json.dumps({"type": etype, "object": shown}).encode() + b"\n"

    def translate(event: Event) -> bytes | None:
        now_in, was_in = matches(event.obj), matches(event.old)
        if event.type == "ADDED":
            return render("ADDED", event.obj) if now_in else None
        if event.type == "DELETED":
            return render("DELETED", event.obj) if (now_in or was_in) else None
        if now_in and not was_in:
            return render("ADDED", event.obj)
        if was_in and not now_in:
            return render("DELETED", event.obj)
        return render("MODIFIED", event.obj) if now_in else None

    watcher = store.subscribe(rt.key)
    backlog: list[bytes] = []
    try:
        if rv_text in ("", "0"):
            backlog = [render("ADDED", o) for o in store.items(rt.key, ns) if matches(o)]
        else:
            try:
                since = store.since(rt.key, int(rv_text))
            except ValueError as err:
                raise bad_request(f'invalid resource version "{rv_text}"') from err
            if since is None:
                status = gone(f"too old resource version: {rv_text} ({store.compacted + 1})")
                backlog = [json.dumps({"type": "ERROR", "object": status.status()}).encode()
                           + b"\n"]
                timeout = 0.0
            else:
                backlog = [line for e in since if (line := translate(e)) is not None]
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for line in backlog:
            await response.write(line)
        await _pump(response, watcher.queue, translate, timeout, interval if bookmarks else None,
                    lambda: render("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version,
                                                "metadata": {"resourceVersion": str(store.rv)}}))
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response
    finally:
        store.unsubscribe(watcher)


async def _pump(response: web.StreamResponse, queue: asyncio.Queue[Event],
                translate: Callable[[Event], bytes | None], timeout: float | None,
                bookmark_every: float | None, bookmark: Callable[[], bytes]) -> None:
    """Copy events to the response until timeoutSeconds, a CLOSE, or the client leaves."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    next_bookmark = None if bookmark_every is None else loop.time() + bookmark_every
    try:
        while True:
            now = loop.time()
            waits = [t - now for t in (deadline, next_bookmark) if t is not None]
            if deadline is not None and now >= deadline:
                return
            try:
                event = await asyncio.wait_for(queue.get(), max(0.0, min(waits)) if waits
                                               else None)
            except TimeoutError:
                if next_bookmark is not None and loop.time() >= next_bookmark and queue.empty():
                    await response.write(bookmark())
                    next_bookmark = loop.time() + (bookmark_every or 0)
                continue
            if event.type == "CLOSE":
                return
            line = translate(event)
            if line is not None:
                await response.write(line)
    except (ConnectionError, asyncio.CancelledError):
        return


def make_app(cluster: Cluster | None = None, bookmark_interval: float = 15.0) -> web.Application:
    """Build the application; `bookmark_interval` is how often watches get BOOKMARKs."""
    app = web.Application(middlewares=[errors_as_status], client_max_size=16 * 1024 * 1024)
    app[CLUSTER] = cluster or Cluster()
    app[BOOKMARK] = bookmark_interval
    r = app.router
    r.add_get("/version", version)
    for probe in ("/healthz", "/readyz", "/livez"):
        r.add_get(probe, healthz)
    r.add_get("/api", api_versions)
    r.add_get("/apis", api_groups)
    r.add_get("/openapi/v3", openapi_root)
    r.add_get("/openapi/v3/{path:.+}", openapi_doc)
    r.add_get("/_fake/stats", stats)
    r.add_post("/_fake/reset", reset_stats)
    r.add_post("/_fake/compact", compact)
    r.add_get("/api/v1", _group_version)
    r.add_get("/apis/{group}", api_group)
    r.add_get("/apis/{group}/{version}", _group_version)
    r.add_route("*", "/api/v1/{tail:.+}", resource)
    r.add_route("*", "/apis/{group}/{version}/{tail:.+}", resource)
    return app


async def _group_version(request: web.Request) -> web.Response:
    group = request.match_info.get("group", "")
    version = request.match_info.get("version", "v1")
    found = _cluster(request).registry.resource_list(group, version)
    if found is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return _json(found)
