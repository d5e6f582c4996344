"""The simulated cluster network: cluster DNS plus kube-proxy, as one local HTTP proxy.

Processes in simulated pods (and the operator) get the standard proxy variables
(`http_proxy`, `grpc_proxy`, `no_proxy=127.0.0.1,localhost`). gRPC then dials
`NAME.NS.svc:PORT` with an HTTP CONNECT to this proxy, and urllib sends
`GET http://NAME.NS.svc:PORT/...` to it; the proxy resolves the Service name to a ready pod
behind it (selector match, targetPort by name or number) and that pod's mapped 127.0.0.1 port,
then pipes bytes. No code in the runtime or the operator changes: they dial exactly the names
their manifests say, and an unknown name or a Service without ready pods fails like it would in
a cluster (connection refused -> 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from typing import Final

log = logging.getLogger("simcluster.netproxy")
#: host, port -> (127.0.0.1, local port) or None
Resolver = Callable[[str, int], "tuple[str, int] | None"]
SUFFIXES: Final = (".svc.cluster.local", ".svc")


def service_name(host: str) -> tuple[str, str] | None:
    """(name, namespace) of a Service DNS name: NAME.NS, NAME.NS.svc or NAME.NS.svc.cluster.local."""
    host = host.rstrip(".").lower()
    for suffix in SUFFIXES:
        if host.endswith(suffix):
            host = host[: -len(suffix)]
            break
    m = re.fullmatch(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)", host)
    return (m.group(1), m.group(3)) if m else None


def split_host_port(authority: str, default: int) -> tuple[str, int]:
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default
    host, sep, port = authority.rpartition(":")
    return (host, int(port)) if sep and port.isdigit() else (authority, default)


class ServiceProxy:
    """An asyncio HTTP CONNECT and forward proxy on 127.0.0.1 that resolves Service names."""

    def __init__(self, resolve: Resolver) -> None:
        self.resolve = resolve
        self.server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    def env(self) -> dict[str, str]:
        """The variables that route a process's cluster traffic through this proxy."""
        url = f"http://127.0.0.1:{self.port}"
        no_proxy = "127.0.0.1,localhost,::1"
        return {"http_proxy": url, "HTTP_PROXY": url, "grpc_proxy": url, "no_proxy": no_proxy, "NO_PROXY": no_proxy}

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            await self._reply(writer, 400, "bad request line")
            return
        if method == "CONNECT":
            host, port = split_host_port(target, 443)
            rest = b""
        else:
            m = re.fullmatch(r"http://([^/]+)(/.*)?", target)
            if not m:
                await self._reply(writer, 400, f"not a proxy request: {target}")
                return
            host, port = split_host_port(m.group(1), 80)
            headers = [h for h in lines[1:] if h and not h.lower().startswith(("proxy-connection:", "connection:"))]
            rest = "\r\n".join([f"{method} {m.group(2) or '/'} {version}", *headers, "Connection: close", "", ""]).encode("latin-1")
        backend = self.resolve(host, port)
        if backend is None:
            await self._reply(writer, 503, f"no ready endpoint for {host}:{port}")
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*backend), 5)
        except (OSError, TimeoutError) as exc:
            await self._reply(writer, 503, f"{host}:{port} -> {backend[0]}:{backend[1]}: {exc}")
            return
        self.connections += 1
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            up_writer.write(rest)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, code: int, message: str) -> None:
        body = message.encode()
        writer.write(f"HTTP/1.1 {code} Proxy\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()
