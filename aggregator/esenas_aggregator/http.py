"""The aggregator's HTTP endpoints (docs/contracts.md): /metrics, /healthz, /status, /history, /summary, /result."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from aiohttp import web

from esenas_aggregator.metrics import Metrics

StatusFn = Callable[[], dict[str, Any]]
ResultFn = Callable[[], dict[str, Any] | None]


def build_app(
    metrics: Metrics, status: StatusFn, result: ResultFn, history: StatusFn, summary: StatusFn
) -> web.Application:
    """An aiohttp app; the callables read the live aggregator state at request time."""

    async def get_metrics(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def get_healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def get_status(_: web.Request) -> web.Response:
        return web.json_response(status(), dumps=_dumps)

    async def get_history(_: web.Request) -> web.Response:
        return web.json_response(history(), dumps=_dumps)

    async def get_result(_: web.Request) -> web.Response:
        policy = result()
        if policy is None:
            return web.json_response({"error": "no result yet"}, status=404)
        return web.json_response(policy, dumps=_dumps)

    async def get_summary(_: web.Request) -> web.Response:
        # summary.json of `esenas run` (esenas.run_summary), for the operator's stored result.
        if result() is None:
            return web.json_response({"error": "no result yet"}, status=404)
        return web.json_response(summary(), dumps=_dumps)

    app = web.Application()
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/healthz", get_healthz)
    app.router.add_get("/status", get_status)
    app.router.add_get("/history", get_history)
    app.router.add_get("/result", get_result)
    app.router.add_get("/summary", get_summary)
    return app


def _dumps(obj: Any) -> str:
    # NaN is not JSON; the contract says null for "no value yet". Documents are built finite;
    # should a non-finite number slip in anyway, it is served as null, never as a 500.
    try:
        return json.dumps(obj, allow_nan=False, default=_default)
    except ValueError:
        return json.dumps(_nulled(json.loads(json.dumps(obj, default=_default))), allow_nan=False)


def _nulled(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _nulled(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_nulled(v) for v in doc]
    if isinstance(doc, float) and not math.isfinite(doc):
        return None
    return doc


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


async def start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve ``app``; port 0 picks a free one. Returns the runner and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)
