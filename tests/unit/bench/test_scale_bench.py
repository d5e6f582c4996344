"""bench/scale.py end to end, small: the real aggregator process and simulated workers on both
transports, each entry complete and the objective improved."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


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
        assert s["pinned"] is False and s["settled"] is False
        assert s["controller_entropy_first_last"][0] > 1.0  # one step from a uniform controller (ln 17 = 2.83)


def test_settled_starts_the_aggregator_from_a_concentrated_controller(bench_line: Callable[..., dict[str, Any]]) -> None:
    line = bench_line("scale.py", "--workers", "20", "--iterations", "3", "--slowdown", "1", "--settled")
    (s,) = line["scales"]
    assert "error" not in s, s
    assert s["settled"] is True and s["phase"] == "Succeeded" and s["objective_improved"] is True
    # resumed from the settled checkpoint (~0.05 nats), not a uniform start (> 1 after one step);
    # the synthetic reward then moves it (its mode was drawn at random)
    assert 0 < s["controller_entropy_first_last"][0] < 0.2


def test_pin_puts_the_aggregator_on_the_first_cpu_relays_on_their_own_and_the_clients_on_the_rest() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("one CPU: --pin leaves processes where they are")
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
    from scale import pin

    procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) for _ in range(5)]
    try:
        pin(procs[0].pid, True, "aggregator")
        pin(procs[1].pid, True, "client")
        pin(procs[2].pid, False, "aggregator")
        pin(procs[3].pid, True, "relay", 1, 0)
        pin(procs[4].pid, True, "client", 1)
        assert os.sched_getaffinity(procs[0].pid) == {cpus[0]}
        assert os.sched_getaffinity(procs[1].pid) == set(cpus[1:])
        assert os.sched_getaffinity(procs[2].pid) == set(cpus)
        if len(cpus) >= 3:  # a CPU for the relay, and still one for the clients
            assert os.sched_getaffinity(procs[3].pid) == {cpus[1]}
            assert os.sched_getaffinity(procs[4].pid) == set(cpus[2:])
        else:  # two CPUs: the relay beside the aggregator
            assert os.sched_getaffinity(procs[3].pid) == {cpus[0]}
            assert os.sched_getaffinity(procs[4].pid) == set(cpus[1:])
    finally:
        for p in procs:
            p.kill()
            p.wait()
