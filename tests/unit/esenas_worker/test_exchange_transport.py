"""The worker's transport over real gRPC: one ExchangeStream for all its exchanges, reopened when
the aggregator ends it, and plain Exchange calls when the aggregator has no such method."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from esenas.spec import load_job
from esenas_api import wire
from esenas_api.v1 import aggregator_pb2 as pb
from esenas_worker.worker import Worker, _Stop

REPO = Path(__file__).resolve().parents[3]
TOKEN = "t0ken"


@dataclass
class FakeAggregator:
    """Answers "come back" to the first ``rounds - 1`` requests it gets and "done" to the next;
    records each request's method, stream and token. ``stream_replies``: how many replies one
    stream gives before the server ends it."""

    rounds: int
    stream: bool
    stream_replies: int = 1_000
    seen: list[tuple[str, int]] = field(default_factory=list)  # (method, stream number)
    tokens: set[str] = field(default_factory=set)
    streams: int = 0

    def _reply(self, method: str, stream_no: int, context: grpc.ServicerContext) -> pb.ExchangeReply:
        self.tokens.update(v for k, v in context.invocation_metadata() if k == wire.AUTH_METADATA_KEY)
        self.seen.append((method, stream_no))
        return pb.ExchangeReply(session=7, done=len(self.seen) >= self.rounds, retry_after_ms=1)

    def exchange(self, request: pb.ExchangeRequest, context: grpc.ServicerContext) -> pb.ExchangeReply:
        return self._reply("Exchange", 0, context)

    def exchange_stream(
        self, requests: Iterator[pb.ExchangeRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.ExchangeReply]:
        self.streams += 1
        number = self.streams
        for i, _ in enumerate(requests):
            yield self._reply("ExchangeStream", number, context)
            if i + 1 == self.stream_replies:
                return  # the server ends the stream; the worker opens another

    def serve(self) -> tuple[grpc.Server, str]:
        handlers = {
            "Exchange": grpc.unary_unary_rpc_method_handler(
                self.exchange, pb.ExchangeRequest.FromString, pb.ExchangeReply.SerializeToString
            ),
        }
        if self.stream:
            handlers["ExchangeStream"] = grpc.stream_stream_rpc_method_handler(
                self.exchange_stream, pb.ExchangeRequest.FromString, pb.ExchangeReply.SerializeToString
            )
        server = grpc.server(futures.ThreadPoolExecutor(4))
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("esenas.api.v1.Aggregator", handlers),))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        return server, f"127.0.0.1:{port}"


class NoRollouts:
    """The worker never gets items here, so it never rolls out."""

    def set_plan(self, *args: object) -> None:
        raise AssertionError("no parameters are sent in these tests")

    def run(self, items: object) -> None:
        raise AssertionError("no items are sent in these tests")


def _run(fake: FakeAggregator) -> int:
    server, address = fake.serve()
    try:
        job = load_job(REPO / "manifests/examples/inverted-pendulum.yaml")
        return Worker(job, address, TOKEN, worker_id="w", evaluator=NoRollouts(), give_up_after=5).run()
    finally:
        server.stop(0)


def test_every_exchange_rides_one_stream() -> None:
    fake = FakeAggregator(rounds=5, stream=True)
    assert _run(fake) == 0
    assert fake.seen == [("ExchangeStream", 1)] * 5
    assert fake.tokens == {f"Bearer {TOKEN}"}


def test_a_stream_the_aggregator_ends_is_reopened() -> None:
    fake = FakeAggregator(rounds=5, stream=True, stream_replies=2)
    assert _run(fake) == 0
    assert [method for method, _ in fake.seen] == ["ExchangeStream"] * 5
    assert [number for _, number in fake.seen] == [1, 1, 2, 2, 3]


@pytest.mark.parametrize("rounds", [1, 4])
def test_an_aggregator_without_streams_gets_calls(rounds: int) -> None:
    fake = FakeAggregator(rounds=rounds, stream=False)
    assert _run(fake) == 0
    assert fake.seen == [("Exchange", 0)] * rounds  # the refused stream's request was sent again as a call


def test_a_signal_inside_an_exchange_leaves_no_thread_holding_the_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM raises _Stop wherever the worker is in an exchange; here it lands inside the reply
    watchdog's start(), the window that once kept a stopped worker alive for 50 s (CI, stop 35)."""
    start = threading.Timer.start
    started: list[threading.Timer] = []

    def start_then_signal(timer: threading.Timer) -> None:
        start(timer)
        started.append(timer)
        raise _Stop

    monkeypatch.setattr(threading.Timer, "start", start_then_signal)
    assert _run(FakeAggregator(rounds=5, stream=True)) == 0  # stopped on the "signal", exit code 0
    assert len(started) == 1
    started[0].join(2)
    # Interpreter exit waits for every live non-daemon thread: this one must be gone, or a daemon.
    assert started[0].daemon or not started[0].is_alive(), "the watchdog would delay the process's exit"
