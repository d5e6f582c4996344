"""Env steps/s per worker through the whole gRPC stack vs a bare single-process Gymnasium loop.

Same task, same policy, same machine, same run. The distributed figure is measured on the
aggregator's /status (env steps of accepted results over wall time, iterations 2..N, so
it includes the barrier at the end of each iteration, ask/tell, and the parameter fetch);
the baseline runs ``esenas.rollout.rollout`` with the plan's policy in this process, before
and after, and averages the two. Ends with one JSON line.

Before that, per task, the native stepper (esenas.native) against Gymnasium (``stepper:
gymnasium``): the same rollout loop and policy (the job's, sized for each task), rounds of the two
paths interleaved in this one process, env steps per CPU-second of each, and the ratio of each
round's pair (median over rounds), so the shared machine's drift hits both sides alike. Goals
(issue 15): >= 1.3x on HalfCheetah, >= 1.2x averaged over HalfCheetah, Hopper, Walker2d, Swimmer
and Ant, and the gRPC stack (which steps natively) >= 0.9 of its own bare loop.

    .venv/bin/python bench/throughput.py [--job manifests/examples/halfcheetah-chromatic-h41.yaml]
    .venv/bin/python bench/throughput.py --no-grpc   # the per-task comparison only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # bench/ is run as a script: reuse the test process helpers

from tests.integration.runtime.procs import cpu_ticks, start_aggregator, start_worker, stop_all  # noqa: E402

TICK = 1.0 / os.sysconf("SC_CLK_TCK")


def bare_rate(job_path: Path, steps: int) -> tuple[float, float]:
    """Env steps per wall second and per CPU second of this process stepping the task with the
    plan's policy (no gRPC)."""
    from esenas.algorithm import ESENAS
    from esenas.policies import Policy
    from esenas.rollout import env_dims, make_env, rollout
    from esenas.spec import load_job

    job = load_job(job_path)
    obs_dim, act_dim = env_dims(job.spec.environment)
    algo = ESENAS(job.spec, obs_dim, act_dim)
    plan = algo.ask()
    policy = Policy(algo.arch, plan.topologies[0], plan.params, plan.obs_mean, plan.obs_std)
    env = make_env(job.spec.environment)
    done, seed = 0, 0
    t0, c0 = time.perf_counter(), time.process_time()
    while done < steps:
        _, n = rollout(env, policy, seed)[:2]
        done += int(n)
        seed += 1
    rate, cpu_rate = done / (time.perf_counter() - t0), done / (time.process_time() - c0)
    env.close()
    return rate, cpu_rate


TASKS = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Swimmer-v5", "Ant-v5", "Humanoid-v5",
         "InvertedPendulum-v5", "InvertedDoublePendulum-v5")
GOAL_TASKS = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Swimmer-v5", "Ant-v5")


def stepper_rates(job_path: Path, task: str, steps: int, rounds: int) -> dict[str, object]:
    """Env steps per CPU-second of the worker's own rollouts (``Evaluator.run`` on the plan's
    perturbed pairs: both halves in lockstep) with the native and with the Gymnasium stepper on
    ``task``, interleaved over the same items; and, on the native stepper, the same pairs as two
    plain ``rollout`` calls each, which is what lockstep saves."""
    import dataclasses

    from esenas.algorithm import ESENAS
    from esenas.es import perturbation
    from esenas.results import KIND_PAIR
    from esenas.rollout import Evaluator, rollout
    from esenas.spec import load_job

    spec = load_job(job_path).spec
    evs = {}
    for stepper in ("native", "gymnasium"):
        env_spec = dataclasses.replace(spec.environment, id=task, kwargs={}, stepper=stepper)
        evs[stepper] = Evaluator(dataclasses.replace(spec, environment=env_spec))
    native = evs["native"]
    algo = ESENAS(spec, native.obs_dim, native.act_dim)
    plan = algo.ask()
    for ev in evs.values():
        ev.set_plan(plan.params, plan.obs_mean, plan.obs_std, plan.sigma, plan.topologies)
    items = plan.items[plan.items["kind"] == KIND_PAIR]

    def lockstep(ev: Evaluator, k: int) -> int:
        return int(ev.run(items[k : k + 1]).steps[0])

    def sequential(k: int) -> int:  # the same pair as two rollouts, one after the other
        it = items[k]
        eps = native.sigma * perturbation(int(it["seed"]), native.params.size)
        topo = native.topologies[int(it["topology"])]
        seed, buf = int(it["seed"]) % 2**31, native._bufs[0]
        return sum(rollout(native.env, native._policy(native.params + sign * eps, topo), seed, buf)[1] for sign in (1, -1))

    paths = {"native": lambda k: lockstep(evs["native"], k), "gymnasium": lambda k: lockstep(evs["gymnasium"], k),
             "native_sequential": sequential}
    rates: dict[str, list[float]] = {name: [] for name in paths}
    first = 0
    for r in range(rounds):
        names = list(paths) if r % 2 == 0 else list(reversed(paths))
        for name in names:
            done, k = 0, first
            c0 = time.process_time()
            while done < steps:  # the same items, so the same episodes, on every path
                done += paths[name](k % items.size)
                k += 1
            rates[name].append(done / (time.process_time() - c0))
        first = k
    for ev in evs.values():
        ev.close()
    ratios = [n / g for n, g in zip(rates["native"], rates["gymnasium"], strict=True)]
    gains = [n / s for n, s in zip(rates["native"], rates["native_sequential"], strict=True)]
    return {
        "native": round(float(np.median(rates["native"]))),
        "gymnasium": round(float(np.median(rates["gymnasium"]))),
        "ratio": round(float(np.median(ratios)), 3),
        "native_sequential": round(float(np.median(rates["native_sequential"]))),
        "lockstep_gain": round(float(np.median(gains)), 3),
    }


def grpc_rate(job_path: Path, workers: int, folder: Path, iterations: int) -> tuple[float, float, int]:
    """Env steps per wall second and per worker-CPU second, per worker, through aggregator +
    worker processes, over iterations 1..N-1 (start-up and shutdown excluded); and the steps."""
    folder.mkdir()
    (folder / "token").write_text("bench-token")
    agg = start_aggregator(folder, job_path)
    procs = [start_worker(folder, job_path, agg.address, f"w{i}") for i in range(workers)]
    try:
        first = agg.wait_for(lambda s: s["iteration"] >= 1, 300, "iteration 1")
        t0, c0 = time.monotonic(), sum(cpu_ticks(p.proc.pid) for p in procs)
        last = agg.wait_for(lambda s: s["iteration"] >= iterations - 1, 600, f"iteration {iterations - 1}")
        t1, c1 = time.monotonic(), sum(cpu_ticks(p.proc.pid) for p in procs)
        assert agg.wait(120) == 0
    finally:
        stop_all(agg, *procs)
    steps = int(last["envSteps"]) - int(first["envSteps"])
    return steps / (t1 - t0) / workers, steps / ((c1 - c0) * TICK), steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--job", type=Path, default=REPO / "manifests/examples/halfcheetah-chromatic-h41.yaml")
    ap.add_argument("--iterations", type=int, default=8)
    ap.add_argument("--perturbations", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated env ids for the stepper comparison")
    ap.add_argument("--task-steps", type=int, default=3000, help="env steps per path per round")
    ap.add_argument("--task-rounds", type=int, default=5)
    ap.add_argument("--no-grpc", action="store_true", help="only the per-task stepper comparison")
    args = ap.parse_args()
    per_task: dict[str, dict[str, object]] = {}
    print("per task: env steps per CPU-second of the worker's pair rollouts, native stepper vs Gymnasium (same items, interleaved)", flush=True)
    for task_id in args.tasks.split(","):
        per_task[task_id] = stepper_rates(args.job, task_id, args.task_steps, args.task_rounds)
        t = per_task[task_id]
        print(f"  {task_id:27s} native {t['native']:>8,} gymnasium {t['gymnasium']:>8,}  x{t['ratio']}"
              f"  (lockstep pairs x{t['lockstep_gain']} over two rollouts)", flush=True)
    goal = [float(per_task[t]["ratio"]) for t in GOAL_TASKS if t in per_task]  # type: ignore[arg-type]
    stepper_summary = {
        "per_task": per_task,
        "halfcheetah_ratio": per_task.get("HalfCheetah-v5", {}).get("ratio"),
        "mean_ratio_5": round(float(np.mean(goal)), 3) if len(goal) == len(GOAL_TASKS) else None,
        "goals": {"halfcheetah_ratio": 1.3, "mean_ratio_5": 1.2, "cpu_ratio": 0.9},
    }
    if args.no_grpc:
        print(json.dumps({"bench": "throughput", **stepper_summary, "load_avg_1m": round(os.getloadavg()[0], 2)}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        doc = yaml.safe_load(args.job.read_text())
        spec = doc["spec"]
        spec["es"].update(perturbations=args.perturbations, exactEvals=0)
        spec["es"].pop("topDirections", None)  # at most --perturbations; the update is not what is timed
        spec["stopping"] = {"maxIterations": args.iterations}
        spec.setdefault("workers", {}).update(batchSize=4)
        job = folder / "job.yaml"
        job.write_text(yaml.safe_dump(doc))
        task = spec["environment"]["id"]
        steps = args.perturbations * 2 * 1000
        print(f"task {task}, policy {spec['policy']}, {args.perturbations} perturbations/iteration", flush=True)
        # Alternate baseline and distributed runs: the machine is shared, so drift hits both.
        bare: list[tuple[float, float]] = []
        dist: list[tuple[float, float]] = []
        measured = 0
        for r in range(args.repeats):
            bare.append(bare_rate(job, steps))
            print(f"[{r}] bare loop: {bare[-1][0]:,.0f} steps/s ({bare[-1][1]:,.0f} per CPU-s)", flush=True)
            wall, cpu, measured = grpc_rate(job, args.workers, folder / f"run{r}", args.iterations)
            dist.append((wall, cpu))
            print(f"[{r}] gRPC stack, {args.workers} worker(s): {wall:,.0f} steps/s per worker "
                  f"({cpu:,.0f} per worker CPU-s) over {measured:,} steps", flush=True)
        bare.append(bare_rate(job, steps))
        print(f"[{args.repeats}] bare loop: {bare[-1][0]:,.0f} steps/s ({bare[-1][1]:,.0f} per CPU-s)", flush=True)
    b_wall, b_cpu = (float(np.median([b[i] for b in bare])) for i in (0, 1))
    d_wall, d_cpu = (float(np.median([d[i] for d in dist])) for i in (0, 1))
    print(json.dumps({
        "bench": "throughput", "task": task, "policy": "mlp-h41 partition17" if "partitions" in spec["policy"] else spec["policy"]["template"],
        "workers": args.workers, "grpc_steps_per_s_per_worker": round(d_wall), "bare_steps_per_s": round(b_wall),
        "ratio": round(d_wall / b_wall, 3),
        "grpc_steps_per_cpu_s": round(d_cpu), "bare_steps_per_cpu_s": round(b_cpu), "cpu_ratio": round(d_cpu / b_cpu, 3),
        "grpc_runs": [round(x[0]) for x in dist], "bare_runs": [round(x[0]) for x in bare],
        "measured_steps_per_run": measured, **stepper_summary, "load_avg_1m": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
