"""Hostile inputs against a real aggregator process: each rejected, counted, never applied.

Also: grpc.health.v1 answers without a token, and ``promtool check metrics`` passes on a
real scrape of /metrics.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from esenas.api import wire
from esenas.api.v1 import aggregator_pb2 as pb
from esenas.api.v1 import aggregator_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.runtime.procs import (
    REPO,
    TOKEN,
    AggregatorProc,
    metric,
    start_aggregator,
    stop_all,
    write_job,
)

AUTH = wire.bearer(TOKEN)


@pytest.fixture
def agg(tmp_path: Path) -> Iterator[AggregatorProc]:
    job = write_job(tmp_path, **{"es.perturbations": 4, "es.topDirections": 0, "workers.batchSize": 8})
    a = start_aggregator(tmp_path, job, exit_when_done=False)
    yield a
    stop_all(a)


def _lease(stub: pb_grpc.AggregatorStub) -> pb.ExchangeReply:
    reply: pb.ExchangeReply = stub.Exchange(
        pb.ExchangeRequest(worker_id="hostile", max_items=8, wait_ms=2000), metadata=AUTH, timeout=10
    )
    return reply


def _push(stub: pb_grpc.AggregatorStub, reply: pb.ExchangeReply, results: bytes, iteration: int | None = None) -> pb.ExchangeReply:
    out: pb.ExchangeReply = stub.Exchange(
        pb.ExchangeRequest(
            worker_id="hostile",
            session=reply.session,
            iteration=reply.iteration if iteration is None else iteration,
            results=results,
            max_items=0,
        ),
        metadata=AUTH,
        timeout=10,
    )
    return out


def _params(stub: pb_grpc.AggregatorStub, version: int) -> np.ndarray:
    p: pb.Params = stub.GetParams(pb.ParamsRequest(version=version), metadata=AUTH, timeout=10)
    return wire.decode_f32(p.params)


def test_hostile_inputs_are_rejected_counted_and_never_applied(agg: AggregatorProc) -> None:
    with grpc.insecure_channel(agg.address) as ch:
        stub = pb_grpc.AggregatorStub(ch)

        # Bad and missing tokens.
        for md in ((("authorization", "Bearer wrong"),), ()):
            with pytest.raises(grpc.RpcError) as e:
                stub.Exchange(pb.ExchangeRequest(worker_id="x", max_items=1), metadata=md, timeout=5)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED

        reply = _lease(stub)
        items = wire.decode_items(reply.items)
        assert len(items) == 4
        start_params = _params(stub, reply.version)

        def rec(i: int, rp: float = 1.0, rn: float = 0.5) -> bytes:
            it = items[i]
            return wire.encode_results([it["index"]], [rp], [rn], [10], [it["topology"]])

        # A NaN and an infinite reward.
        assert _push(stub, reply, rec(0, rp=math.nan)).rejected == 1
        assert _push(stub, reply, rec(0, rn=math.inf)).rejected == 1
        # A wrong (future) iteration.
        assert _push(stub, reply, rec(0), iteration=reply.iteration + 999).rejected == 1
        # A valid result, then the same again: the copy is a duplicate.
        assert _push(stub, reply, rec(0)).accepted == 1
        assert _push(stub, reply, rec(0, rp=-1e6)).rejected == 1
        # A message over the size limit (2 MiB of records): refused before any record is read.
        with pytest.raises(grpc.RpcError) as e:
            _push(stub, reply, rec(1) * (2 * 1024 * 1024 // 28))
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

        m = agg.get("/metrics")
        assert metric(m, "esenas_results_rejected_total", reason="token") == 2
        assert metric(m, "esenas_results_rejected_total", reason="nonfinite") == 2
        assert metric(m, "esenas_results_rejected_total", reason="unknown_iteration") == 1
        assert metric(m, "esenas_results_rejected_total", reason="duplicate") == 1
        assert metric(m, "esenas_results_rejected_total", reason="oversize") == 1
        assert metric(m, "esenas_results_total") == 1
        assert agg.status()["iteration"] == 0  # nothing bad completed the iteration

        # Finish the iteration honestly: the ES step uses only the accepted values.
        assert _push(stub, reply, b"".join(rec(i, rp=float(i), rn=-float(i)) for i in (1, 2, 3))).accepted == 3
        agg.wait_for(lambda s: s["iteration"] == 1, 10, "iteration 1")
        nxt = _lease(stub)
        assert nxt.version != reply.version
        new_params = _params(stub, nxt.version)
        assert np.all(np.isfinite(new_params))
        assert not np.array_equal(new_params, start_params)
        # A result for the finished iteration is stale: counted, not applied.
        _push(stub, reply, rec(2))
        assert metric(agg.get("/metrics"), "esenas_results_stale_total") == 1


def test_health_answers_without_token(agg: AggregatorProc) -> None:
    with grpc.insecure_channel(agg.address) as ch:
        h = health_pb2_grpc.HealthStub(ch)
        for service in ("", "esenas.api.v1.Aggregator"):
            r = h.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert r.status == health_pb2.HealthCheckResponse.SERVING


def test_promtool_check_metrics_passes_on_a_real_scrape(agg: AggregatorProc, tmp_path: Path) -> None:
    promtool = shutil.which("promtool") or str(REPO / ".tools/bin/promtool")
    if not Path(promtool).exists():
        pytest.fail("promtool not found: run scripts/fetch-tools.sh (Debian package prometheus)")
    with grpc.insecure_channel(agg.address) as ch:  # some traffic, so counters have samples
        stub = pb_grpc.AggregatorStub(ch)
        with pytest.raises(grpc.RpcError):
            stub.Exchange(pb.ExchangeRequest(worker_id="x"), metadata=(("authorization", "Bearer no"),), timeout=5)
        _lease(stub)
    text = agg.get("/metrics")
    for name in ("esenas_iteration", "esenas_workers_connected", "esenas_iteration_duration_seconds_bucket", "esenas_job_done"):
        assert name in text
    assert "worker_id" not in text and "hostile" not in text  # no per-worker labels
    r = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
