"""A small asyncio client of the Kubernetes REST API for the pod runner: JSON in, JSON out, and
list+watch informers that keep a local cache, so the runner reacts to events instead of polling."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import aiohttp
import yaml

log = logging.getLogger("simcluster.kubeapi")
Obj = dict[str, Any]
MERGE: Final = "application/merge-patch+json"


class ApiError(Exception):
    """A non-2xx answer from the API server; `code` is the HTTP status."""

    def __init__(self, code: int, body: str) -> None:
        super().__init__(f"{code}: {body[:500]}")
        self.code = code


def read_kubeconfig(path: Path) -> tuple[str, str | None]:
    """(server URL, bearer token or None) of the kubeconfig's current context."""
    cfg = yaml.safe_load(path.read_text())
    ctx_name = cfg.get("current-context")
    ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
    cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
    user: dict[str, Any] = next((u["user"] for u in cfg.get("users") or () if u["name"] == ctx.get("user")), {})
    return str(cluster["server"]).rstrip("/"), user.get("token")


def key(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


class Kube:
    """Raw requests against one API server; paths are the usual /api/v1/... REST paths."""

    def __init__(self, server: str, token: str | None) -> None:
        self.server = server
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.session = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))

    async def close(self) -> None:
        await self.session.close()

    async def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                      query: dict[str, str] | None = None) -> Any:
        data = None if body is None else json.dumps(body)
        async with self.session.request(method, self.server + path, data=data, params=query,
                                        headers={"Content-Type": content_type},
                                        timeout=aiohttp.ClientTimeout(total=30)) as resp:
            text = await resp.text()
            if resp.status >= 400:
                raise ApiError(resp.status, text)
            return json.loads(text) if text else None

    async def get(self, path: str) -> Obj | None:
        """The object, or None when it does not exist."""
        try:
            result: Obj = await self.request("GET", path)
            return result
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def create(self, path: str, obj: Obj) -> Obj:
        result: Obj = await self.request("POST", path, obj)
        return result

    async def merge_patch(self, path: str, patch: Obj) -> Obj | None:
        """Merge-patch (RFC 7386); None when the object is gone."""
        try:
            result: Obj = await self.request("PATCH", path, patch, content_type=MERGE)
            return result
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def delete(self, path: str, grace: int | None = None) -> bool:
        """Delete in the background; False when it was already gone."""
        body: Obj = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        try:
            await self.request("DELETE", path, body)
            return True
        except ApiError as exc:
            if exc.code == 404:
                return False
            raise

    async def watch(self, path: str, resource_version: str) -> AsyncIterator[Obj]:
        """Watch events after resource_version until the server ends the stream."""
        query = {"watch": "true", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
                 "timeoutSeconds": "300"}
        async with self.session.get(self.server + path, params=query) as resp:
            if resp.status >= 400:
                raise ApiError(resp.status, await resp.text())
            async for line in resp.content:
                if line.strip():
                    yield json.loads(line)


Handler = Callable[[str, Obj], Awaitable[None]]


class Informer:
    """List+watch of one resource across namespaces: a cache by (namespace, name) and a callback
    per change (event type ADDED/MODIFIED/DELETED). A 410 (or a broken stream) relists."""

    def __init__(self, kube: Kube, path: str, handler: Handler) -> None:
        self.kube = kube
        self.path = path
        self.handler = handler
        self.cache: dict[tuple[str, str], Obj] = {}
        self.synced = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                await self._list_and_watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the stream broke: relist after a short pause
                log.debug("informer %s: %s; relisting", self.path, exc)
                await asyncio.sleep(0.5)

    async def _list_and_watch(self) -> None:
        listing = await self.kube.request("GET", self.path)
        fresh = {key(o): o for o in listing.get("items") or ()}
        for k in list(self.cache):
            if k not in fresh:
                gone = self.cache.pop(k)
                await self._call("DELETED", gone)
        for k, o in fresh.items():
            kind = "MODIFIED" if k in self.cache else "ADDED"
            self.cache[k] = o
            await self._call(kind, o)
        self.synced.set()
        rv = str(listing["metadata"].get("resourceVersion", "0"))
        while True:
            async for event in self.kube.watch(self.path, rv):
                etype, obj = event.get("type"), event.get("object") or {}
                if etype == "ERROR":
                    raise ApiError(int(obj.get("code") or 500), str(obj.get("message")))
                rv = str(obj.get("metadata", {}).get("resourceVersion", rv))
                if etype == "BOOKMARK":
                    continue
                k = key(obj)
                if etype == "DELETED":
                    self.cache.pop(k, None)
                else:
                    self.cache[k] = obj
                await self._call(str(etype), obj)

    async def _call(self, etype: str, obj: Obj) -> None:
        try:
            await self.handler(etype, obj)
        except Exception:
            log.exception("handler for %s %s/%s failed", etype, *key(obj))
