"""Binding a server's gRPC and HTTP ports, or one line saying which port cannot be bound and why.

A port that is taken (``esenas run --http-port 8080`` beside another server, a pod whose port
another container holds) used to end the process with an asyncio traceback, buried under grpc's
own noise from a server collected after the event loop closed, and ``esenas run`` said only
"the aggregator did not start". Now it is the process's last line and its termination message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from esenas.envload import one_line

from esenas_aggregator import http
from esenas_aggregator.service import AggregatorService, build_server


@dataclass(frozen=True)
class Listening:
    """The started gRPC servers, their health servicers and port; the HTTP runner and its port."""

    server: Any
    grpc_port: int
    health: Any
    runner: web.AppRunner
    http_port: int


async def listen(service: AggregatorService, app: web.Application, host: str, grpc_port: int, http_port: int,
                 tls: tuple[bytes, bytes] | None) -> Listening | str:
    """Both servers started, or why not (naming the flag), with nothing left listening."""
    try:
        server, bound_grpc, health = build_server(service, host, grpc_port, tls=tls)
    except (OSError, RuntimeError) as exc:  # grpcio raises RuntimeError where the port is taken
        return f"--port {grpc_port}: cannot serve gRPC on {host}:{grpc_port}: {one_line(exc)}"
    await server.start()
    try:
        runner, bound_http = await http.start(app, host, http_port)
    except OSError as exc:
        await server.stop(None)  # before the loop closes, or grpc's finaliser floods the log
        return f"--http-port {http_port}: cannot serve HTTP on {host}:{http_port}: {exc.strerror or one_line(exc)}"
    return Listening(server, bound_grpc, health, runner, bound_http)
