"""A hostile client for the hostile-input tests: real gRPC calls against a real aggregator process."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
from esenas_api import wire
from esenas_api.v1 import aggregator_pb2 as pb
from esenas_api.v1 import aggregator_pb2_grpc as pb_grpc

from tests.integration.runtime.procs import TOKEN, AggregatorProc, metric

AUTH = wire.bearer(TOKEN)


class Client:
    """One worker identity speaking the protocol by hand."""

    def __init__(self, stub: pb_grpc.AggregatorStub, worker_id: str) -> None:
        self.stub = stub
        self.worker_id = worker_id

    def lease(self, max_items: int = 64, wait_ms: int = 5000) -> pb.ExchangeReply:
        reply: pb.ExchangeReply = self.stub.Exchange(
            pb.ExchangeRequest(worker_id=self.worker_id, max_items=max_items, wait_ms=wait_ms), metadata=AUTH, timeout=30
        )
        return reply

    def push(
        self,
        reply: pb.ExchangeReply,
        results: bytes,
        obs_stats: bytes = b"",
        iteration: int | None = None,
        lease: int | None = None,
    ) -> pb.ExchangeReply:
        out: pb.ExchangeReply = self.stub.Exchange(
            pb.ExchangeRequest(
                worker_id=self.worker_id,
                session=reply.session,
                iteration=reply.iteration if iteration is None else iteration,
                lease=reply.lease if lease is None else lease,
                results=results,
                obs_stats=obs_stats,
                max_items=0,
            ),
            metadata=AUTH,
            timeout=30,
        )
        return out


def items_of(reply: pb.ExchangeReply) -> np.ndarray:
    return wire.decode_items(reply.items)


def results(items: np.ndarray, rp: float = 1.0, rn: float = 0.5, steps: int = 10) -> bytes:
    n = len(items)
    return wire.encode_results(items["index"], np.full(n, rp), np.full(n, rn), np.full(n, steps), items["topology"])


def params(stub: pb_grpc.AggregatorStub, version: int) -> np.ndarray:
    p: pb.Params = stub.GetParams(pb.ParamsRequest(version=version), metadata=AUTH, timeout=10)
    return wire.decode_f32(p.params)


def counter(agg: AggregatorProc, reason: str) -> float:
    return metric(agg.get("/metrics"), "esenas_results_rejected_total", reason=reason)


def finish_iteration(agg: AggregatorProc, stub: pb_grpc.AggregatorStub) -> np.ndarray:
    """Answer every item of the current iteration honestly, as worker "honest"; check that the
    iteration completes and that the new parameters and every served number are finite."""
    before = int(agg.status()["iteration"])
    honest = Client(stub, "honest")
    end = time.monotonic() + 30
    while int(agg.status()["iteration"]) == before:
        assert time.monotonic() < end, f"iteration {before} never completed\n{agg.text()[-3000:]}"
        reply = honest.lease(wait_ms=200)
        if reply.items:
            out = honest.push(reply, results(items_of(reply), rp=float(np.random.default_rng().normal()), rn=0.0))
            assert out.rejected == 0
    reply = honest.lease()
    new = params(stub, reply.version)
    honest.push(reply, results(items_of(reply)))  # leave no lease behind
    assert np.all(np.isfinite(new))
    assert_finite_documents(agg)
    return new


def assert_finite_documents(agg: AggregatorProc) -> None:
    """/status, /history and /result are valid JSON (no NaN, no infinity); gauges are finite."""
    for path in ("/status", "/history"):
        _assert_finite(agg.get(path), path)
    for line in agg.get("/metrics").splitlines():
        if line and not line.startswith("#"):
            value = float(line.rpartition(" ")[2])
            assert math.isfinite(value), line


def _assert_finite(doc: Any, where: str) -> None:
    for value in _numbers(doc):
        assert math.isfinite(value), f"{where}: {value}"


def _numbers(doc: Any) -> Iterator[float]:
    if isinstance(doc, dict):
        for v in doc.values():
            yield from _numbers(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _numbers(v)
    elif isinstance(doc, float):
        yield doc


def raw_call(channel: grpc.Channel, body: bytes, metadata: Any = AUTH) -> grpc.StatusCode:
    """Send raw bytes as an Exchange request; returns the status code."""
    call = channel.unary_unary("/esenas.api.v1.Aggregator/Exchange", request_serializer=None, response_deserializer=None)
    try:
        call(body, metadata=metadata, timeout=10)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK
