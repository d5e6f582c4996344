"""The rows of the learning benchmark: the poster's results table on Gymnasium v5 tasks.

Each row names a job file, its env-step budget (or an episode threshold, for the ARS row) and
the poster's figure to compare against. bench/learning_sweep.py runs a row's seeds;
bench/learning_report.py turns the results into bench/results/learning.md.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Final

from bench.learning_row import ALL_PAIRS, INIT01, NO_EXACT, RESULTS, ROOT, TRIALS3, Row

__all__ = ["RESULTS", "ROOT", "ROWS", "Row"]

_ROWS: Final[dict[str, Row]] = {
    "halfcheetah-h41-17": Row(
        f"HalfCheetah-v5, H41, 17 partitions{ALL_PAIRS}", "bench/jobs/halfcheetah-h41-17.yaml",
        "max 3,779 (mean 2,148)", poster_max=3779, max_env_steps=10_000_000, compare=("HalfCheetah-v5", "chromatic"),
    ),
    "halfcheetah-h41h41-17": Row(
        "HalfCheetah-v5, H41,H41, 17 partitions", "bench/jobs/halfcheetah-h41h41-17.yaml",
        "max 5,285", poster_max=5285, max_env_steps=20_000_000,
    ),
    "halfcheetah-linear-17": Row(
        f"HalfCheetah-v5, linear, 17 partitions{ALL_PAIRS}", "bench/jobs/halfcheetah-linear-17.yaml",
        "max 3,653", poster_max=3653, max_env_steps=10_000_000,
    ),
    "halfcheetah-linear-50": Row(
        f"HalfCheetah-v5, linear, 50 partitions{ALL_PAIRS}", "bench/jobs/halfcheetah-linear-50.yaml",
        "max 4,318", poster_max=4318, max_env_steps=10_000_000,
    ),
    "hopper-h41-11": Row(
        f"Hopper-v5, H41, 11 partitions{ALL_PAIRS}", "bench/jobs/hopper-h41-11.yaml",
        "max 3,408 (mean 247)", poster_max=3408, max_env_steps=10_000_000, compare=("Hopper-v5", "chromatic"),
    ),
    "swimmer-linear-8": Row(
        f"Swimmer-v5, linear, 8 partitions{ALL_PAIRS}", "bench/jobs/swimmer-linear-8.yaml",
        "max 365", poster_max=365, max_env_steps=3_000_000,
    ),
    "swimmer-linear-8-top8": Row(
        "Swimmer-v5, linear, 8 partitions, the best 8 of 32 pairs (topDirections 8)", "bench/jobs/swimmer-linear-8-top8.yaml",
        "max 365", poster_max=365, max_env_steps=3_000_000,
    ),
    "swimmer-linear-dense-top8": Row(
        "Swimmer-v5, dense linear, the best 8 of 32 pairs (the row above, uncompressed)",
        "bench/jobs/swimmer-linear-dense-top8.yaml", "max 365 (the chromatic row's)", poster_max=365, max_env_steps=3_000_000,
    ),
    "halfcheetah-edges-40": Row(
        f"HalfCheetah-v5, H41, edge pruning keeping 40 edges{ALL_PAIRS}", "bench/jobs/halfcheetah-edges-40.yaml",
        "masked, 40 weights (92%): max 4,806", poster_max=4806, max_env_steps=10_000_000,
        compare=("HalfCheetah-v5", "masked (40 edges)"),
    ),
    **{
        f"{task.lower()}-h41-{kind}{tag}": Row(
            f"{task}-v5, H41, {name}{title}: the poster's comparison table", f"bench/jobs/{task.lower()}-h41-{kind}{tag}.yaml",
            "the comparison table", max_env_steps=10_000_000, compare=(f"{task}-v5", name), table=table,
        )
        for tag, title, table in (("", "", "defaults"), ("-p32-top4", ", the best 4 of 32 pairs", "p32-top4"))
        for task in ("HalfCheetah", "Hopper")
        for kind, name in (("toeplitz", "Toeplitz"), ("circulant", "circulant"), ("dense", "unstructured"))
    },
    "hopper-edges-17": Row(
        "Hopper-v5, H41, edge pruning keeping 17 edges (the poster's Hopper masked: 17 weights, 91%): the poster's comparison table",
        "bench/jobs/hopper-edges-17.yaml", "the comparison table", max_env_steps=10_000_000, compare=("Hopper-v5", "masked (17 edges)"),
    ),
    "hopper-edges-17-lr4": Row(
        "Hopper-v5, H41, edge pruning keeping 17 edges, the controller at learning rate 4 (the default 40 settles within ~50 iterations)",
        "bench/jobs/hopper-edges-17-lr4.yaml", "the comparison table's masked row, a slower controller", max_env_steps=10_000_000,
    ),
    "hopper-edges-17-p32-top4-residual": Row(
        "Hopper-v5, H41, edge pruning keeping 17 edges, the best 4 of 32 pairs, searchSpace residual_edges "
        "(direct observation-to-action edges among the candidates)",
        "bench/jobs/hopper-edges-17-p32-top4-residual.yaml", "the poster's Hopper masked (17 weights, 91%): 2,196", poster_max=2196,
        max_env_steps=10_000_000,
        compare=("Hopper-v5", "masked (17 edges, with direct observation-to-action edges)"), table="p32-top4",
    ),
    "halfcheetah-h41-17-top16-anneal": Row(
        "HalfCheetah-v5, H41, 17 partitions, the best 16 of 64 pairs, the step 0.1 falling to 0.01 (es.stepSizeEndFraction 0.1)",
        "bench/jobs/halfcheetah-h41-17-top16-anneal.yaml", "max 3,779 (mean 2,148)", poster_max=3779, max_env_steps=10_000_000,
    ),
    **{
        f"halfcheetah-{pol}-17-p32-top8": Row(
            f"HalfCheetah-v5, {name}, 17 partitions, the best 8 of 32 pairs (twice the iterations of the top-16 row)",
            f"bench/jobs/halfcheetah-{pol}-17-p32-top8.yaml", poster, poster_max=best, max_env_steps=10_000_000,
        )
        for pol, name, poster, best in (("h41", "H41", "max 3,779 (mean 2,148)", 3779), ("linear", "linear", "max 3,653", 3653))
    },
    **{
        f"halfcheetah-h41-17-top16-sigma{tag}": Row(
            f"HalfCheetah-v5, H41, 17 partitions, the best 16 of 64 pairs, es.sigma {sigma} (the mlp default 0.1); "
            "stopped after 2 seeds, each far below the default's",
            f"bench/jobs/halfcheetah-h41-17-top16-sigma{tag}.yaml", "max 3,779 (mean 2,148)", poster_max=3779, max_env_steps=10_000_000,
        )
        for tag, sigma in (("005", "0.05"), ("02", "0.2"))
    },
    "halfcheetah-h41-17-p32-top4": Row(
        "HalfCheetah-v5, H41, 17 partitions, the best 4 of 32 pairs (ARS V2-t's b/N on HalfCheetah)",
        "bench/jobs/halfcheetah-h41-17-p32-top4.yaml", "max 3,779 (mean 2,148)", poster_max=3779, max_env_steps=10_000_000,
        compare=("HalfCheetah-v5", "chromatic"), table="p32-top4",
    ),
    "halfcheetah-h41-17-p32-top4-lr10": Row(
        "HalfCheetah-v5, H41, 17 partitions, the best 4 of 32 pairs, the controller at learning rate 10 (the default 40 settles within 5 iterations)",
        "bench/jobs/halfcheetah-h41-17-p32-top4-lr10.yaml", "max 3,779 (mean 2,148)", poster_max=3779, max_env_steps=10_000_000,
    ),
    "halfcheetah-h41-17-p16-top4": Row(
        "HalfCheetah-v5, H41, 17 partitions, the best 4 of 16 pairs, 4 exact evals (four times the iterations of the top-16 row); "
        "stopped after 3 seeds, none ahead of the best 4 of 32",
        "bench/jobs/halfcheetah-h41-17-p16-top4.yaml", "max 3,779 (mean 2,148)", poster_max=3779, max_env_steps=10_000_000,
    ),
    "halfcheetah-h41h41-17-p32-top4": Row(
        "HalfCheetah-v5, H41,H41, 17 partitions, the best 4 of 32 pairs", "bench/jobs/halfcheetah-h41h41-17-p32-top4.yaml",
        "max 5,285", poster_max=5285, max_env_steps=20_000_000,
    ),
    "halfcheetah-edges-40-p32-top4": Row(
        "HalfCheetah-v5, H41, edge pruning keeping 40 edges, the best 4 of 32 pairs", "bench/jobs/halfcheetah-edges-40-p32-top4.yaml",
        "masked, 40 weights (92%): max 4,806", poster_max=4806, max_env_steps=10_000_000,
        compare=("HalfCheetah-v5", "masked (40 edges)"), table="p32-top4",
    ),
    **{
        f"halfcheetah-edges-40-p32-top4-lr{lr}": Row(
            f"HalfCheetah-v5, H41, edge pruning keeping 40 edges, the best 4 of 32 pairs, the controller at learning rate {lr} "
            "(the default 40 settles within 20 iterations)",
            f"bench/jobs/halfcheetah-edges-40-p32-top4-lr{lr}.yaml", "masked, 40 weights (92%): max 4,806", poster_max=4806,
            max_env_steps=10_000_000,
        )
        for lr in (10, 4, 20)
    },
    **{
        f"halfcheetah-edges-40-p32-top4-{suffix}": Row(
            f"HalfCheetah-v5, H41, edge pruning keeping 40 edges, the best 4 of 32 pairs, {change}",
            f"bench/jobs/halfcheetah-edges-40-p32-top4-{suffix}.yaml", "masked, 40 weights (92%): max 4,806", poster_max=4806,
            max_env_steps=10_000_000,
        )
        for suffix, change in (
            ("step01", "es.stepSize 0.1 (the row's 0.05)"),
            ("residual", "searchSpace residual_edges (direct observation-to-action edges among the candidates)"),
        )
    },
    **{
        name: Row(
            f"{title}, the best 4 of 32 pairs, {count} trials of {steps // 10**6}M steps, the best going on "
            f"(spec.trials.count {count}, envSteps {steps})",
            f"bench/jobs/{name}.yaml", poster, poster_max=poster_max, max_env_steps=budget,
        )
        for name, title, count, steps, poster, poster_max, budget in (
            ("halfcheetah-h41h41-17-trials8", "HalfCheetah-v5, H41,H41, 17 partitions", 8, 1_000_000, "max 5,285", 5285, 20_000_000),
            ("halfcheetah-linear-17-trials3-2m", "HalfCheetah-v5, linear, 17 partitions", 3, 2_000_000, "max 3,653", 3653, 10_000_000),
        )
    },
    "halfcheetah-h41h41-17-lr10": Row(
        "HalfCheetah-v5, H41,H41, 17 partitions, the controller at learning rate 10 (the default 40)",
        "bench/jobs/halfcheetah-h41h41-17-lr10.yaml", "max 5,285", poster_max=5285, max_env_steps=20_000_000,
    ),
    "hopper-h41-11-p32-top4": Row(
        "Hopper-v5, H41, 11 partitions, the best 4 of 32 pairs", "bench/jobs/hopper-h41-11-p32-top4.yaml",
        "max 3,408 (mean 247)", poster_max=3408, max_env_steps=10_000_000, compare=("Hopper-v5", "chromatic"), table="p32-top4",
    ),
    "halfcheetah-linear-50-p32-top4": Row(
        "HalfCheetah-v5, linear, 50 partitions, the best 4 of 32 pairs", "bench/jobs/halfcheetah-linear-50-p32-top4.yaml",
        "max 4,318", poster_max=4318, max_env_steps=10_000_000,
    ),
    "halfcheetah-linear-17-p32-top4": Row(
        "HalfCheetah-v5, linear, 17 partitions, the best 4 of 32 pairs", "bench/jobs/halfcheetah-linear-17-p32-top4.yaml",
        "max 3,653", poster_max=3653, max_env_steps=10_000_000,
    ),
    "swimmer-linear-8-top8-anneal": Row(
        "Swimmer-v5, linear, 8 partitions, the best 8 of 32 pairs, the step 0.05 falling to 0.005 (es.stepSizeEndFraction 0.1)",
        "bench/jobs/swimmer-linear-8-top8-anneal.yaml", "max 365", poster_max=365, max_env_steps=3_000_000,
    ),
    "walker2d-defaults": Row(
        f"Walker2d-v5, H41, 17 partitions, the spec's defaults{ALL_PAIRS}", "bench/jobs/walker2d-defaults.yaml",
        "no poster row", max_env_steps=3_000_000, defaults=True,
    ),
    "walker2d-defaults-noshift": Row(
        f"Walker2d-v5, H41, 17 partitions, the spec's defaults but rewardShift 0{ALL_PAIRS}", "bench/jobs/walker2d-defaults-noshift.yaml",
        "no poster row", max_env_steps=3_000_000, defaults=True,
    ),
    "swimmer-defaults": Row(
        f"Swimmer-v5, linear, 8 partitions, the spec's defaults{ALL_PAIRS}{NO_EXACT}", "bench/jobs/swimmer-defaults.yaml",
        "no poster row", max_env_steps=3_000_000, defaults=True,
    ),
    "swimmer-defaults-top8": Row(
        f"Swimmer-v5, linear, 8 partitions, the spec's defaults, the best 8 of 32 pairs (topDirections 8){NO_EXACT}",
        "bench/jobs/swimmer-defaults-top8.yaml", "no poster row", max_env_steps=3_000_000, defaults=True,
    ),
    "swimmer-defaults-exact8": Row(
        "Swimmer-v5, linear, 8 partitions, the spec's defaults since 2026-12-04 (the best 8 of 32 pairs, 8 exact evals)",
        "bench/jobs/swimmer-defaults-exact8.yaml", "no poster row", max_env_steps=3_000_000, defaults=True,
    ),
    "pusher-defaults": Row(
        "Pusher-v5, H41, 23 partitions, the spec's defaults until 2026-12-05 (the best 16 of 64 pairs)", "bench/jobs/pusher-defaults.yaml",
        "poster's Pusher H41/23 (v2): mean -419, max -144", poster_max=-144, max_env_steps=2_000_000, defaults=True,
    ),
    "walker2d-defaults-p32": Row(
        "Walker2d-v5, H41, 17 partitions, the spec's defaults but 32 pairs (the best 8)", "bench/jobs/walker2d-defaults-p32.yaml",
        "no poster row", max_env_steps=3_000_000, defaults=True,
    ),
    "pusher-defaults-p32": Row(
        "Pusher-v5, H41, 23 partitions, the spec's defaults but 32 pairs (the best 8)", "bench/jobs/pusher-defaults-p32.yaml",
        "poster's Pusher H41/23 (v2): mean -419, max -144", poster_max=-144, max_env_steps=2_000_000, defaults=True,
    ),
    "walker2d-linear-defaults": Row(
        "Walker2d-v5, dense linear, the spec's defaults (ARS V2-t, 8 exact evals)", "bench/jobs/walker2d-linear-defaults.yaml",
        "no poster row", max_env_steps=3_000_000, defaults=True,
    ),
    "walker2d-linear-defaults-noexact": Row(
        f"Walker2d-v5, dense linear, the spec's defaults{NO_EXACT}", "bench/jobs/walker2d-linear-defaults-noexact.yaml",
        "no poster row", max_env_steps=3_000_000, defaults=True,
    ),
    "reacher-defaults": Row(
        f"Reacher-v5, linear, 8 partitions, the spec's defaults until 2026-12-04 (the best 8 of 32 pairs){NO_EXACT}", "bench/jobs/reacher-defaults.yaml",
        "no poster row", max_env_steps=1_000_000, defaults=True,
    ),
    "reacher-defaults-exact4": Row(
        "Reacher-v5, linear, 8 partitions, the best 8 of 32 pairs (the default until 2026-12-05), es.exactEvals 4", "bench/jobs/reacher-defaults-exact4.yaml",
        "no poster row", max_env_steps=1_000_000, defaults=True,
    ),
    "reacher-linear-defaults": Row(
        "Reacher-v5, dense linear, the spec's defaults until 2026-12-05 (the best 8 of 32 pairs)", "bench/jobs/reacher-linear-defaults.yaml",
        "no poster row", max_env_steps=1_000_000, defaults=True,
    ),
    "reacher-linear-top0": Row(
        "Reacher-v5, dense linear, the spec's defaults since 2026-12-05 (all pairs, es.topDirections 0)", "bench/jobs/reacher-linear-top0.yaml",
        "no poster row", max_env_steps=1_000_000, defaults=True,
    ),
    "ant-linear-defaults": Row(
        "Ant-v5, dense linear, the spec's defaults (rewardShift 0 since 2026-12-05)", "bench/jobs/ant-linear-defaults.yaml",
        "no poster row", max_env_steps=2_000_000, defaults=True,
    ),
    "humanoid-linear-defaults": Row(
        "Humanoid-v5, dense linear, the spec's defaults (clipActions true since 2026-12-05)", "bench/jobs/humanoid-linear-defaults.yaml",
        "no poster row", max_env_steps=1_000_000, defaults=True,
    ),
    "humanoid-linear-noclip": Row(
        "Humanoid-v5, dense linear, the spec's defaults but clipActions false (the default until 2026-12-05)",
        "bench/jobs/humanoid-linear-noclip.yaml", "no poster row", max_env_steps=1_000_000, defaults=True,
    ),
    "humanoid-h41-17-defaults": Row(
        "Humanoid-v5, H41, 17 partitions, the spec's defaults", "bench/jobs/humanoid-h41-17-defaults.yaml",
        "no poster row", max_env_steps=1_000_000, defaults=True,
    ),
    "walker2d-defaults-init01": Row(
        f"Walker2d-v5, H41, 17 partitions, the spec's defaults but {INIT01}", "bench/jobs/walker2d-defaults-init01.yaml",
        "no poster row", max_env_steps=3_000_000, defaults=True,
    ),
    "halfcheetah-ars-linear": Row(
        "HalfCheetah-v5, dense linear, ARS V2-t: episodes to 3430", "manifests/examples/halfcheetah-ars-linear.yaml",
        "ARS V2-t: 1,707 episodes (HalfCheetah-v1)", threshold=3430, poster_episodes=1707,
        args=("--max-episodes", "8000"),
    ),
}

#: Rows also run stepping on the best 16 of their 64 pairs (ARS V2-t top directions): job
#: bench/jobs/ROW-top16.yaml, the row's job with ``es.topDirections: 16``.
TOP16: Final = (
    "halfcheetah-h41-17", "halfcheetah-linear-17", "halfcheetah-linear-50", "hopper-h41-11", "halfcheetah-edges-40", "walker2d-defaults",
)


#: Rows also run with three trials that keep the best (spec.trials): job bench/jobs/ROW-trials3.yaml,
#: the row's best-4-of-32 job (ROW-p32-top4.yaml) with ``trials.count: 3``.
TRIALS3_OF: Final = (
    "halfcheetah-h41-17", "halfcheetah-h41h41-17", "halfcheetah-linear-17", "halfcheetah-linear-50", "hopper-h41-11", "halfcheetah-edges-40",
)


def _followed_by(rows: dict[str, Row], variants: dict[str, list[tuple[str, Callable[[Row], Row]]]]) -> dict[str, Row]:
    """``rows``, each one named in ``variants`` followed by its variants: (the variant's name, how it is made)."""
    out: dict[str, Row] = {}
    for name, row in rows.items():
        out[name] = row
        for new, make in variants.get(name, ()):
            out[new] = make(row)
    return out


def _top16(name: str, title: str = ", the best 16 of 64 pairs (topDirections 16)") -> Callable[[Row], Row]:
    return lambda r: dataclasses.replace(r, title=f"{r.title.removesuffix(ALL_PAIRS)}{title}", job=f"bench/jobs/{name}-top16.yaml", compare=None)


def _changed(name: str, suffix: str, change: str) -> Callable[[Row], Row]:
    """The row with one change: its title says it, its job is bench/jobs/NAME-SUFFIX.yaml, no comparison-table place."""
    return lambda r: dataclasses.replace(r, title=f"{r.title}, {change}", job=f"bench/jobs/{name}-{suffix}.yaml", compare=None)


def _trials3(name: str) -> Callable[[Row], Row]: return _changed(name, "trials3", TRIALS3)


#: The comparison table at the chromatic row's best recipe, the weights at 0.1 (the table
#: "p32-top4-init01"): the init01 variants in it, with their place (Row.compare).
INIT01_COMPARED: Final = {
    f"halfcheetah-{name}-init01": ("HalfCheetah-v5", arch) for name, arch in (
        ("h41-17-p32-top4", "chromatic"),
        ("edges-40-p32-top4-residual", "masked (40 edges, with direct observation-to-action edges)"),
        ("h41-toeplitz-p32-top4", "Toeplitz"), ("h41-circulant-p32-top4", "circulant"), ("h41-dense-p32-top4", "unstructured"),
    )
}


#: Rows also run with their weights starting at 0.1 (policy.initStd): job bench/jobs/ROW-init01.yaml,
#: the row's job with ``policy.initStd: 0.1``. Those outside the comparison table, then every one in it.
INIT01_OF: Final = (
    "halfcheetah-h41h41-17-p32-top4", "hopper-h41-11-p32-top4", "hopper-h41-11-trials3", "halfcheetah-h41h41-17-trials8",
    *(name.removesuffix("-init01") for name in INIT01_COMPARED),
)


def _init01(name: str) -> Callable[[Row], Row]:
    compare = INIT01_COMPARED.get(f"{name}-init01")
    return lambda r: dataclasses.replace(
        r, title=f"{r.title}, {INIT01}", job=f"bench/jobs/{name}-init01.yaml", compare=compare,
        table="p32-top4-init01" if compare else r.table,
    )


_LR10, _EVO = "the controller at learning rate 10 (the default 40)", "the evolution controller at its defaults (population 50, mutation rate 0.05)"

#: Later one-change variants, a row's in order: (row, suffix, the change). Job bench/jobs/ROW-SUFFIX.yaml, no comparison-table place.
CHANGED: Final = (
    ("halfcheetah-linear-17-p32-top4", "lr10", _LR10),
    ("halfcheetah-linear-50-p32-top4", "lr10", f"{_LR10}; below the row's on 4 of 5 seeds"),
    ("halfcheetah-linear-17-trials3", "lr10", _LR10),
    ("swimmer-defaults-exact8", "lr10", _LR10),
    ("halfcheetah-h41h41-17-p32-top4-init01", "lr10", f"{_LR10}; stopped after 3 seeds, level with the row's"),
    ("halfcheetah-h41h41-17-p32-top4-init01", "evo", "the evolution controller (population 50, mutation rate 0.004: ~10 of 2,624 colours per child); "
     "stopped after 3 seeds, median below the row's"),
    ("halfcheetah-linear-17-p32-top4", "evo", f"{_EVO}; level with rates 40 and 10 on best, lower fresh"),
    ("halfcheetah-linear-50-p32-top4", "evo", f"{_EVO}; stopped after 3 seeds, all below the row's"),
    ("halfcheetah-edges-40-p32-top4-residual", "trials3", f"{TRIALS3}; 2 seeds"), ("halfcheetah-edges-40-p32-top4-residual", "lr10", f"{_LR10}; 1 seed"),
    ("halfcheetah-edges-40-p32-top4", "path", "searchSpace path_edges (20 whole paths or direct edges, at most 40 edges, all live); "
     "level with residual_edges on 4 seeds, narrower"),
)


#: The top-16 variants (no comparison-table place), the trials of the best-4-of-32 variants, the
#: initial weights at 0.1, then the later one-change variants: each layer's variants follow their rows.
ROWS: Final[dict[str, Row]] = functools.reduce(
    _followed_by,
    (
        {n: [(f"{n}-top16", _top16(n))] for n in TOP16},
        {f"{n}-p32-top4": [(f"{n}-trials3", _trials3(n))] for n in TRIALS3_OF},
        {n: [(f"{n}-init01", _init01(n))] for n in INIT01_OF},
        {n: [(f"{n}-{s}", _changed(n, s, c)) for m, s, c in CHANGED if m == n] for n, _, _ in CHANGED},
    ),
    _ROWS,
)
