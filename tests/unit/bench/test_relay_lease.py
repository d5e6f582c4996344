"""bench/relay_lease.py end to end at a small size: a real server process, real gRPC, both forms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def test_the_relay_lease_bench_measures_both_forms_and_positions_are_8_bytes_a_topology(bench_line: Callable[..., dict[str, Any]]) -> None:
    line = bench_line("relay_lease.py", "--pairs", "600", "--lease", "200", "--calls", "2", "--rounds", "1")
    assert line["bench"] == "relay_lease" and line["lease_items"] == 200
    size = line["topology_bytes_per_lease"]
    # 200 pairs, almost surely 200 distinct colourings of 943 decisions: ~950 bytes each as
    # decisions, 8 as (table index, position)
    assert size["positions"] == 8 * 200
    assert size["decisions"] > 100 * size["positions"]
    assert set(line["server_cpu_ms_per_lease"]) == {"decisions", "positions"}
