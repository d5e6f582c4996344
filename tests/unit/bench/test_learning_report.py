"""bench/learning_report.py: the learning page and its figures come from the runs' JSON lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import learning_report, learning_rows


def _run(row: str, seed: int, best: float, fresh: float, curve: list[tuple[int, float | None]], root: Path) -> None:
    folder = root / row
    folder.mkdir(parents=True, exist_ok=True)
    line: dict[str, Any] = {
        "row": row, "task": "Swimmer-v5", "policy": "linear", "topology": "partition", "controller": "evolution",
        "seed": seed, "trainable_params": 10, "dense_params": 18, "compression": 0.4444, "episodes": 3000,
        "env_steps": 3_000_000, "best_reward": best, "best_eval_reward": best, "eval_episodes": 100,
        "eval_reward": fresh, "episodes_to_threshold": None, "wall_s": 1.0, "commit": "abc1234",
    }
    (folder / f"seed{seed}.json").write_text(json.dumps(line) + "\n")
    points = [{"iteration": i, "env_steps": s, "episodes": s // 1000, "eval": e} for i, (s, e) in enumerate(curve)]
    (folder / f"seed{seed}.curve.jsonl").write_text("".join(json.dumps(p) + "\n" for p in points))


def test_rows_get_their_medians_figures_and_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(learning_report, "RESULTS", tmp_path / "runs")
    monkeypatch.setattr(learning_report, "IMG", tmp_path / "img")
    for seed, (best, fresh) in enumerate([(300.0, 290.0), (360.0, 355.0), (370.0, 200.0)]):
        _run("swimmer-linear-8", seed, best, fresh, [(1000, None), (2000, best / 2), (4000, best)], tmp_path / "runs")
    page = learning_report.render(draw=True)
    summary = next(ln for ln in page.splitlines() if ln.startswith("| [Swimmer"))
    assert "| 3 | 360 | 370 | 290 | 10 / 18 (44%) | max 365 |" in summary
    assert "1 of 3 seeds reached the poster's maximum of 365." in page
    assert "![Swimmer-v5, linear, 8 partitions, all pairs (topDirections 0): reward against env steps](img/learning-swimmer-linear-8.png)" in page
    assert (tmp_path / "img" / "learning-swimmer-linear-8.png").stat().st_size > 10_000
    assert page.count('"row": "swimmer-linear-8"') == 3
    others = [ln for ln in page.splitlines() if ln.startswith("| [") and "Swimmer" not in ln]
    assert others and all("not run yet" in ln for ln in others)


def test_the_comparison_table_gives_each_architecture_its_weights_and_compression(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(learning_report, "RESULTS", tmp_path / "runs")
    _run("hopper-h41-toeplitz", 0, 1200.0, 1100.0, [], tmp_path / "runs")
    path = tmp_path / "runs" / "hopper-h41-toeplitz" / "seed0.json"
    line = json.loads(path.read_text())
    path.write_text(json.dumps({**line, "trainable_params": 138, "dense_params": 618, "compression": 0.7767}))
    page = learning_report.render(draw=False)
    assert "| [Toeplitz](#hopper-h41-toeplitz) | 1 | 1,200 | 1,100 | 94 | 138 / 618 | 78% | 2,749 |" in page
    assert "| [circulant](#hopper-h41-circulant) | 0 | not run yet | | | | | 2,680 |" in page
    assert "| [circulant](#hopper-h41-circulant-p32-top4) | 0 | not run yet | | | | | 2,680 |" in page
    for table in learning_report.COMPARISONS:
        places = [row.compare for row in learning_rows.ROWS.values() if row.compare and row.table == table]
        assert places, f"{table}: no row is in the table"
        for task in {task for task, _ in places}:
            archs = sorted(arch.split()[0] for t, arch in places if t == task)
            assert archs == sorted(learning_report.POSTER_COMPARISON[task]), f"{table}, {task}: one row per architecture of the poster's"
    hopper = page[page.index("The same, every architecture at the best 4 of 32 pairs"):]
    hopper = hopper[hopper.index("**Hopper-v5**"):]
    order = [hopper.index(f"| [{arch}") for arch in ("chromatic", "masked", "Toeplitz", "circulant", "unstructured")]
    assert order == sorted(order), "the poster's order"


def test_a_comparison_table_with_two_architectures_run_comes_with_its_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(learning_report, "RESULTS", tmp_path / "runs")
    monkeypatch.setattr(learning_report, "IMG", tmp_path / "img")
    _run("hopper-h41-toeplitz-p32-top4", 0, 1200.0, 1100.0, [], tmp_path / "runs")
    page = learning_report.render(draw=True)
    assert "comparison-p32-top4-hopper-v5.png" not in page, "one architecture is no comparison"
    for seed, best in enumerate([900.0, 1500.0]):
        _run("hopper-h41-dense-p32-top4", seed, best, best, [], tmp_path / "runs")
    page = learning_report.render(draw=True)
    figure = tmp_path / "img" / "comparison-p32-top4-hopper-v5.png"
    assert "![Hopper-v5, the best 4 of 32 pairs: median best against weight params](img/comparison-p32-top4-hopper-v5.png)" in page
    assert figure.stat().st_size > 10_000
    assert not (tmp_path / "img" / "comparison-defaults-hopper-v5.png").exists(), "no run of that table's rows"
    assert learning_report.render(draw=False) == page, "the page without drawing names the figures drawn"


def test_the_ars_row_reports_episodes_to_the_threshold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(learning_report, "RESULTS", tmp_path / "runs")
    for seed, hit in enumerate([2944, None, 3328]):
        _run("halfcheetah-ars-linear", seed, 3500.0, 3400.0, [], tmp_path / "runs")
        path = tmp_path / "runs" / "halfcheetah-ars-linear" / f"seed{seed}.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "episodes_to_threshold": hit}))
    page = learning_report.render(draw=False)
    assert "median episodes 3,328, reached 2/3" in page


def test_the_committed_page_is_what_the_committed_runs_give() -> None:
    """bench/results/learning.md is regenerated, never edited: rerun bench/learning_report.py."""
    assert learning_report.PAGE.read_text(encoding="utf-8") == learning_report.render(draw=False)
