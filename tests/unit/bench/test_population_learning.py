"""bench/population_learning.py: iterations to a reward, 1,024 pairs against 64, from the saved curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import population_learning as pl


def _seed(folder: Path, name: str, seed: int, evals: list[float | None]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps({"seed": seed, "best_reward": max(e or 0 for e in evals)}) + "\n")
    curve = [{"iteration": i, "eval": e} for i, e in enumerate(evals)]
    (folder / f"{name}.curve.jsonl").write_text("".join(json.dumps(p) + "\n" for p in curve))


def test_first_iteration_and_a_median_that_counts_seeds_that_never_got_there() -> None:
    curve = [{"iteration": 0, "eval": None}, {"iteration": 1, "eval": 900.0}, {"iteration": 2, "eval": 1500.0}]
    assert pl.first_iteration(curve, 1000) == 2
    assert pl.first_iteration(curve, 1500) == 2
    assert pl.first_iteration(curve, 2000) is None
    assert pl.median_iterations([3, None, 5]) == 5
    assert pl.median_iterations([3, None, None]) == float("inf")


def test_page_compares_iterations_and_never_turns_not_reached_into_a_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pl, "IMG", tmp_path / "img" / "population-learning.png")
    small, big = tmp_path / "small", tmp_path / "big"
    for seed, evals in enumerate([[0.0, 500.0, 1200.0, 1600.0, 2600.0], [0.0, 100.0, 200.0, 1100.0, 1200.0], [0.0] * 5]):
        _seed(small, f"seed{seed}", seed, evals)
    for seed, evals in enumerate([[0.0, 1600.0, 2600.0], [0.0, 1100.0, 2100.0, 2400.0], [0.0, 900.0, 1000.0, 2700.0]]):
        _seed(big, f"lr100-seed{seed}", seed, evals)
    runs_small, runs_big = pl.load(small), pl.load(big, "lr100-")
    assert [r["seed"] for r in runs_big] == [0, 1, 2] and len(runs_big[1]["_curve"]) == 4
    pl._figure(runs_small, runs_big)
    _seed(big, "step4x-seed0", 0, [0.0, 1200.0])
    assert pl.variants(big) == ["lr100", "step4x"]
    others = {"step4x": pl.load(big, "step4x-")}
    control = tmp_path / "control"
    _seed(control, "seed0", 0, [0.0, 0.0, 1100.0, 2600.0])
    text, line = pl.render(runs_small, runs_big, "lr100", others, pl.load(control))
    assert (tmp_path / "img" / "population-learning.png").stat().st_size > 10_000
    s, b = line["pairs"]["64"], line["pairs"]["1024"]
    assert s["1000"] == {"iterations": [2, 3, None], "median": 3} and b["1000"] == {"iterations": [1, 1, 2], "median": 1}
    # 64 pairs: one seed of three reaches 2,500, so the median is not reached; the ratio is a lower
    # bound from the 64-pair runs' last iteration (4) over the 1,024-pair median (3)
    assert s["2500"]["median"] is None and b["2500"] == {"iterations": [2, None, 3], "median": 3}
    assert line["ratio_at_2500"] == "> 1.3"
    assert "| 1,000 | 3 (2, 3, -) | 1 (1, 1, 2) | 3.0 |" in text
    assert "| 2,500 | not reached (4, -, -) | 3 (2, -, 3) | > 1.3 |" in text
    assert "(`bench/jobs/halfcheetah-h41-17-pop1024.yaml`, variant `lr100`" in text
    # another variant gets its own row, with its job file named by convention, and no ratio
    assert "| `step4x` (`bench/jobs/halfcheetah-h41-17-pop1024-step4x.yaml`) | 0 | 1 (1) | not reached (-) |" in text
    # the 64-pair control with the same selection, beside both
    assert line["control_64_top16"]["2500"] == {"iterations": [3], "median": 3}
    assert "| 2,500 | not reached (4, -, -) | 3 (3) | 3 (2, -, 3) |" in text


def test_variant_jobs_exist() -> None:
    for variant in pl.variants(pl.OUT):
        assert (pl.REPO / pl.job_of(variant)).is_file(), variant


def test_seeds_stopped_by_hand_are_listed_apart_from_the_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pl, "IMG", tmp_path / "img" / "population-learning.png")
    big = tmp_path / "big"
    _seed(big, "lr100-seed0", 0, [0.0, 1600.0, 2600.0])
    points = [{"iteration": 0, "eval": -58.0, "reward_mean": -507.0, "entropy": 2.79},
              {"iteration": 1, "eval": 607.0, "reward_mean": -240.0, "entropy": 2.28},
              {"iteration": 2, "eval": 182.0, "reward_mean": -192.0, "entropy": 1.76}]
    (big / "slow-seed1.curve.jsonl").write_text("".join(json.dumps(p) + "\n" for p in points))
    runs = pl.stopped(big)
    assert runs == [{"variant": "slow", "seed": 1, "iterations": 3, "best_eval": 607.0, "last_eval": 182.0,
                     "last_reward_mean": -192.0, "last_entropy": 1.76}]
    assert pl.variants(big) == ["lr100"]  # no JSON line: not a measured variant
    text, _ = pl.render(pl.load(big, "lr100-"), pl.load(big, "lr100-"), "lr100", {}, [], runs)
    assert "## Stopped early" in text
    assert "| `slow` (job file not kept; see its log) | 1 | 3 | 607 | 182 | -192 | 1.76 |" in text
    (big / "top256-seed2.curve.jsonl").write_text(json.dumps(points[0]) + "\n")  # its job file is in bench/jobs
    text, _ = pl.render(pl.load(big, "lr100-"), pl.load(big, "lr100-"), "lr100", {}, [], pl.stopped(big))
    assert "| `top256` (`bench/jobs/halfcheetah-h41-17-pop1024-top256.yaml`) | 2 | 1 | -58 | -58 | -507 | 2.79 |" in text
