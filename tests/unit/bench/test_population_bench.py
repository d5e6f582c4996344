"""bench/population.py end to end at small sizes: every part timed, growth and per-pair costs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PARTS = {
    "ask", "topology_prefetch_during_iteration", "topology_payload", "prefetch_during_iteration",
    "feedback_during_iteration", "tell", "normaliser_merge", "checkpoint",
}


def test_the_population_bench_times_each_part_and_draws_topologies_off_the_barrier(bench_line: Callable[..., dict[str, Any]]) -> None:
    line = bench_line("population.py", "--pairs", "200,1000", "--iterations", "2")
    assert line["bench"] == "population" and line["controller"] == "policy_gradient"
    assert [row["pairs"] for row in line["sizes"]] == [200, 1000]
    for row in line["sizes"]:
        assert {f"{p}_s" for p in PARTS} <= row.keys()
        assert row["topology_prefetch_during_iteration_s"] > 0  # the sampled topologies are drawn here
        assert row["feedback_during_iteration_s"] > 0  # and the controller's feedback summed (after iteration 0)
        assert row["checkpoint_bytes"] > 0
    assert set(line["us_per_pair_at_largest"]) == PARTS
    assert line["history"]["history_entries"] <= line["history"]["max_history"]
    assert line["settled"] is False and all(row["controller_entropy"] > 2.0 for row in line["sizes"])  # near ln 17


def test_settled_starts_from_a_concentrated_controller(bench_line: Callable[..., dict[str, Any]]) -> None:
    line = bench_line("population.py", "--pairs", "200", "--iterations", "2", "--settled")
    assert line["settled"] is True
    assert 0 < line["sizes"][0]["controller_entropy"] < 0.2  # ~0.05 nats per decision, as a run's after ~10 iterations
