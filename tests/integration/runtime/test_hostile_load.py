"""Hostile load against a real aggregator: unauthenticated streams cost no memory, one
connection cannot open streams by the hundred, and a worker that hoards items (under one id
or a new one for every pull) cannot stall training past the item timeout.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import grpc
import pytest
from esenas_aggregator.service import MAX_CONCURRENT_STREAMS
from esenas_api.v1 import aggregator_pb2 as pb
from esenas_api.v1 import aggregator_pb2_grpc as pb_grpc

from tests.integration.runtime.hostile import (
    AUTH,
    Client,
    assert_finite_documents,
    counter,
    finish_iteration,
    items_of,
    results,
)
from tests.integration.runtime.procs import (
    AggregatorProc,
    metric,
    start_aggregator,
    start_worker,
    stop_all,
    write_job,
)

STREAMS = 200


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _unauthenticated_streams(address: str, body: bytes, hold_s: float) -> set[grpc.StatusCode]:
    """STREAMS concurrent Exchange calls without a token, each sending a large message and then
    keeping its stream open (a client-streaming call whose request iterator stalls), over
    STREAMS / 10 connections: within each one's concurrent-stream limit, so every call reaches
    the token check (one connection's streams past its limit are refused by the transport,
    see test_one_connection_gets_a_bounded_number_of_concurrent_streams)."""
    codes: set[grpc.StatusCode] = set()
    chans = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(STREAMS // 10)
    ]
    try:
        calls = [
            ch.stream_unary("/esenas.api.v1.Aggregator/Exchange", request_serializer=None, response_deserializer=None)
            for ch in chans
        ]

        async def one(i: int) -> None:
            call = calls[i % len(calls)]

            async def body_then_stall():  # type: ignore[no-untyped-def]
                yield body
                await asyncio.sleep(hold_s)

            try:
                await call(body_then_stall(), timeout=hold_s + 20)
                codes.add(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as exc:
                codes.add(exc.code())

        await asyncio.gather(*(one(i) for i in range(STREAMS)))
    finally:
        for ch in chans:
            await ch.close()
    return codes


def test_unauthenticated_streams_are_refused_before_their_bodies_are_buffered(tmp_path: Path) -> None:
    job = write_job(tmp_path, **{"stopping.targetReward": 1e9})
    agg = start_aggregator(tmp_path, job, exit_when_done=False)
    try:
        agg.wait_for(lambda s: s["phase"] == "Running", 30, "running")
        before = _rss_kib(agg.proc.pid)
        body = pb.ExchangeRequest(worker_id="x", results=b"\x00" * (360 * 1024)).SerializeToString()
        codes = asyncio.run(_unauthenticated_streams(agg.address, body, hold_s=3.0))
        growth_mib = (_rss_kib(agg.proc.pid) - before) / 1024
        assert codes == {grpc.StatusCode.UNAUTHENTICATED}
        assert counter(agg, "token") == STREAMS
        # 200 bodies of 360 KiB would be 70 MiB if they were read before the token check.
        assert growth_mib <= 48, f"RSS grew {growth_mib:.1f} MiB for {STREAMS} unauthenticated streams"
        with grpc.insecure_channel(agg.address) as ch:  # and training still goes on
            finish_iteration(agg, pb_grpc.AggregatorStub(ch))
    finally:
        stop_all(agg)


def _iteration_times(agg: AggregatorProc, iterations: int, timeout: float) -> list[float]:
    """Wall time of each of the next ``iterations`` iterations, from polling /status."""
    times: list[float] = []
    last, t_last = agg.status()["iteration"], time.monotonic()
    end = time.monotonic() + timeout
    while len(times) < iterations:
        assert time.monotonic() < end, f"iterations stalled: {times}\n{agg.text()[-3000:]}"
        it = agg.status()["iteration"]
        if it != last:
            now = time.monotonic()
            times.append((now - t_last) / (it - last))
            last, t_last = it, now
        time.sleep(0.02)
    return times


def _hoard(address: str, stop: threading.Event, got: list[int], new_id_each_pull: bool) -> None:
    """Keep pulling as many items as the aggregator gives, never answering; under one worker id,
    or under a new one every time (no lease is then abandoned by a later pull of the same id)."""
    with grpc.insecure_channel(address) as ch:
        stub = pb_grpc.AggregatorStub(ch)
        i = 0
        while not stop.is_set():
            i += 1
            wid = f"sybil-{i}" if new_id_each_pull else "hoarder"
            try:
                reply = stub.Exchange(pb.ExchangeRequest(worker_id=wid, max_items=4096, wait_ms=200 if new_id_each_pull else 500),
                                      metadata=AUTH, timeout=10)
            except grpc.RpcError:
                time.sleep(0.05)
                continue
            got.append(len(reply.items) // 17)


@pytest.mark.parametrize("new_id_each_pull", [False, True], ids=["one-id", "new-id-every-pull"])
def test_a_persistent_hoarder_does_not_stall_iterations(tmp_path: Path, new_id_each_pull: bool) -> None:
    # itemTimeoutSeconds stays at its default (60 s): recovery must not wait for it.
    job = write_job(
        tmp_path,
        **{"es.perturbations": 16, "workers.batchSize": 4, "stopping.targetReward": 1e9, "stopping.maxIterations": 1000},
    )
    agg = start_aggregator(tmp_path, job, exit_when_done=False)
    workers = [start_worker(tmp_path, job, agg.address, f"w{i}") for i in range(2)]
    stop, got = threading.Event(), []  # type: ignore[var-annotated]
    hoarder = threading.Thread(target=_hoard, args=(agg.address, stop, got, new_id_each_pull), daemon=True)
    try:
        agg.wait_for(lambda s: s["iteration"] >= 2, 60, "iteration 2")
        normal = _iteration_times(agg, 5, timeout=120)
        hoarder.start()
        hoarded = _iteration_times(agg, 8, timeout=240)
        assert sum(got) > 0  # it did get items, and sat on them
        # A stall would last the 60 s item timeout.
        assert max(hoarded) <= max(normal) + 10.0, (normal, hoarded)
        text = agg.get("/metrics")
        speculative = metric(text, "esenas_items_speculative_total")
        assert speculative + metric(text, "esenas_items_released_total") > 0  # re-issued, not waited for
        if new_id_each_pull:
            assert metric(text, "esenas_leases_probation_refused_total") > 0  # its made-up ids hit their cap
            assert speculative > 0  # and what they hold was backed up
            assert agg.status()["workersConnected"] == 2  # ids that only hold items are no workers
        assert_finite_documents(agg)
    finally:
        stop.set()
        stop_all(agg, *workers)


async def _long_polls(address: str, calls: int, wait_ms: int) -> tuple[list[float], set[grpc.StatusCode]]:
    """``calls`` concurrent Exchange long-polls on one channel (one connection) that find no
    free item; returns when each that succeeded answered (seconds from the start), and the
    status codes of all."""
    codes: set[grpc.StatusCode] = set()
    answered: list[float] = []
    async with grpc.aio.insecure_channel(address) as ch:
        stub = pb_grpc.AggregatorStub(ch)
        t0 = time.monotonic()

        async def one(i: int) -> None:
            try:
                await stub.Exchange(
                    pb.ExchangeRequest(worker_id=f"poll-{i}", max_items=1, wait_ms=wait_ms), metadata=AUTH, timeout=60
                )
                codes.add(grpc.StatusCode.OK)
                answered.append(time.monotonic() - t0)
            except grpc.aio.AioRpcError as exc:
                codes.add(exc.code())

        await asyncio.gather(*(one(i) for i in range(calls)))
    return answered, codes


def test_one_connection_gets_a_bounded_number_of_concurrent_streams(tmp_path: Path) -> None:
    job = write_job(tmp_path, **{"es.perturbations": 4, "workers.batchSize": 64, "stopping.targetReward": 1e9})
    agg = start_aggregator(tmp_path, job, exit_when_done=False)
    try:
        agg.wait_for(lambda s: s["phase"] == "Running", 30, "running")
        ch = grpc.insecure_channel(agg.address)
        holder = Client(pb_grpc.AggregatorStub(ch), "holder")
        held = holder.lease(max_items=64)  # one client holds every item: the long-polls find none
        assert held.items
        before = _rss_kib(agg.proc.pid)
        # 64 long-polls of 1 s on one connection: the server admits MAX_CONCURRENT_STREAMS (16) at a
        # time. Streams opened past it are refused (RST_STREAM REFUSED_STREAM: UNAVAILABLE) or, once the
        # client knows the limit, held by its HTTP/2 stack and answered in later waves.
        answered, codes = asyncio.run(_long_polls(agg.address, 64, 1000))
        growth_mib = (_rss_kib(agg.proc.pid) - before) / 1024
        assert codes <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
        first_wave = sum(t < 1.5 for t in answered)
        assert 1 <= first_wave <= MAX_CONCURRENT_STREAMS, f"{first_wave} of 64 long-polls served at once"
        assert growth_mib <= 16, f"RSS grew {growth_mib:.1f} MiB"
        holder.push(held, results(items_of(held)))  # and training still goes on
        finish_iteration(agg, holder.stub)
        ch.close()
    finally:
        stop_all(agg)
