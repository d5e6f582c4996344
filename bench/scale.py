"""Fleet scale through real ES iterations: the real aggregator, W simulated workers.

The aggregator is the real process (``esenas aggregator``): ES-ENAS ask/tell, the policy-gradient
controller proposing one topology per pair, checkpoints and metrics, for a chromatic H41 policy
with 17 partitions at HalfCheetah-v5's dimensions and ``perturbations = pairs per worker * W``.
W simulated workers, asyncio tasks spread over a few client processes, speak the real protocol:
the token on every call, ``Exchange`` to push results and pull items (whose topologies ride in
the reply, and the parameters too when the worker does not hold their version; ``GetParams``
remains the fallback). A worker "rolls out" an item by sleeping for
two episode times (a pair), calibrated from real rollouts on this machine and stretched by
``--slowdown``:

* ``fixed``: HalfCheetah, always 1,000 steps, at the measured time per step of the real policy;
* ``heavy-tailed``: Hopper-like early termination, episode length 20 + Pareto(alpha=1.2) * 40
  steps capped at 1,000, at the measured time per step of real Hopper-v5 rollouts. The length is
  drawn from the item's seed, so every copy of an item takes as long (as real rollouts do).

Rewards come from a cheap deterministic function of the perturbed parameters and the topology
(closeness to a hidden target vector and colouring), so ES and the controller really optimise
something; ``objective_improved`` compares the exact evaluations of the first and last iteration.

Measured over the steady iterations (the first, with its connection set-up, and the last are
left out): ``efficiency`` = useful busy time (sleeps of results the aggregator accepted) over
W * wall; ``busy_fraction`` also counts redundant copies. ``ideal_s_per_iteration`` = the slowest
worker's planned share (its first lease of the iteration) of sleep, plus one round trip.
``aggregator_cores_at_10000_real_speed_workers`` = the aggregator's CPU per result times the
results per second of 10,000 workers at real speed (slowdown 1) on this task: the goal's "cores
for 10,000 real-speed workers". Ends with ONE JSON line.

    .venv/bin/python bench/scale.py [--workers 100,1000,10000] [--iterations K]
        [--pairs-per-worker P] [--episodes fixed|heavy-tailed] [--slowdown S]
        [--min-pairs-fraction F[,F...]] [--transport stream|unary[,...]] [--pin] [--settled]

``--min-pairs-fraction`` sets ``es.minPairsFraction`` (the straggler policy); several values run
one after the other at each W in the same session (same calibration), one ``scales`` entry each,
with ``pairs_dropped_per_iteration`` (from the run's episode total). ``--transport`` likewise:
``stream`` (the default, as the real worker: one ``ExchangeStream`` per worker) or ``unary`` (one
``Exchange`` call per lease, as workers did before the stream and do against an older aggregator).
``--pin`` runs the aggregator and relays on the first CPU and the simulated workers on the others
(``pinned`` in each entry): in a cluster the workers run elsewhere and the aggregator's pod has its
own core, while unpinned the clients' burst at each barrier competes with the aggregator's.
``--settled`` starts the aggregator from an iteration-0 checkpoint whose controller is concentrated
as a run's is after ~10 iterations (bench/population.py's ``settle``): a job's steady state, where
it spends nearly all its iterations, while a fresh job's first iterations have a uniform
controller. Each entry has ``settled`` and the controller's entropy (nats per decision) after its
first and its last iteration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

import numpy as np
import yaml

ROOT: Final = Path(__file__).resolve().parent.parent
TOKEN: Final = "scale-bench-token"
ENV_ID: Final = {"fixed": "HalfCheetah-v5", "heavy-tailed": "Hopper-v5"}
MAX_STEPS: Final = 1000
WAIT_MS: Final = 20_000  # the real worker's long poll (esenas_worker.worker.WAIT_MS)
MAX_LEASE: Final = 16384  # the aggregator's --max-lease-items with relays: runtime.MAX_BATCH_ITEMS
REAL_SPEED_WORKERS: Final = 10_000  # the fleet of the goal on aggregator cores


def job_doc(workers: int, pairs_per_worker: int, iterations: int, env_id: str) -> dict[str, Any]:
    """The benchmark's ESENASJob: the HalfCheetah chromatic H41/17 example at fleet size."""
    return {
        "apiVersion": "esenas.dev/v1alpha1",
        "kind": "ESENASJob",
        "metadata": {"name": f"scale-{workers}"},
        "spec": {
            "seed": 0,
            "environment": {"id": env_id, "maxEpisodeSteps": MAX_STEPS},
            "policy": {"template": "mlp", "hiddenLayers": [41], "topology": "partition", "partitions": 17},
            "controller": {"type": "policy_gradient", "algorithm": "reinforce", "learningRate": 40},
            "es": {
                "sigma": 0.1, "stepSize": 0.05, "perturbations": pairs_per_worker * workers,
                "fitnessShaping": "centered_ranks", "optimizer": "adam", "exactEvals": 8,
            },
            "stopping": {"maxIterations": iterations},
            "workers": {"replicas": workers, "batchSize": pairs_per_worker, "itemTimeoutSeconds": 120},
            "aggregator": {"checkpoint": {"everyIterations": 1}},
        },
    }


# ---------------------------------------------------------------------------- calibration


#: Timed repeats of the calibration; the fastest counts (see :func:`calibrate`).
CALIBRATION_REPEATS: Final = 5


def calibrate(env_id: str) -> float:
    """Seconds per env step of the real chromatic H41 policy on the real task (one worker): the
    fastest of CALIBRATION_REPEATS timed runs of 2 items. Other work on a shared machine only slows
    a run down, so the fastest is the nearest to a worker pod's own speed, and the most demanding
    for the "cores for 10,000 real-speed workers" figure (one run of 4 items varied 37-57 us)."""
    from esenas.algorithm import ESENAS
    from esenas.rollout import Evaluator
    from esenas.spec import parse_spec

    spec = parse_spec(job_doc(1, 2 * CALIBRATION_REPEATS, 1, env_id)["spec"])
    ev = Evaluator(spec)
    plan = ESENAS(spec, ev.obs_dim, ev.act_dim).ask()
    ev.set_plan(plan.params, plan.obs_mean, plan.obs_std, plan.sigma, plan.topologies)
    ev.run(plan.items[:1])  # warm-up
    best = math.inf
    for k in range(CALIBRATION_REPEATS):
        items = plan.items[2 * k : 2 * k + 2]
        t = time.perf_counter()
        res = ev.run(items)
        best = min(best, (time.perf_counter() - t) / max(1, int(res.steps.sum())))
    return best


# ---------------------------------------------------------------------------- simulated workers


class Objective:
    """A cheap deterministic reward: close to a hidden target and using its colouring. Cheap on
    purpose: the simulated workers of a 10,000-worker run share a few processes, and what they
    spend per item delays every other worker in theirs (a real worker has its own pod)."""

    def __init__(self, dim: int, decisions: int) -> None:
        g = np.random.default_rng(12345)
        self.target = g.normal(0.0, 0.5, dim)
        self.colours = g.integers(0, 17, decisions)

    def match(self, decisions: np.ndarray) -> float:
        """The share of a topology's decisions that agree with the hidden colouring."""
        return float(np.count_nonzero(decisions == self.colours)) / decisions.size if decisions.size else 0.0

    def reward(self, point: np.ndarray, match: float) -> float:
        """The reward of parameters ``point`` with a topology of :meth:`match` ``match``."""
        d = point - self.target
        return 1000.0 - 100.0 * float(d @ d) / point.size + 500.0 * match


def episode_steps(kind: str, g: np.random.Generator) -> int:
    if kind == "fixed":
        return MAX_STEPS
    return int(min(MAX_STEPS, 20 + g.pareto(1.2) * 40))


async def sim_worker(
    wid: str, address: str, args: dict[str, Any], rec: dict[str, list[Any]], seed: int
) -> None:
    import grpc
    from esenas.es import perturbation
    from esenas.topology import decode_topologies
    from esenas_api import wire
    from esenas_api.v1 import aggregator_pb2 as pb
    from esenas_api.v1 import aggregator_pb2_grpc as pb_grpc
    from esenas_worker.worker import CHANNEL_OPTIONS

    g = np.random.default_rng(seed)
    meta = wire.bearer(TOKEN)
    step_s = args["step_s"] * args["slowdown"]
    objective: Objective | None = None
    params = np.zeros(0)
    sigma = 0.0
    version: tuple[int, int] | None = None
    topos: dict[int, float] = {}  # table index -> Objective.match of its topology
    undecoded: list[tuple[bytes, bytes]] = []  # a lease's topologies, decoded after its first sleep
    batch = args["batch"]
    last_iteration = -1
    # The real worker's channel options (its HTTP/2 settings among them), on its own connection,
    # as a worker pod has: channels to one address share a connection by default (gRPC's global
    # subchannel pool), and the aggregator serves at most 16 calls at once per connection
    # (service.MAX_CONCURRENT_STREAMS), so a client's long polls would queue every other
    # simulated worker's results behind them.
    options = (*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1))
    async with grpc.aio.insecure_channel(address, options=options) as ch:
        stub = pb_grpc.AggregatorStub(ch)
        stream: Any = None

        async def exchange(request: Any) -> Any:
            """One Exchange, on this worker's long-lived stream (as the real worker) or as a call."""
            nonlocal stream
            if args["transport"] == "unary":
                return await stub.Exchange(request, metadata=meta, timeout=120)
            if stream is None:
                stream = stub.ExchangeStream(metadata=meta)
            try:
                await stream.write(request)
                async with asyncio.timeout(120):  # not wait_for: a task per read, 1,000s per barrier
                    reply = await stream.read()
            except BaseException:
                stream.cancel()
                stream = None
                raise
            if reply is grpc.aio.EOF:
                stream = None
                raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "stream ended")
            return reply

        request = pb.ExchangeRequest(worker_id=wid, max_items=batch, wait_ms=WAIT_MS)
        held = (0, 0)  # session and parameter version this worker holds
        gone_since: float | None = None

        pending: tuple[int, float, int] | None = None  # (iteration, sleep, records) of the pushed batch
        # The aggregator's iteration, from the parameters' own field: behind a relay the reply's
        # iteration is the relay's round, which the results go back with.
        up_iteration = -1
        while True:
            t0 = time.monotonic()
            try:
                reply = await exchange(request)
            except grpc.aio.AioRpcError as exc:
                # as the real worker: drop the batch in flight (its items are re-issued) and retry
                rec["errors"].append(exc.code().name)
                if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                    gone_since = gone_since or time.monotonic()
                    if time.monotonic() - gone_since > 10:  # the aggregator exited with the job
                        return
                if len(rec["errors"]) > 100_000:
                    raise
                await asyncio.sleep(0.5 + g.random())
                request = pb.ExchangeRequest(worker_id=wid, max_items=batch, wait_ms=WAIT_MS, held_session=held[0], held_version=held[1])
                pending = None
                continue
            t1 = time.monotonic()
            gone_since = None
            rec["calls"].append((up_iteration, len(reply.items) // wire.WORK_DTYPE.itemsize))
            if pending is not None:
                it, slept, n = pending
                rec["pushed"].append((it, slept, n, reply.accepted))
                pending = None
            if reply.done:
                if stream is not None:
                    await stream.done_writing()
                return
            if not reply.items:
                request = pb.ExchangeRequest(worker_id=wid, max_items=batch, wait_ms=WAIT_MS, held_session=held[0], held_version=held[1])
                continue
            rec["rtt"].append(t1 - t0)
            if version != (reply.session, reply.version):
                if reply.params:  # inline with the items: no GetParams round trip
                    p = pb.Params.FromString(reply.params)
                    rec["param_bytes"].append(len(reply.params))
                else:
                    p = await stub.GetParams(pb.ParamsRequest(version=reply.version), metadata=meta, timeout=60)
                    rec["param_bytes"].append(p.ByteSize())
                    rec["get_params"].append(1)
                params = wire.decode_f32(p.params).astype(np.float64)
                up_iteration = int(p.iteration)
                sigma = p.sigma
                version = (reply.session, reply.version)
                held = (reply.session, reply.version)
                topos = {}
            if reply.topologies:
                rec["topology_bytes"].append(len(reply.topologies) + len(reply.topology_index))
                # Decoded after the first episode's sleep, not before it: a real worker decodes
                # its topologies in its own pod, but the simulated workers of a client process
                # share one event loop, where decoding 1,400 leases' topologies at a barrier
                # delayed the last of them by the others' (the bench's cost, not the system's).
                undecoded.append((reply.topology_index, reply.topologies))
            items = wire.decode_items(reply.items)
            first_batch = last_iteration != up_iteration  # this worker's first lease of it
            last_iteration = up_iteration
            if first_batch:
                rec["first_item"].append((wid, up_iteration, time.monotonic()))
            n = len(items)
            rp, rn, steps = np.zeros(n), np.full(n, np.nan), np.zeros(n, np.uint32)
            slept = 0.0
            for i, item in enumerate(items):
                # An episode's length belongs to the item (its seed fixes the start state and the
                # perturbation), not to the worker: a backup copy of a long item is as long.
                pair = item["kind"] == wire.KIND_PAIR
                if args["episodes"] == "fixed":
                    s = MAX_STEPS * (2 if pair else 1)
                elif pair:
                    ig = np.random.default_rng([int(item["seed"]), up_iteration])
                    s = episode_steps(args["episodes"], ig) + episode_steps(args["episodes"], ig)
                else:
                    s = episode_steps(args["episodes"], np.random.default_rng([int(item["index"]), up_iteration, 7]))
                steps[i] = s
                dt = s * step_s
                start = time.monotonic()
                await asyncio.sleep(dt)
                rec["late"].append(time.monotonic() - start - dt)  # the client's event loop waking late
                for idx_bytes, blob in undecoded:
                    decoded = decode_topologies(blob)
                    if objective is None:
                        objective = Objective(params.size, decoded[0].decisions.size if decoded else 0)
                    idx = np.frombuffer(idx_bytes, "<u4").tolist()
                    topos.update(zip(idx, (objective.match(t.decisions) for t in decoded), strict=True))
                undecoded.clear()
                if objective is None:
                    objective = Objective(params.size, 0)
                # The reward once the "episode" is over, as a real worker has it: computed before
                # the sleep, every worker of a client process would wait for the others' at a barrier.
                match = topos.get(int(item["topology"]), 0.0)
                if pair:
                    eps = sigma * perturbation(int(item["seed"]), params.size)
                    rp[i], rn[i] = objective.reward(params + eps, match), objective.reward(params - eps, match)
                else:
                    rp[i] = objective.reward(params, match)
                    rec["exact"].append((up_iteration, rp[i]))
                rec["items"].append((up_iteration, start, dt))
                slept += dt
            rec["worker_sleep"].append((wid, up_iteration, slept, first_batch))
            rec["done_at"].append((up_iteration, time.monotonic()))
            pending = (up_iteration, slept, n)
            request = pb.ExchangeRequest(
                worker_id=wid, session=reply.session, iteration=reply.iteration, lease=reply.lease,
                results=wire.encode_results(items["index"], rp, rn, steps, items["topology"]),
                max_items=batch, wait_ms=WAIT_MS, held_session=held[0], held_version=held[1],
            )


async def client_main(addresses: list[str], ids: list[str], args: dict[str, Any], out: Path) -> None:
    keys = ("items", "pushed", "rtt", "param_bytes", "topology_bytes", "exact", "worker_sleep", "calls", "get_params", "errors", "first_item", "done_at", "late")
    rec: dict[str, list[Any]] = {k: [] for k in keys}
    tasks = []
    for k, wid in enumerate(ids):
        address = addresses[k % len(addresses)]
        tasks.append(asyncio.ensure_future(sim_worker(wid, address, args, rec, hash(wid) & 0xFFFFFFFF)))
        if k % 200 == 199:
            await asyncio.sleep(0.05)  # stagger connection set-up
    for r in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(r, BaseException):
            rec["errors"].append(f"died: {type(r).__name__}: {r}"[:200])
            print(f"simulated worker died: {type(r).__name__}: {r}"[:300], file=sys.stderr, flush=True)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    if not out.parent.exists():  # the scale was abandoned (timeout): nothing to report
        return
    out.write_text(json.dumps({**rec, "cpu_s": cpu.ru_utime + cpu.ru_stime}))


def client_entry() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    spec = json.loads(sys.argv[2])
    asyncio.run(client_main(spec["addresses"], spec["ids"], spec["args"], Path(spec["out"])))


# ---------------------------------------------------------------------------- one scale


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` and its descendants, live or waited for: the aggregator with the
    process that replays claimed bests (esenas_aggregator.confirm)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, total = {pid}, 0.0
    for p in sorted(parents):  # descendants have larger pids unless pids wrapped; good enough here
        if parents[p] in tree:
            tree.add(p)
    for p in tree:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
    return total


def proc_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def metric_sums(http: str) -> tuple[float, float, float, float]:
    """From one /metrics: esenas_topology_bytes_total by form (decisions, positions), and
    esenas_iteration_broadcast_seconds' sum and count (0s where it cannot be read)."""
    import urllib.request

    got = {"decisions": 0.0, "positions": 0.0, "sum": 0.0, "count": 0.0}
    try:
        with urllib.request.urlopen(f"{http}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return 0.0, 0.0, 0.0, 0.0
    for line in text.splitlines():
        if line.startswith("esenas_topology_bytes_total{"):
            form = line.split('form="', 1)[1].split('"', 1)[0]
            got[form] = float(line.rsplit(" ", 1)[1])
        elif line.startswith(("esenas_iteration_broadcast_seconds_sum{", "esenas_iteration_broadcast_seconds_count{")):
            got["sum" if "_sum{" in line else "count"] = float(line.rsplit(" ", 1)[1])
    return got["decisions"], got["positions"], got["sum"], got["count"]


#: The aggregator's counters of copies and late results, reported per steady iteration as
#: ``tail_per_iteration``: what the tail and straggler policies cost in duplicated work.
TAIL_COUNTERS: Final = {
    "speculative": "esenas_items_speculative_total", "redundant": "esenas_results_redundant_total",
    "reissued": "esenas_results_reissued_total", "stale": "esenas_results_stale_total",
    "carried": "esenas_pairs_carried_total", "dropped": "esenas_pairs_dropped_total",
}


def tail_counts(http: str) -> dict[str, float]:
    """From one /metrics: the :data:`TAIL_COUNTERS` (0 where it cannot be read)."""
    import urllib.request

    got = dict.fromkeys(TAIL_COUNTERS, 0.0)
    names = {v: k for k, v in TAIL_COUNTERS.items()}
    try:
        with urllib.request.urlopen(f"{http}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return got
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in names:
            got[names[name]] += float(line.rsplit(" ", 1)[1])
    return got


def wait_ports(proc: subprocess.Popen[bytes], ports: Path, log: Path, what: str) -> dict[str, int]:
    """The ports a started aggregator or relay wrote, once it serves."""
    end = time.monotonic() + 120
    while not ports.exists():
        if proc.poll() is not None or time.monotonic() > end:
            raise RuntimeError(f"{what} did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return dict(json.loads(ports.read_text()))


def pin(pid: int, on: bool, role: str, relays: int = 0, index: int = 0) -> None:
    """With ``--pin``: the aggregator on CPU 0, the simulated workers' clients on the others, so
    the clients' bursts at the barrier do not take the aggregator's core (in a cluster the workers
    run elsewhere, and the aggregator's pod requests its own CPU). Relays get a CPU each (1, 2,
    ...) where there are at least two more CPUs than relays, as their pods would; with fewer they
    share CPU 0 with the aggregator."""
    cpus = sorted(os.sched_getaffinity(0))
    if not on or len(cpus) < 2:
        return
    own = relays if len(cpus) >= relays + 2 else 0  # CPUs 1..own are the relays'
    if role == "aggregator":
        mine = cpus[:1]
    elif role == "relay":
        mine = [cpus[1 + index]] if own else cpus[:1]
    else:
        mine = cpus[1 + own :]
    os.sched_setaffinity(pid, mine)


def write_settled_checkpoint(job: Path, ckpt_dir: Path) -> None:
    """With ``--settled``: iteration 0's checkpoint, its controller concentrated, for the
    aggregator to resume from (it reads the spec from the checkpoint, the job's own)."""
    from esenas import checkpoint
    from esenas.algorithm import ESENAS
    from esenas.rollout import env_dims
    from esenas.spec import load_job

    sys.path.insert(0, str(ROOT))  # bench/ is run as a script: its siblings import from the repo root
    from bench.population import settle

    spec = load_job(job).spec
    algo = ESENAS(spec, *env_dims(spec.environment))
    settle(algo)
    state = {"algo": algo.state_dict(), "runtime": {"phase": "Running", "reason": ""}}
    checkpoint.CheckpointStore(ckpt_dir).save(0, checkpoint.encode(state))


def run_scale(
    w: int, a: argparse.Namespace, step_s: float, tmp: Path, fraction: float = 1.0, transport: str = "stream"
) -> dict[str, Any]:
    doc = job_doc(w, a.pairs_per_worker, a.iterations, "HalfCheetah-v5")  # dims; timing is calibrated
    doc["spec"]["es"]["minPairsFraction"] = fraction
    doc["spec"]["workers"]["batchSize"] = a.batch or a.pairs_per_worker
    doc["spec"]["workers"]["itemTimeoutSeconds"] = a.item_timeout
    job = tmp / f"job-{w}.yaml"
    job.write_text(yaml.safe_dump(doc))
    (tmp / "token").write_text(TOKEN)
    ports = tmp / f"ports-{w}.json"
    exe = Path(sys.executable).parent / "esenas"
    if a.settled:
        write_settled_checkpoint(job, tmp / f"ckpt-{w}")
    agg_log = (tmp / f"agg-{w}.log").open("w")
    per_iteration = a.pairs_per_worker * w + doc["spec"]["es"]["exactEvals"]
    lease_cap = ["--max-lease-items", str(MAX_LEASE)] if a.relays else []
    agg = subprocess.Popen(
        [str(exe), "aggregator", "--job", str(job), "--checkpoint-dir", str(tmp / f"ckpt-{w}"),
         "--token-file", str(tmp / "token"), "--host", "127.0.0.1", "--port", "0", "--http-port", "0",
         "--ports-file", str(ports), "--exit-when-done", "--log-level", "WARNING", *lease_cap],
        stdout=agg_log, stderr=subprocess.STDOUT,
    )
    pin(agg.pid, a.pin, "aggregator")
    relays: list[subprocess.Popen[bytes]] = []
    try:
        address = f"127.0.0.1:{wait_ports(agg, ports, tmp / f'agg-{w}.log', 'the aggregator')['grpc']}"
        # Relays: each leases its share of an iteration in one call (one round per iteration).
        lease = min(MAX_LEASE, -(-per_iteration // max(1, a.relays)))
        addresses = [address]
        relay_http: list[str] = []
        if a.relays:
            addresses = []
            for r in range(a.relays):
                rports = tmp / f"relay-{w}-{r}.json"
                relays.append(subprocess.Popen(
                    [str(exe), "relay", "--upstream", address, "--job", str(job), "--token-file", str(tmp / "token"),
                     "--host", "127.0.0.1", "--port", "0", "--http-port", "0", "--ports-file", str(rports),
                     "--relay-id", f"relay-{r}", "--lease-items", str(lease), "--exit-when-done", "--log-level", "WARNING"],
                    stdout=agg_log, stderr=subprocess.STDOUT,
                ))
                pin(relays[-1].pid, a.pin, "relay", a.relays, r)
                rp = wait_ports(relays[-1], rports, tmp / f"agg-{w}.log", f"relay {r}")
                addresses.append(f"127.0.0.1:{rp['grpc']}")
                relay_http.append(f"http://127.0.0.1:{rp['http']}")
        args = {"step_s": step_s, "slowdown": a.slowdown, "episodes": a.episodes, "batch": a.batch or a.pairs_per_worker,
                "transport": transport}
        n_clients = max(1, min(a.clients, w // 50 or 1))
        clients, outs = [], []
        for c in range(n_clients):
            ids = [f"sim-{c}-{i}" for i in range(c, w, n_clients)]
            out = tmp / f"client-{w}-{c}.json"
            outs.append(out)
            spec = json.dumps({"addresses": addresses, "ids": ids, "args": args, "out": str(out)})
            clients.append(subprocess.Popen([sys.executable, __file__, "--client", spec]))
            pin(clients[-1].pid, a.pin, "client", a.relays)
        t_start = time.monotonic()
        cpu_marks: dict[int, tuple[float, ...]] = {}
        replay_marks: dict[int, float] = {}  # CPU-s of the aggregator's replay process (esenas_aggregator.confirm)
        count_marks: dict[int, dict[str, float]] = {}  # the aggregator's TAIL_COUNTERS at each iteration's start
        last_it = -1
        import urllib.request

        http = f"http://127.0.0.1:{json.loads(ports.read_text())['http']}"
        hwm = 0.0
        while agg.poll() is None:
            try:
                with urllib.request.urlopen(f"{http}/status", timeout=5) as r:
                    it = int(json.load(r)["iteration"])
            except OSError:
                it = last_it
            if it != last_it:
                relay_broadcast = np.sum([metric_sums(u)[2:] for u in relay_http], axis=0) if relay_http else (0.0, 0.0)
                own = proc_cpu_s(agg.pid)
                replay_marks[it] = tree_cpu_s(agg.pid) - own
                cpu_marks[it] = (time.monotonic(), own + replay_marks[it], sum(proc_cpu_s(r.pid) for r in relays),
                                 *metric_sums(http), *relay_broadcast)
                count_marks[it] = tail_counts(http)
                last_it = it
                print(f"  W={w}: iteration {it} at {time.monotonic() - t_start:.1f} s", flush=True)
            hwm = max(hwm, proc_hwm_mib(agg.pid))
            time.sleep(0.25)
            if time.monotonic() - t_start > a.timeout:
                raise RuntimeError(f"W={w}: not finished within {a.timeout:g} s (iteration {last_it} of {a.iterations}; aggregator {proc_cpu_s(agg.pid):.0f} CPU-s)")
        history = json.loads((tmp / f"ckpt-{w}" / "result" / "summary.json").read_text())
        # summary.json has esenas run's keys; the phase is in the final /status, status.json.
        history["phase"] = json.loads((tmp / f"ckpt-{w}" / "result" / "status.json").read_text()).get("phase")
        its = json.loads((tmp / f"ckpt-{w}" / "result" / "history.json").read_text()) or [{}]
        history["controller_entropy"] = [its[0].get("controller_entropy"), its[-1].get("controller_entropy")]
        for client in clients:
            client.wait(120)
    finally:
        for proc in (agg, *relays):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
        agg_log.close()
    rec: dict[str, list[Any]] = {}
    client_cpu = 0.0
    for out in outs:
        d = json.loads(out.read_text())
        client_cpu += d.pop("cpu_s")
        for k, v in d.items():
            rec.setdefault(k, []).extend(v)
    scale = summarise(w, a, rec, cpu_marks, hwm, client_cpu, history, replay_marks)
    c0, c1 = count_marks.get(1), count_marks.get(a.iterations - 1)
    scale["tail_per_iteration"] = (
        {k: round((c1[k] - c0[k]) / max(1, a.iterations - 2), 1) for k in TAIL_COUNTERS} if c0 and c1 else None
    )
    scale["relays"] = a.relays
    planned = a.iterations * (2 * a.pairs_per_worker * w + doc["spec"]["es"]["exactEvals"])
    dropped = (planned - int(history.get("episodes", planned))) / 2 / a.iterations
    entropy = [None if h is None else round(h, 3) for h in history.get("controller_entropy", [None, None])]
    return {**scale, "min_pairs_fraction": fraction, "pairs_dropped_per_iteration": round(dropped, 1), "transport": transport,
            "pinned": a.pin, "settled": a.settled, "controller_entropy_first_last": entropy}


def summarise(
    w: int, a: argparse.Namespace, rec: dict[str, list[Any]], cpu_marks: dict[int, tuple[float, ...]],
    hwm: float, client_cpu: float, summary: dict[str, Any], replay_marks: dict[int, float] | None = None,
) -> dict[str, Any]:
    items = np.array(rec["items"], dtype=np.float64).reshape(-1, 3)  # iteration, start, duration
    k = a.iterations
    # Steady window: iteration 1 starts .. iteration k-1 starts (iteration 0 has the connection
    # set-up; the last one ends with the job, so its tail has no next iteration to start).
    starts = {it: float(items[items[:, 0] == it, 1].min()) for it in range(k) if np.any(items[:, 0] == it)}
    first, last = 1, k - 1
    t0, t1 = starts[first], starts[last]
    window = t1 - t0
    steady = (items[:, 0] >= first) & (items[:, 0] < last)
    busy = float(items[steady, 2].sum())
    pushed = np.array(rec["pushed"], dtype=np.float64).reshape(-1, 4)  # iteration, slept, n, accepted
    ps = (pushed[:, 0] >= first) & (pushed[:, 0] < last)
    useful = float((pushed[ps, 1] * np.minimum(1.0, pushed[ps, 3] / np.maximum(pushed[ps, 2], 1))).sum())
    # The planned share: each worker's first lease of the iteration (later leases are the
    # self-balancing remainder and speculative backups, which an ideal schedule would not need).
    slowest: dict[int, float] = {}
    if os.environ.get("SCALE_DEBUG"):
        fb = np.array([x[2] for x in rec["worker_sleep"] if x[3] and first <= x[1] < last])
        print("first-batch sleeps: ", np.percentile(fb, [0, 50, 90, 99, 100]).round(3), flush=True)
    for _wid, it, slept, first_batch in rec["worker_sleep"]:
        if first <= it < last and first_batch:
            slowest[it] = max(slowest.get(it, 0.0), slept)
    # "One round trip" of the ideal: an unqueued one (10th percentile); the median on this shared
    # machine mostly measures the simulated clients' own CPU queueing, reported separately.
    rtt = float(np.percentile(rec["rtt"], 10)) if rec["rtt"] else 0.0
    rtt_median = float(np.median(rec["rtt"])) if rec["rtt"] else 0.0
    ideal = float(np.mean(list(slowest.values()))) + rtt if slowest else None
    marks = sorted(cpu_marks)
    m0 = cpu_marks.get(first) or cpu_marks[marks[0]]
    m1 = cpu_marks.get(last) or cpu_marks[marks[-1]]
    agg_cpu = m1[1] - m0[1]
    relay_cpu = m1[2] - m0[2]
    sent = {form: int((m1[3 + i] - m0[3 + i]) / max(1, last - first)) for i, form in enumerate(("decisions", "positions"))}

    def mean_broadcast(at: int) -> float | None:
        """Server-side broadcast (esenas_iteration_broadcast_seconds) over the steady iterations:
        the aggregator's (at 5) or the relays' (at 7), averaged over the relays."""
        n = m1[at + 1] - m0[at + 1]
        return round((m1[at] - m0[at]) / n, 3) if n > 0 else None
    results = int(pushed[ps, 3].sum())
    exact = np.array(rec["exact"], dtype=np.float64).reshape(-1, 2)
    e_first = float(exact[exact[:, 0] == 0, 1].mean()) if np.any(exact[:, 0] == 0) else None
    e_last = float(exact[exact[:, 0] == k - 1, 1].mean()) if np.any(exact[:, 0] == k - 1) else None
    # Time until every worker holds the new version and has started on it: per steady
    # iteration, the last worker's first item start minus the first one's.
    first_start: dict[tuple[int, str], float] = {}
    for wid, it, start in rec["first_item"]:
        if first <= it < last:
            first_start[(it, wid)] = min(first_start.get((it, wid), np.inf), start)
    spread = [
        max(v for (i, _), v in first_start.items() if i == it) - min(v for (i, _), v in first_start.items() if i == it)
        for it in range(first, last)
    ]
    # Where the rest of an iteration goes: from its last lease's end to the next iteration's first
    # item (the last push, a relay's hand-in, tell and ask, the first lease), and the spread of
    # the workers' ends (the broadcast's spread carried through the iteration, plus imbalance).
    done_at = np.array(rec.get("done_at", []), dtype=np.float64).reshape(-1, 2)
    barrier, finish_spread = [], []
    for it in range(first, last):
        ends = done_at[done_at[:, 0] == it, 1]
        if len(ends) and it + 1 in starts:
            barrier.append(starts[it + 1] - float(ends.max()))
            finish_spread.append(float(ends.max() - ends.min()))
    calls = np.array(rec["calls"], dtype=np.float64).reshape(-1, 2)  # iteration, items received
    cs = (calls[:, 0] >= first) & (calls[:, 0] < last)
    n_get_params = len(rec["get_params"]) * (last - first) / k
    return {
        "workers": w,
        "perturbations": a.pairs_per_worker * w,
        "slowdown": a.slowdown,
        "episodes": a.episodes,
        "iterations": k,
        "steady_iterations": last - first,
        "efficiency": round(useful / (w * window), 3),
        "busy_fraction": round(busy / (w * window), 3),
        "s_per_iteration": round(window / (last - first), 3),
        "ideal_s_per_iteration": round(ideal, 3) if ideal is not None else None,
        "aggregator_cpu_s_per_iteration": round(agg_cpu / (last - first), 3),
        "aggregator_cpu_us_per_result": round(1e6 * agg_cpu / max(results, 1), 1),
        # of which the process replaying claimed bests (here every iteration: the simulated rewards
        # never replay, so each iteration's best is a new claim, as early in a real job)
        "aggregator_replay_cpu_s_per_iteration": round(
            ((replay_marks or {}).get(last, 0.0) - (replay_marks or {}).get(first, 0.0)) / (last - first), 3
        ),
        # the goal's figure: aggregator cores for 10,000 workers at real speed (slowdown 1), at
        # this cost per result and this task's mean seconds per item (a pair of episodes)
        "aggregator_cores_at_10000_real_speed_workers": round(
            agg_cpu / max(results, 1) * REAL_SPEED_WORKERS / (useful / max(results, 1) / a.slowdown), 2
        ),
        "relay_cpu_s_per_iteration": round(relay_cpu / (last - first), 3),
        "relay_cpu_us_per_result": round(1e6 * relay_cpu / max(results, 1), 1),
        "client_cpu_s": round(client_cpu, 1),
        "rss_mib": round(hwm, 1),
        "param_bytes_per_iteration": int(float(np.sum(rec["param_bytes"])) / k),
        "topology_bytes_per_iteration": int(float(np.sum(rec["topology_bytes"])) / k),
        # what the aggregator itself sent (to relays: sample positions for sampled topologies)
        "aggregator_topology_bytes_per_iteration": sent,
        "broadcast_s": round(float(np.mean(spread)), 3) if spread else None,
        "barrier_s": round(float(np.mean(barrier)), 3) if barrier else None,
        # the same spread as the servers see it: until each one's last worker got its first lease
        "server_broadcast_s": {"aggregator": mean_broadcast(5), "relays": mean_broadcast(7)},
        # How late the simulated workers' sleeps end, past their episode time: their client
        # process's event loop busy with its other workers (a real worker has its own pod).
        "sleep_late_ms_mean_p99": [round(1000 * float(np.mean(rec["late"])), 1), round(1000 * float(np.percentile(rec["late"], 99)), 1)]
        if rec.get("late") else None,
        "finish_spread_s": round(float(np.mean(finish_spread)), 3) if finish_spread else None,
        "exchange_calls_per_iteration": int(cs.sum() / (last - first)),
        "empty_exchanges_per_iteration": int((cs & (calls[:, 1] == 0)).sum() / (last - first)),
        "get_params_per_iteration": int(n_get_params / (last - first)),
        "rtt_ms_p10": round(1000 * rtt, 2),
        "rtt_ms_median": round(1000 * rtt_median, 2),
        "exact_eval_first": round(e_first, 2) if e_first is not None else None,
        "exact_eval_last": round(e_last, 2) if e_last is not None else None,
        "objective_improved": bool(e_first is not None and e_last is not None and e_last > e_first),
        "phase": summary.get("phase"),
        "worker_errors": dict(Counter(str(e).split(":")[0] for e in rec.get("errors", []))),
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_entry()
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", default="100,1000,10000", help="comma-separated W values")
    p.add_argument("--iterations", type=int, default=6)
    p.add_argument("--pairs-per-worker", type=int, default=8)
    p.add_argument("--item-timeout", type=float, default=120.0, help="spec.workers.itemTimeoutSeconds")
    p.add_argument("--batch", type=int, default=0, help="items a worker asks for per call (default: pairs per worker)")
    p.add_argument("--episodes", choices=("fixed", "heavy-tailed"), default="fixed")
    p.add_argument("--slowdown", type=float, default=4.0, help="stretch simulated episode times (state it)")
    p.add_argument("--relays", type=int, default=0, help="relay processes between the workers and the aggregator (0: none)")
    p.add_argument("--clients", type=int, default=3, help="client processes holding the simulated workers")
    p.add_argument("--pin", action="store_true",
                   help="the aggregator on the first CPU, relays on one CPU each where there are enough (else beside it), the simulated workers on the rest (state it)")
    p.add_argument("--settled", action="store_true",
                   help="start from a checkpoint with the controller concentrated, a job's steady state (state it)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per scale")
    p.add_argument("--transport", default="stream",
                   help="stream (one ExchangeStream per worker, as the real worker) or unary (an Exchange call "
                        "per lease); comma-separated values run in turn at each W, for an A/B in one session")
    p.add_argument("--min-pairs-fraction", default="1.0",
                   help="es.minPairsFraction, comma-separated values run in turn at each W (straggler policy)")
    a = p.parse_args()
    if a.iterations < 3:
        p.error("--iterations: must be >= 3 (the first and last are left out of the steady window)")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    step_s = calibrate(ENV_ID[a.episodes])
    print(f"calibrated: {1e6 * step_s:.1f} us per env step of chromatic H41 on {ENV_ID[a.episodes]}; "
          f"slowdown {a.slowdown:g}", flush=True)
    scales = []
    with tempfile.TemporaryDirectory(prefix="esenas-scale-") as d:
        runs = [(int(x), float(f), t) for x in a.workers.split(",") for f in a.min_pairs_fraction.split(",")
                for t in a.transport.split(",")]
        for k, (w, fraction, transport) in enumerate(runs):
            print(f"W={w}: {a.pairs_per_worker * w} pairs per iteration, {a.iterations} iterations, "
                  f"minPairsFraction {fraction:g}, transport {transport}", flush=True)
            run_dir = Path(d) / f"run{k}-F{fraction:g}-{transport}"  # its own checkpoints: no resuming
            run_dir.mkdir(exist_ok=True)
            try:
                s = run_scale(w, a, step_s, run_dir, fraction, transport)
            except RuntimeError as exc:  # report the scale that could not finish, and go on
                print(f"W={w}: {exc}", flush=True)
                scales.append({"workers": w, "perturbations": a.pairs_per_worker * w, "slowdown": a.slowdown,
                               "episodes": a.episodes, "min_pairs_fraction": fraction, "transport": transport, "pinned": a.pin,
                               "settled": a.settled, "error": str(exc)[:300]})
                continue
            print(f"W={w}: efficiency {s['efficiency']}, {s['s_per_iteration']} s/iteration "
                  f"(ideal {s['ideal_s_per_iteration']}), aggregator {s['aggregator_cpu_us_per_result']} us/result, "
                  f"RSS {s['rss_mib']} MiB", flush=True)
            scales.append(s)
    print(json.dumps({"bench": "scale", "task_dims": "HalfCheetah-v5 chromatic H41/17",
                      "episodes": a.episodes, "us_per_env_step": round(1e6 * step_s, 2), "scales": scales}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
