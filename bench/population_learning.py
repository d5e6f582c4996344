"""Does a big population buy wall-clock time? HalfCheetah H41/17 with 1,024 pairs against 64.

    bench/population_learning.py [--seeds 0,1,2] [--variant lr100] [--report-only]

For each seed, runs bench/learning.py on JOB (bench/jobs/halfcheetah-h41-17-pop1024.yaml; variant
V other than lr100 runs bench/jobs/halfcheetah-h41-17-pop1024-V.yaml): 1,024
pairs per iteration, real MuJoCo, up to 20 iterations (41M env steps). It evaluates the current
weights every iteration and stops once they score 2,500. It keeps
bench/results/population-learning/VARIANT-seedS.{json,curve.jsonl,log}; a seed with a JSON line
is skipped.

Then it compares against the 64-pair row of the learning benchmark
(bench/results/learning/halfcheetah-h41-17/, 10M steps, about 74 iterations, evaluated every
2 iterations). For 1,000, 1,500, 2,000 and 2,500 it reports, per seed, the first iteration whose
evaluation of the current weights reaches the value. Under ideal parallelism an iteration is the
wall clock, whatever its population. The output is bench/results/population-learning.md and
bench/results/img/population-learning.png, and the script ends with ONE JSON line. A seed that
never reaches a value counts as "past its last iteration" in the median, so a median that is not
reached is reported as such, never as a number.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # bench/ is run as a script: import its modules from the repo root

from bench.learning_sweep import commit_of_core, run_logged  # noqa: E402

JOB: Final = "bench/jobs/halfcheetah-h41-17-pop1024.yaml"
BASE_VARIANT: Final = "lr100"
OUT: Final = REPO / "bench" / "results" / "population-learning"
BASELINE: Final = REPO / "bench" / "results" / "learning" / "halfcheetah-h41-17"
#: 64 pairs stepping on their best 16 (learning row halfcheetah-h41-17-top16): whether a variant's
#: gain comes from its population or from keeping only its best directions.
CONTROL: Final = REPO / "bench" / "results" / "learning" / "halfcheetah-h41-17-top16"
PAGE: Final = REPO / "bench" / "results" / "population-learning.md"
IMG: Final = REPO / "bench" / "results" / "img" / "population-learning.png"
THRESHOLDS: Final = (1000.0, 1500.0, 2000.0, 2500.0)
ITERATIONS: Final = 20
PAIRS: Final = 1024


def first_iteration(curve: list[dict[str, Any]], threshold: float) -> int | None:
    """The first iteration whose evaluation of the current weights reaches ``threshold``."""
    for point in curve:
        if point.get("eval") is not None and point["eval"] >= threshold:
            return int(point["iteration"])
    return None


def median_iterations(hits: list[int | None]) -> float:
    """The median over seeds, a seed that never got there counting as infinitely late."""
    return statistics.median([math.inf if h is None else float(h) for h in hits]) if hits else math.inf


def load(folder: Path, prefix: str = "") -> list[dict[str, Any]]:
    """The runs of a folder: each seed's JSON line with its curve under ``_curve``."""
    runs = []
    for path in sorted(folder.glob(f"{prefix}seed*.json"), key=lambda p: int(p.stem.rsplit("seed", 1)[1])):
        run = json.loads(path.read_text(encoding="utf-8"))
        curve = path.with_suffix(".curve.jsonl")
        run["_curve"] = [json.loads(ln) for ln in curve.read_text(encoding="utf-8").splitlines()] if curve.exists() else []
        runs.append(run)
    return runs


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per threshold: each seed's first iteration (None: not reached) and their median."""
    out: dict[str, Any] = {"seeds": [r["seed"] for r in runs], "last_iteration": [len(r["_curve"]) - 1 for r in runs]}
    for t in THRESHOLDS:
        hits = [first_iteration(r["_curve"], t) for r in runs]
        med = median_iterations(hits)
        out[f"{t:.0f}"] = {"iterations": hits, "median": None if math.isinf(med) else med}
    return out


def _cell(block: dict[str, Any]) -> str:
    hits = ", ".join("-" if h is None else str(h) for h in block["iterations"])
    median = "not reached" if block["median"] is None else f"{block['median']:g}"
    return f"{median} ({hits})"


def _ratio(small: dict[str, Any], big: dict[str, Any], budget: int) -> str:
    if big["median"] is None:
        return "-"
    if small["median"] is None:
        return f"> {budget / max(big['median'], 1):.1f}"
    return f"{small['median'] / max(big['median'], 1):.1f}"


def _figure(small: list[dict[str, Any]], big: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for runs, colour, label in ((small, "tab:gray", "64 pairs"), (big, "tab:blue", f"{PAIRS:,} pairs")):
        for i, run in enumerate(runs):
            pts = [(p["iteration"], p["eval"]) for p in run["_curve"] if p.get("eval") is not None]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, color=colour, alpha=0.8, linewidth=1.2, label=label if i == 0 else None)
    ax.axhline(2500, color="tab:red", linestyle="--", linewidth=1, label="2,500")
    ax.set_xlabel("ES iteration (the wall clock under ideal parallelism)")
    ax.set_ylabel("reward of the current weights")
    ax.set_title("HalfCheetah-v5, chromatic H41/17: population 64 against 1,024", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    IMG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(IMG)
    plt.close(fig)


def job_of(variant: str) -> str:
    """A variant's job file: the base job for ``lr100``, else the base job's name plus ``-VARIANT``."""
    return JOB if variant == BASE_VARIANT else JOB.replace(".yaml", f"-{variant}.yaml")


def variants(folder: Path) -> list[str]:
    """The variants with at least one finished seed in ``folder``."""
    return sorted({p.name.rsplit("-seed", 1)[0] for p in folder.glob("*-seed*.json")})


def _others_section(others: dict[str, list[dict[str, Any]]]) -> list[str]:
    if not others:
        return []
    rows = []
    for name, runs in sorted(others.items()):
        o = summary(runs)
        cells = " | ".join(_cell(o[f"{t:.0f}"]) for t in THRESHOLDS)
        rows.append(f"| `{name}` (`{job_of(name)}`) | {', '.join(map(str, o['seeds']))} | {cells} |")
    return [
        "## Other variants measured",
        "",
        "Iterations to each reward as above, for the other configurations tried (their job files say what changed).",
        "",
        "| variant (job) | seeds | " + " | ".join(f"{t:,.0f}" for t in THRESHOLDS) + " |",
        "| --- | --- | " + " | ".join("---" for _ in THRESHOLDS) + " |",
        *rows,
        "",
        "```",
        *[json.dumps({k: v for k, v in r.items() if not k.startswith("_")}) for runs in others.values() for r in runs],
        "```",
        "",
    ]


def stopped(folder: Path) -> list[dict[str, Any]]:
    """Seeds stopped by hand before their budget: a curve without a JSON line."""
    out = []
    for curve in sorted(folder.glob("*-seed*.curve.jsonl")):
        if curve.with_name(curve.name.replace(".curve.jsonl", ".json")).exists():
            continue
        points = [json.loads(ln) for ln in curve.read_text(encoding="utf-8").splitlines() if ln.strip()]
        evals = [p["eval"] for p in points if p.get("eval") is not None]
        variant, seed = curve.name.removesuffix(".curve.jsonl").rsplit("-seed", 1)
        out.append({"variant": variant, "seed": int(seed), "iterations": len(points), "best_eval": max(evals, default=None),
                    "last_eval": evals[-1] if evals else None, "last_reward_mean": points[-1].get("reward_mean") if points else None,
                    "last_entropy": points[-1].get("entropy") if points else None})
    return out


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _stopped_section(runs: list[dict[str, Any]]) -> list[str]:
    if not runs:
        return []
    def job(variant: str) -> str:  # an early variant's job may not have been kept
        return f"`{job_of(variant)}`" if (REPO / job_of(variant)).exists() else "job file not kept; see its log"

    rows = [f"| `{r['variant']}` ({job(r['variant'])}) | {r['seed']} | {r['iterations']} | {_num(r['best_eval'])} | "
            f"{_num(r['last_eval'])} | {_num(r['last_reward_mean'])} | "
            f"{'-' if r['last_entropy'] is None else format(r['last_entropy'], '.2f')} |" for r in runs]
    return [
        "## Stopped early",
        "",
        "Seeds stopped by hand before their budget, once their curves showed them behind the runs above: "
        "partial evidence, in none of the tables. The population's mean reward and the controller's "
        "entropy (nats per decision, at most ln 17 = 2.83) are those of the last iteration run.",
        "",
        "| variant (job) | seed | iterations run | best evaluation | last evaluation | last population mean | last entropy |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
    ]


def _control_section(control: list[dict[str, Any]], s: dict[str, Any], b: dict[str, Any]) -> list[str]:
    if not control:
        return []
    c = summary(control)
    rows = [f"| {t:,.0f} | {_cell(s[f'{t:.0f}'])} | {_cell(c[f'{t:.0f}'])} | {_cell(b[f'{t:.0f}'])} |" for t in THRESHOLDS]
    return [
        "## The population or the selection?",
        "",
        "The same 64-pair example stepping on its best 16 pairs (`topDirections: 16`, learning row "
        f"`halfcheetah-h41-17-top16`, seeds {', '.join(map(str, c['seeds']))}, evaluated every 2 iterations), "
        "beside the two runs above.",
        "",
        f"| reward | 64 pairs, all | 64 pairs, best 16 | {PAIRS:,} pairs (this variant) |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
    ]


def render(
    small: list[dict[str, Any]],
    big: list[dict[str, Any]],
    variant: str,
    others: dict[str, list[dict[str, Any]]] | None = None,
    control: list[dict[str, Any]] | None = None,
    stopped_runs: list[dict[str, Any]] | None = None,
) -> tuple[str, dict[str, Any]]:
    job = job_of(variant)
    s, b = summary(small), summary(big)
    budget = max(s["last_iteration"], default=0)
    line = {"bench": "population_learning", "task": "HalfCheetah-v5 chromatic H41/17", "variant": variant,
            "pairs": {"64": s, str(PAIRS): b}, "ratio_at_2500": _ratio(s["2500"], b["2500"], budget)}
    if control:
        line["control_64_top16"] = summary(control)
    rows = [f"| {t:,.0f} | {_cell(s[f'{t:.0f}'])} | {_cell(b[f'{t:.0f}'])} | {_ratio(s[f'{t:.0f}'], b[f'{t:.0f}'], budget)} |"
            for t in THRESHOLDS]
    text = "\n".join([
        "# A big population against the wall clock (issue 9), generated by `bench/population_learning.py`",
        "",
        f"HalfCheetah-v5, chromatic H41 with 17 partitions, real MuJoCo. {PAIRS:,} pairs per iteration "
        f"(`{job}`, variant `{variant}`, seeds {', '.join(map(str, b['seeds'])) or 'none'}) against the 64 pairs of the "
        f"example (`bench/results/learning/halfcheetah-h41-17/`, seeds {', '.join(map(str, s['seeds']))}). Under ideal "
        "parallelism an iteration is the wall clock, so the table compares iterations. Each cell gives the median "
        "iteration at which the current weights first scored the value, with each seed's in brackets "
        "(-: never, within its run). The 64-pair runs were evaluated every 2 iterations and the "
        f"{PAIRS:,}-pair runs every iteration. The {PAIRS:,}-pair runs stop at 2,500 or after {ITERATIONS} iterations.",
        "",
        f"| reward | 64 pairs: iterations | {PAIRS:,} pairs: iterations | fewer iterations (64 / {PAIRS:,}) |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
        "![reward of the current weights against the iteration](img/population-learning.png)",
        "",
        "```",
        *[json.dumps({k: v for k, v in r.items() if not k.startswith("_")}) for r in big],
        json.dumps(line),
        "```",
        "",
        *_control_section(control or [], s, b),
        *_others_section(others or {}),
        *_stopped_section(stopped_runs or []),
    ])
    return text, line


def run_seed(seed: int, variant: str) -> None:
    result = OUT / f"{variant}-seed{seed}.json"
    if result.exists():
        print(f"seed {seed}: done already ({result.relative_to(REPO)})", flush=True)
        return
    cmd = [sys.executable, "bench/learning.py", job_of(variant), "--seed", str(seed), "--workers", "2", "--threshold", "2500",
           "--eval-every", "1", "--every", "1", "--max-env-steps", str(ITERATIONS * (2 * PAIRS + 8) * 1000),
           "--curve", str(OUT / f"{variant}-seed{seed}.curve.jsonl")]
    print(f"seed {seed}: {' '.join(cmd[1:])}", flush=True)
    start = time.monotonic()
    line = run_logged(cmd, OUT / f"{variant}-seed{seed}.log")
    if line is None:
        raise SystemExit(f"seed {seed}: failed, see {OUT / f'{variant}-seed{seed}.log'}")
    result.write_text(json.dumps({**line, "commit": commit_of_core()}) + "\n", encoding="utf-8")
    print(f"seed {seed}: done in {time.monotonic() - start:.0f} s", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--variant", default=BASE_VARIANT, help="the configuration: lr100 runs JOB, another V runs JOB's name plus -V")
    ap.add_argument("--report-only", action="store_true", help="run nothing; regenerate the page from the saved runs")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        for seed in (int(s) for s in args.seeds.split(",")):
            run_seed(seed, args.variant)
    small, big = load(BASELINE), load(OUT, f"{args.variant}-")
    _figure(small, big)
    others = {v: load(OUT, f"{v}-") for v in variants(OUT) if v != args.variant}
    text, line = render(small, big, args.variant, others, load(CONTROL) if CONTROL.is_dir() else [], stopped(OUT))
    PAGE.write_text(text, encoding="utf-8")
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
