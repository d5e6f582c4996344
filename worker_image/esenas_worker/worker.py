"""The rollout worker: pull a batch, fetch parameters once per version, run rollouts, push results.

One blocking gRPC channel per process (rollouts are CPU-bound; there is nothing to overlap
but the next request, which rides on the same round trip as the previous results). When the
aggregator is unreachable it reconnects with exponential back-off and jitter; it exits 0
when the aggregator says the job is done, and stops within one rollout on SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import socket
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any, Final

import grpc
import numpy as np
from esenas.hang import HANG_FACTOR
from esenas.spec import Job
from esenas.topology import Topology, decode_topologies
from esenas_api import wire
from esenas_api.v1 import aggregator_pb2 as pb
from esenas_api.v1 import aggregator_pb2_grpc as pb_grpc

from esenas_worker.backoff import Backoff
from esenas_worker.items import roll_out

log = logging.getLogger(__name__)

CHANNEL_OPTIONS: Final = (
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 8 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.enable_retries", 0),
    *wire.HTTP2_OPTIONS,
)
#: How long one Exchange may wait on the server for work (long poll). Long, so a fleet idle at
#: the iteration barrier costs few calls; the aggregator answers at once when work appears.
WAIT_MS: Final = 20_000
#: Errors after which the aggregator is presumed away (restarting, rescheduled, network).
RETRYABLE: Final = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.NOT_FOUND,
    }
)


class _Stop(Exception):
    """Raised by the SIGTERM handler to leave a blocking wait at once."""


class ExchangeStream:
    """Exchange over one long-lived ``ExchangeStream`` call: a request message out, its reply back.

    Opened on first use and reopened after any error, so a restarted aggregator is met as with
    unary calls. The aggregator spends about a third of a call's transport on a stream message
    (bench/grpc_floor.py), which is what bounds the start of an iteration across a large fleet.
    """

    def __init__(self, stub: pb_grpc.AggregatorStub, metadata: Any) -> None:
        self._stub = stub
        self._metadata = metadata
        self._requests: queue.SimpleQueue[pb.ExchangeRequest | None] = queue.SimpleQueue()
        self._call: Any = None

    def exchange(self, request: pb.ExchangeRequest, timeout: float) -> pb.ExchangeReply:
        """Send one request and wait up to ``timeout`` s for its reply; raise grpc.RpcError."""
        if self._call is None:
            self._requests = queue.SimpleQueue()
            self._call = self._stub.ExchangeStream(iter(self._requests.get, None), metadata=self._metadata)
        call = self._call
        self._requests.put(request)
        watchdog = threading.Timer(timeout, call.cancel)  # a reply overdue: the stream is presumed dead
        # A daemon, started inside the try: SIGTERM may raise _Stop anywhere in here, even inside
        # start(), and a live non-daemon timer would hold the exiting process up for `timeout`.
        watchdog.daemon = True
        try:
            watchdog.start()
            reply: pb.ExchangeReply = next(call)
            return reply
        except StopIteration:  # the aggregator ended the stream without answering (shutting down)
            self.close()
            raise _StreamEnded from None
        except BaseException:
            self.close()
            raise
        finally:
            watchdog.cancel()

    def close(self) -> None:
        """End the stream (idempotent); the next ``exchange`` opens a new one."""
        if self._call is not None:
            self._requests.put(None)
            self._call.cancel()
            self._call = None


class _StreamEnded(grpc.RpcError):  # type: ignore[misc]
    """The aggregator closed an ExchangeStream without a reply; retried as UNAVAILABLE."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "the aggregator ended the exchange stream"


@dataclass
class WorkerStats:
    batches: int = 0
    items: int = 0
    env_steps: int = 0
    reconnects: int = 0
    params_fetched: int = 0


class Worker:
    """One worker process's loop; ``run()`` returns the process exit code."""

    def __init__(
        self,
        job: Job,
        address: str,
        token: str,
        worker_id: str | None = None,
        batch_size: int | None = None,
        give_up_after: float | None = None,
        evaluator: Any = None,
        tls_ca: bytes | None = None,
    ) -> None:
        self.job = job
        self.address = address
        self.worker_id = worker_id or f"{os.environ.get('HOSTNAME') or socket.gethostname()}-{os.getpid()}"
        self.batch_size = batch_size or job.spec.workers.batch_size
        self.give_up_after = give_up_after
        self.stats = WorkerStats()
        self._metadata = wire.bearer(token)
        self._evaluator = evaluator
        self._tls_ca = tls_ca  # PEM of the job's CA: dial over TLS and trust only it
        self._version: tuple[int, int] | None = None  # (session, version) of the loaded params
        self._topologies: dict[int, Topology] = {}  # of that version, by table index
        self._stop = False
        self._interruptible = False
        self.backoff = Backoff()
        self._use_stream = True  # ExchangeStream until the aggregator says it has none
        self._stream: ExchangeStream | None = None

    # ------------------------------------------------------------------ signals

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Stop; inside a blocking wait, leave it at once, but only once: a second signal (the
        parent's death signal after a SIGTERM) raised inside the channel's close left gRPC
        waiting on a lock for good (test_sigkill_takes_the_children_down, once in CI)."""
        self._stop = True
        if self._interruptible:
            self._interruptible = False
            raise _Stop

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stop and (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))

    # ------------------------------------------------------------------ main loop

    def _ensure_evaluator(self) -> Any:
        if self._evaluator is None:
            from esenas.rollout import Evaluator  # imports gymnasium; kept out of module import

            self._evaluator = Evaluator(self.job.spec)
        return self._evaluator

    def run(self) -> int:
        """Work until the job is done (0), SIGTERM (0), or a fatal error (2)."""
        evaluator = self._ensure_evaluator()
        with self._channel() as channel:
            stub = pb_grpc.AggregatorStub(channel)
            try:
                return self._loop(stub, evaluator)
            except _Stop:
                log.info("worker %s: stopping on signal", self.worker_id)
                return 0
            finally:
                if self._stream is not None:
                    self._stream.close()

    def _exchange(self, stub: pb_grpc.AggregatorStub, request: pb.ExchangeRequest, timeout: float) -> pb.ExchangeReply:
        """One Exchange, on the worker's stream when the aggregator serves one, else as a call."""
        if self._use_stream:
            if self._stream is None:
                self._stream = ExchangeStream(stub, self._metadata)
            try:
                return self._stream.exchange(request, timeout)
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise
                # An older aggregator or relay: it never read the request, so send it as a call.
                log.info("worker %s: %s serves no ExchangeStream; using Exchange calls", self.worker_id, self.address)
                self._use_stream, self._stream = False, None
        reply: pb.ExchangeReply = stub.Exchange(request, metadata=self._metadata, timeout=timeout)
        return reply

    def _channel(self) -> grpc.Channel:
        if self._tls_ca is None:
            return grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        creds = grpc.ssl_channel_credentials(root_certificates=self._tls_ca)
        return grpc.secure_channel(self.address, creds, options=CHANNEL_OPTIONS)

    def _loop(self, stub: pb_grpc.AggregatorStub, evaluator: Any) -> int:
        request = self._request(max_items=self.batch_size)
        unreachable_since: float | None = None
        while not self._stop:
            try:
                self._interruptible = True
                reply = self._exchange(stub, request, WAIT_MS / 1000 + 30)
                self._interruptible = False
            except grpc.RpcError as exc:
                self._interruptible = False
                code = exc.code()
                if code not in RETRYABLE:
                    log.error("worker %s: aggregator refused the request: %s %s", self.worker_id, code, exc.details())
                    return 2
                now = time.monotonic()
                unreachable_since = unreachable_since or now
                if self.give_up_after is not None and now - unreachable_since > self.give_up_after:
                    log.error("worker %s: aggregator %s unreachable for %.0f s, giving up", self.worker_id, self.address, now - unreachable_since)
                    return 3
                delay = self.backoff.next_delay()
                self.stats.reconnects += 1
                log.warning("worker %s: aggregator %s: %s; retrying in %.2f s", self.worker_id, self.address, code.name, delay)
                # Results in flight are dropped: their items are re-issued after the deadline.
                request = self._request(max_items=self.batch_size)
                self._sleep(delay)
                continue
            unreachable_since = None
            self.backoff.reset()
            if reply.done:
                st = self.stats
                log.info("worker %s: job done after %d batches (%d items, %d env steps), %d reconnects, %d parameter fetches",
                         self.worker_id, st.batches, st.items, st.env_steps, st.reconnects, st.params_fetched)
                return 0
            if not reply.items:
                request = self._request(max_items=self.batch_size)
                continue
            if reply.params:
                self._set_params(evaluator, pb.Params.FromString(reply.params))
            if self._version != (reply.session, reply.version) and not self._load_params(stub, evaluator, reply):
                request = self._request(max_items=self.batch_size)
                continue
            self._add_topologies(reply)
            request = self._run_batch(evaluator, reply)
        if request.results:  # stopped by a signal: hand in what is finished, best effort
            with contextlib.suppress(grpc.RpcError):
                self._exchange(stub, request, 2)
        return 0

    def _load_params(self, stub: pb_grpc.AggregatorStub, evaluator: Any, reply: pb.ExchangeReply) -> bool:
        try:
            self._interruptible = True
            params: pb.Params = stub.GetParams(
                pb.ParamsRequest(version=reply.version), metadata=self._metadata, timeout=60
            )
        except grpc.RpcError as exc:
            log.info("worker %s: parameters v%d unavailable: %s", self.worker_id, reply.version, exc.code())
            return False
        finally:
            self._interruptible = False
        self._set_params(evaluator, params)
        return True

    def _set_params(self, evaluator: Any, params: pb.Params) -> None:
        self._topologies = {}
        evaluator.set_plan(
            wire.decode_f32(params.params),
            wire.decode_f32(params.obs_mean),
            wire.decode_f32(params.obs_std),
            params.sigma,
            self._topologies,
        )
        self._version = (params.session, params.version)
        self.stats.params_fetched += 1

    def _request(self, **fields: Any) -> pb.ExchangeRequest:
        """An Exchange request naming this worker and the parameters it holds."""
        held_session, held_version = self._version or (0, 0)
        return pb.ExchangeRequest(
            worker_id=self.worker_id, wait_ms=WAIT_MS, held_session=held_session, held_version=held_version, **fields
        )

    def _add_topologies(self, reply: pb.ExchangeReply) -> None:
        """Keep the topologies that came with this reply's items (the evaluator shares the dict)."""
        if not reply.topologies:
            return
        index = np.frombuffer(reply.topology_index, dtype="<u4")
        topos = decode_topologies(reply.topologies)
        if len(topos) != len(index):
            raise wire.WireError(f"topologies: {len(topos)} for {len(index)} indices")
        self._topologies.update(zip(index.tolist(), topos, strict=True))

    def _run_batch(self, evaluator: Any, reply: pb.ExchangeReply) -> pb.ExchangeRequest:
        from esenas.results import Results

        items = wire.decode_items(reply.items)
        known = np.isin(items["topology"], np.fromiter(self._topologies, np.int64, len(self._topologies)))
        if not known.all():  # never from a correct aggregator; the items are re-issued elsewhere
            log.warning("worker %s: %d items name a topology this worker was not sent; skipped", self.worker_id, int((~known).sum()))
            items = items[known]
        rolled = roll_out(evaluator, items, lambda: self._stop, self.worker_id, self.job.spec.environment.id,
                          HANG_FACTOR * self.job.spec.workers.item_timeout_seconds)
        parts = rolled.parts
        done = items[: len(parts)]
        res = Results.concat(parts) if parts else None
        self.stats.batches += 1
        self.stats.items += len(parts)
        max_items = 0 if self._stop else self.batch_size
        fail: dict[str, Any] = {}  # an item whose rollout failed (esenas_worker.items)
        if rolled.failed is not None:
            fail = {"failed_items": np.array([rolled.failed], "<u4").tobytes(), "failure": rolled.failure}
        if res is None:
            if fail:
                return self._request(session=reply.session, iteration=reply.iteration, lease=reply.lease, max_items=max_items, **fail)
            return self._request(max_items=max_items)
        self.stats.env_steps += int(np.asarray(res.steps).sum())
        return self._request(
            session=reply.session,
            iteration=reply.iteration,
            lease=reply.lease,
            results=wire.encode_results(res.index, res.reward_pos, res.reward_neg, res.steps, done["topology"]),
            obs_stats=wire.encode_obs_stats(res.obs_count, res.obs_sum, res.obs_sumsq)
            if res.obs_count > 0
            else b"",
            max_items=max_items,
            **fail,
        )
