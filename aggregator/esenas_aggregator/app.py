"""The aggregator process: ES-ENAS ask/tell behind the work queue, checkpoints, gRPC and HTTP.

One asyncio loop runs the training loop, the grpc.aio server and the aiohttp endpoints. Each
iteration: ``ask`` -> publish items and parameters -> wait until every item is in (stragglers are
re-issued by the queue), or under ``es.minPairsFraction`` < 1 until enough pairs are (``straggler``)
-> ``tell`` -> metrics -> checkpoint every K iterations. A new best is adopted once the aggregator's own replay
of it ends (``confirm``). SIGTERM/SIGINT checkpoint the last completed iteration and stop; stopping.deadlineSeconds
stops it mid-iteration if need be (Succeeded). Rollouts that fail or exceed the bounds for two workers fail the
job (bounds.ItemWatch) if the aggregator's own replay of the item goes wrong too (``verify``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from esenas import checkpoint
from esenas.algorithm import ESENAS
from esenas.entrypoint import exit_with_reason
from esenas.results import IterationReport
from esenas.run_summary import HISTORY_FILE, POLICY_FILE, SUMMARY_FILE, summary
from esenas.spec import Job, SpecError, check_dimensions
from esenas_api import wire
from esenas_api.v1 import aggregator_pb2 as pb

from esenas_aggregator import documents, guard, http
from esenas_aggregator.bounds import ResultBounds
from esenas_aggregator.confirm import Confirmer, with_best
from esenas_aggregator.follow import FleetFollower
from esenas_aggregator.listen import listen
from esenas_aggregator.metrics import Metrics
from esenas_aggregator.runtime import Runtime
from esenas_aggregator.service import AggregatorService, set_serving
from esenas_aggregator.topologies import IterationTopologies
from esenas_aggregator.verify import until_closable

log = logging.getLogger(__name__)

#: Perturbations rebuilt per slice of the prefetch (~12 us each), between which gRPC is served.
PREFETCH_ROWS: Final = 400
#: Blocks of sampled topologies drawn and grouped per slice (~1 ms each for chromatic H41).
PREFETCH_BLOCKS: Final = 4
#: Results whose controller feedback is summed per slice (~2 ms of chromatic H41), every 10 ms (scale.md).
PREFETCH_ITEMS: Final = 512
FEEDBACK_POLL_S: Final = 0.01


@dataclass(frozen=True)
class AggregatorConfig:
    """Everything the aggregator process needs; built from flags or by ``esenas run``."""

    job: Job
    checkpoint_dir: Path
    token: str
    host: str = "0.0.0.0"
    grpc_port: int = 50051
    http_port: int = 9090
    #: When set, the bound ports are written here as JSON once serving (port 0 picks free ones).
    ports_file: Path | None = None
    #: Exit once the job is done and the workers had ``linger_seconds`` to hear it (local mode).
    exit_when_done: bool = False
    linger_seconds: float = 3.0
    #: The job file (a mounted ConfigMap in a pod), re-read at iteration boundaries (esenas.edits).
    job_file: Path | None = None
    #: (certificate, key) PEM bytes: serve gRPC over TLS. None: plaintext (logged as a warning).
    tls: tuple[bytes, bytes] | None = None
    #: Most items one lease holds; 0: the job's workers.batchSize (relays lease more).
    max_lease_items: int = 0


class Aggregator:
    """One aggregator process; ``await run()`` returns the exit code."""

    def __init__(self, cfg: AggregatorConfig, obs_dim: int, act_dim: int) -> None:
        self.cfg = cfg
        spec = cfg.job.spec
        self.store = checkpoint.CheckpointStore(cfg.checkpoint_dir)
        self.metrics = Metrics(cfg.job.name, cfg.job.namespace)
        self.runtime = Runtime(self.metrics, spec.workers.item_timeout_seconds, obs_dim, ResultBounds.of(spec),
                               cfg.max_lease_items or spec.workers.batch_size)
        self.phase, self.reason = "Running", ""
        self.last: IterationReport | None = None
        self.resumed_from: int | None = None
        self._result_written = False
        loaded = self.store.load_latest()
        if loaded is not None:
            path, state = loaded
            self.algo = ESENAS.from_state_dict(state["algo"])
            self.phase = str(state["runtime"]["phase"])
            self.reason = str(state["runtime"]["reason"])
            self.resumed_from = self.algo.iteration
            log.info("resuming from checkpoint %s at iteration %d", path, self.algo.iteration)
        else:
            self.algo = ESENAS(spec, obs_dim, act_dim)
        self._snapshot = self._encode_state()
        self._refusals = 0  # updates refused in a row (see esenas_aggregator.guard)
        self._stop = asyncio.Event()
        self.fleet = FleetFollower(cfg.job_file)
        self.confirm = Confirmer(spec, self.metrics, spec.workers.item_timeout_seconds, self._settle)  # replays new bests
        self.metrics.env_steps.inc(self.algo.env_steps)
        self.metrics.rollouts.inc(self.algo.episodes)
        self._update_gauges()

    # ------------------------------------------------------------------ state views

    @property
    def done(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    @property
    def result_path(self) -> Path:
        return self.cfg.checkpoint_dir / "result" / "policy.json"

    def status(self) -> dict[str, Any]:
        """The /status document (docs/contracts.md)."""
        return documents.status(
            self.algo, self.last, phase=self.phase, reason=self.reason, done=self.done,
            connected=self.runtime.connected(), result_path=str(self.result_path) if self._result_written else "",
            resumed_from=self.resumed_from,
        )

    def history(self) -> dict[str, Any]:
        return documents.history(self.algo)

    def result(self) -> dict[str, Any] | None:
        return documents.result(self.algo)

    def summary(self) -> dict[str, Any]:
        """summary.json as ``esenas run`` writes it; wallSeconds is the training time over all sessions."""
        return summary(self.algo, self.cfg.job, self.reason, self.algo.elapsed_seconds)

    def _update_gauges(self) -> None:
        self.metrics.update(self.algo, self.last, self.done, documents.topology_numbers(self.algo, self.last))

    def _encode_state(self, algo_state: dict[str, Any] | None = None) -> bytes:
        algo = self.algo.state_dict() if algo_state is None else algo_state
        return checkpoint.encode({"algo": algo, "runtime": {"phase": self.phase, "reason": self.reason}})

    def _refuse_update(self, parts: list[str]) -> None:
        """An update left non-finite numbers in ``parts``: restore the last completed iteration's
        state and run that iteration again, or fail the job after MAX_REFUSALS in a row."""
        iteration = self.algo.iteration
        self.metrics.updates_refused.inc()
        self._refusals += 1
        self.algo = ESENAS.from_state_dict(checkpoint.decode(self._snapshot)["algo"])
        self.last = None
        why = f"the update of iteration {iteration - 1} made {', '.join(parts)} non-finite"
        if self._refusals == 1 or self._refusals >= guard.MAX_REFUSALS:
            log.warning("%s: refused, iteration re-run (%d in a row)", why, self._refusals)
        if self._refusals >= guard.MAX_REFUSALS:
            self.phase, self.reason = "Failed", f"NonFiniteUpdate: {why}, {self._refusals} times in a row"

    def _settle(self) -> None:
        """Adopt the new bests whose replay has ended (see :mod:`confirm`), into the snapshot too."""
        if self.confirm.settle(self.algo):
            self._update_gauges()
            self._snapshot = with_best(self._snapshot, self.algo)

    async def _replayed(self, timeout: float | None = None) -> None:  # the replays still running, then adopt
        await self.confirm.wait(self.confirm.drain_s if timeout is None else timeout)
        self._settle()

    def _checkpoint(self) -> None:
        path = self.store.save(self.algo.iteration, self._snapshot)
        log.info("checkpoint %s (iteration %d)", path.name, self.algo.iteration)

    # ------------------------------------------------------------------ training loop

    def request_stop(self) -> None:
        log.info("stop requested: checkpointing and shutting down")
        self._stop.set()

    async def _train(self) -> None:
        rt = self.runtime
        while not self.done and not self._stop.is_set():
            # Live spec edits (esenas.edits) first, so that new stopping rules are checked now.
            edited = self.fleet.poll(self.algo.spec, self.algo.iteration)
            if edited is not None:
                self.algo.spec = edited
            finished, why = self.algo.done()
            if finished:
                await self._replayed()
                self.phase, self.reason = "Succeeded", why
                break
            t0 = time.monotonic()
            plan = self.algo.ask()
            params = pb.Params(
                version=plan.version,
                iteration=plan.iteration,
                params=wire.encode_f32(plan.params),
                obs_mean=wire.encode_f32(plan.obs_mean),
                obs_std=wire.encode_f32(plan.obs_std),
                sigma=plan.sigma,
                session=rt.session,
            )
            sampling = None  # relays draw sampled topologies themselves (see topologies.py)
            if plan.sampler is not None:  # two serialised messages back to back parse as their merge
                sampling = params.SerializeToString() + pb.Params(topology_sampler=plan.sampler.to_bytes()).SerializeToString()
            rt.start_iteration(
                plan.iteration, plan.version, plan.items, params.SerializeToString(),
                IterationTopologies(plan.topologies, plan.sample_position, sampling),
                min_pairs_fraction=self.algo.spec.es.min_pairs_fraction,
            )
            prefetch = asyncio.ensure_future(self._prefetch())
            in_time = await until_closable(rt, self._stop, self.confirm, plan, self.algo.seconds_left())
            prefetch.cancel()
            if not in_time:  # spec.stopping.deadlineSeconds passed mid-iteration: the best so far stands
                await self._replayed()
                self.phase, self.reason = "Succeeded", self.algo.done()[1]
                break
            if rt.job_failure is not None and not self._stop.is_set():  # for two workers and the replay (verify)
                self.phase, self.reason = "Failed", rt.job_failure
                break
            if not rt.queue.closable(time.monotonic()):
                break
            out, carried = rt.close_iteration()
            if out:
                log.info("iteration %d closed with %d pairs still out (es.minPairsFraction): they join the next update", plan.iteration, out)
            self.last = self.algo.tell(rt.queue.results(), trust_best=False, carried=carried)
            state = self.algo.state_dict()
            bad = guard.nonfinite_parts(state)
            if bad:
                self._refuse_update(bad)
                continue
            self._refusals = 0
            self.confirm.submit(self.algo.claim)
            self.metrics.iteration_duration.observe(time.monotonic() - t0)
            finished, why = self.algo.done()
            if finished:  # the last bests first: nothing may read a done job's result before them
                await self._replayed()
                state = self.algo.state_dict()
                self.phase, self.reason = "Succeeded", why
            self._update_gauges()
            self._snapshot = self._encode_state(state)
            if self.done or self.algo.iteration % self.algo.spec.aggregator.checkpoint.every_iterations == 0:
                self._checkpoint()
            log.info(
                "iteration %d: mean %.1f max %.1f best %.1f, %d env steps",
                self.last.iteration, self.last.reward_mean, self.last.reward_max,
                self.algo.best_reward, self.algo.env_steps,
            )

    async def _prefetch(self) -> None:
        """While the workers roll out, rebuild the iteration's perturbations, draw and group its
        sampled topologies, then sum the controller's feedback of the results as they come in, in
        small slices (a few ms each), so ``tell`` at the barrier finds them ready."""
        while not (self.algo.prefetch_topologies(PREFETCH_BLOCKS) & self.algo.prefetch_perturbations(PREFETCH_ROWS)):
            await asyncio.sleep(0.002)
        while not self.algo.prefetch_feedback(*self.runtime.queue.progress(), PREFETCH_ITEMS):
            await asyncio.sleep(FEEDBACK_POLL_S)

    def _write_result(self) -> None:
        """The documents of a run folder (docs/results.md), and the final /status as status.json."""
        out = self.result_path.parent
        out.mkdir(parents=True, exist_ok=True)
        docs: dict[str, Any] = {
            POLICY_FILE: self.algo.best_policy(),
            SUMMARY_FILE: self.summary(),
            HISTORY_FILE: self.history()["history"],
            "status.json": self.status(),
        }
        for name, doc in docs.items():
            documents.write_json(out / name, doc)
            self._result_written = True

    def _write_stopped_result(self) -> None:
        """Stopped by a signal: the documents of the last completed iteration, so ``esenas run``
        writes an interrupted run's folder from them (it never reads the checkpoint format)."""
        if self.algo.iteration == 0:
            return
        self.algo = ESENAS.from_state_dict(checkpoint.decode(self._snapshot)["algo"])
        self.reason = self.reason or "interrupted"
        self._write_result()

    async def run(self) -> int:
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        app = http.build_app(self.metrics, self.status, self.result, self.history, self.summary)
        bound = await listen(AggregatorService(self.runtime, cfg.token), app, cfg.host, cfg.grpc_port, cfg.http_port, cfg.tls)
        if isinstance(bound, str):
            return exit_with_reason(bound)
        server, grpc_port, health, runner, http_port = bound.server, bound.grpc_port, bound.health, bound.runner, bound.http_port
        await set_serving(health, True)
        if cfg.ports_file is not None:
            tmp = cfg.ports_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"grpc": grpc_port, "http": http_port}))
            tmp.replace(cfg.ports_file)
        log.info("serving gRPC%s on %s:%d, HTTP on %s:%d", " over TLS" if cfg.tls else "", cfg.host, grpc_port, cfg.host, http_port)
        if cfg.tls is None:
            log.warning("gRPC is plaintext (no --tls-cert-file): the token crosses the network unencrypted")
        connected = asyncio.ensure_future(self._track_connected())
        code = 0
        try:
            try:
                await self._train()
            except Exception as exc:
                log.exception("training failed")
                self.phase, self.reason = "Failed", f"{type(exc).__name__}: {exc}"
                code = 1
            await self._replayed(None if self.done else 5.0)  # a failed or stopped job's last bests
            if self.done:
                self.metrics.job_done.set(1)
                self._snapshot = self._encode_state()
                self._checkpoint()
                self._write_result()
                self.runtime.finish()
                log.info("job %s: %s (%s)", cfg.job.name, self.phase, self.reason)
                if cfg.exit_when_done:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), cfg.linger_seconds)
                else:
                    await self._stop.wait()
            else:
                self._checkpoint()  # stopped by a signal: the last completed iteration
                self._write_stopped_result()
        finally:
            self.runtime.stopping = True
            self.confirm.close()
            connected.cancel()
            await set_serving(health, False)
            await server.stop(grace=1.0)
            await runner.cleanup()
        return code

    async def _track_connected(self) -> None:
        while True:
            self.metrics.workers_connected.set(self.runtime.connected())
            self.metrics.fleet_utilization.set(self.runtime.utilization())
            await asyncio.sleep(1.0)


def prepare(job: Job) -> tuple[int, int]:
    """The task's (obs_dim, act_dim), after the checks that need them."""
    from esenas.rollout import env_dims  # imports gymnasium

    obs_dim, act_dim = env_dims(job.spec.environment)
    errors = check_dimensions(job.spec, obs_dim, act_dim)
    if errors:
        raise SpecError(errors)
    return obs_dim, act_dim

