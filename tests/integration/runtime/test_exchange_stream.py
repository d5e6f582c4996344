"""ExchangeStream against a real aggregator process: one long-lived stream per worker carries its
exchanges, with Exchange's meaning, the token checked when the stream opens, and bad messages
refused and counted as they are on a call."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
from esenas_api.v1 import aggregator_pb2 as pb
from esenas_api.v1 import aggregator_pb2_grpc as pb_grpc
from esenas_worker.worker import ExchangeStream

from tests.integration.runtime.hostile import AUTH, counter, finish_iteration, items_of, results
from tests.integration.runtime.procs import AggregatorProc, metric

METHOD = "/esenas.api.v1.Aggregator/ExchangeStream"


def test_one_stream_carries_whole_iterations_in_order(agg: AggregatorProc, stub: pb_grpc.AggregatorStub) -> None:
    stream = ExchangeStream(stub, AUTH)
    start = int(agg.status()["iteration"])
    request = pb.ExchangeRequest(worker_id="streamer", max_items=3, wait_ms=5000)
    pushed = accepted = 0
    iterations: set[int] = set()
    try:
        while int(agg.status()["iteration"]) < start + 2:
            reply = stream.exchange(request, timeout=30)
            accepted += reply.accepted
            assert reply.rejected == 0
            if not reply.items:
                request = pb.ExchangeRequest(worker_id="streamer", max_items=3, wait_ms=5000)
                continue
            assert 0 < len(items_of(reply)) <= 3  # each reply answers its own request's max_items
            iterations.add(reply.iteration)
            items = items_of(reply)
            request = pb.ExchangeRequest(
                worker_id="streamer", session=reply.session, iteration=reply.iteration, lease=reply.lease,
                results=results(items, rp=float(np.random.default_rng().normal()), rn=0.0),
                max_items=3, wait_ms=5000,
            )
            pushed += len(items)
        request.max_items = 0  # hand in the last results, take nothing
        accepted += stream.exchange(request, timeout=30).accepted
    finally:
        stream.close()
    # every result sent on the stream counted, over at least two iterations, with one token check
    assert len(iterations) >= 2
    assert accepted >= pushed - 3 and accepted > 0
    finish_iteration(agg, stub)


def _streams_open(agg: AggregatorProc) -> float:
    return metric(agg.get("/metrics"), "esenas_exchange_streams_open")


def test_open_streams_are_a_gauge_and_closing_one_is_no_refusal(agg: AggregatorProc, stub: pb_grpc.AggregatorStub) -> None:
    before = _streams_open(agg)
    streams = [ExchangeStream(stub, AUTH) for _ in range(3)]
    for i, stream in enumerate(streams):
        stream.exchange(pb.ExchangeRequest(worker_id=f"gauge{i}", max_items=0), timeout=10)
    assert _streams_open(agg) == before + 3
    refused = {reason: counter(agg, reason) for reason in ("oversize", "malformed")}
    for stream in streams:
        stream.close()  # half-close, then cancel: as a worker does when it exits
    end = time.monotonic() + 10
    while _streams_open(agg) != before:  # closing is asynchronous on the server
        assert time.monotonic() < end, "closed streams still counted as open"
        time.sleep(0.05)
    time.sleep(0.2)
    assert {reason: counter(agg, reason) for reason in refused} == refused  # closing is no refusal


def test_the_token_is_checked_when_the_stream_opens(agg: AggregatorProc, stub: pb_grpc.AggregatorStub) -> None:
    before = counter(agg, "token")
    for md in ((("authorization", "Bearer wrong"),), ()):
        stream = ExchangeStream(stub, md)
        with pytest.raises(grpc.RpcError) as e:
            stream.exchange(pb.ExchangeRequest(worker_id="x", max_items=8), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert counter(agg, "token") == before + 2
    finish_iteration(agg, stub)


def _raw_stream(agg: AggregatorProc, messages: list[bytes]) -> tuple[list[bytes], grpc.StatusCode]:
    """Send raw messages on one stream; the replies that came back and the stream's final status."""
    with grpc.insecure_channel(agg.address) as ch:
        call = ch.stream_stream(METHOD, request_serializer=None, response_deserializer=None)
        replies: list[bytes] = []
        try:
            replies.extend(call(iter(messages), metadata=AUTH, timeout=15))
        except grpc.RpcError as exc:
            return replies, exc.code()
        return replies, grpc.StatusCode.OK


def test_a_malformed_message_ends_the_stream_counted(agg: AggregatorProc, stub: pb_grpc.AggregatorStub) -> None:
    before = counter(agg, "malformed")
    good = pb.ExchangeRequest(worker_id="garbler", max_items=0).SerializeToString()
    replies, code = _raw_stream(agg, [good, b"\xff\xff\xff\xff\x0f\x01", good])
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(replies) == 1  # the good message before it was answered
    assert counter(agg, "malformed") == before + 1
    replies, code = _raw_stream(agg, [])  # a stream closed before any message
    assert (replies, code) == ([], grpc.StatusCode.INVALID_ARGUMENT)
    assert counter(agg, "malformed") == before + 2
    finish_iteration(agg, stub)


def test_an_oversize_message_on_a_stream_is_refused(agg: AggregatorProc, stub: pb_grpc.AggregatorStub) -> None:
    before, malformed = counter(agg, "oversize"), counter(agg, "malformed")
    good = pb.ExchangeRequest(worker_id="bloater", max_items=0).SerializeToString()
    big = pb.ExchangeRequest(worker_id="bloater", results=b"\x00" * (2 << 20)).SerializeToString()
    replies, code = _raw_stream(agg, [big])  # as a stream's first message: refused and counted
    assert (replies, code) == ([], grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert counter(agg, "oversize") == before + 1
    # Later on a stream it is refused the same, and not counted: gRPC shows the handler an
    # oversize message exactly as a worker that closed or cancelled its stream.
    replies, code = _raw_stream(agg, [good, big])
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and len(replies) == 1
    assert counter(agg, "oversize") == before + 1
    # a stream the worker closes after its messages is a close, not an error
    replies, code = _raw_stream(agg, [good, good])
    assert (len(replies), code) == (2, grpc.StatusCode.OK)
    assert counter(agg, "oversize") == before + 1 and counter(agg, "malformed") == malformed
    finish_iteration(agg, stub)
