"""bench/scale.py end to end, small: the real aggregator process and simulated workers on both
transports, each entry complete and the objective improved."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def test_both_transports_train_through_real_iterations(bench_line: Callable[..., dict[str, Any]]) -> None:
    line = bench_line("scale.py", "--workers", "20", "--iterations", "3", "--slowdown", "1", "--transport", "stream,unary")
    assert line["bench"] == "scale"
    assert [s["transport"] for s in line["scales"]] == ["stream", "unary"]
    for s in line["scales"]:
        assert "error" not in s, s
        assert s["workers"] == 20 and s["perturbations"] == 160
        assert s["phase"] == "Succeeded" and s["worker_errors"] == {}
        assert s["objective_improved"] is True
        assert 0 < s["efficiency"] <= 1 and s["exchange_calls_per_iteration"] >= 20
