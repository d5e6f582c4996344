"""bench/grpc_floor.py end to end at a small size: five real server processes over real gRPC."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def test_the_grpc_floor_bench_measures_the_real_call_and_both_floors_at_one_reply_size(bench_line: Callable[..., dict[str, Any]]) -> None:
    line = bench_line("grpc_floor.py", "--calls", "40", "--callers", "4", "--rounds", "1", "--pairs", "600")
    assert line["bench"] == "grpc_floor" and line["items_per_lease"] == 8
    assert set(line["server_cpu_us_per_call"]) == {"exchange", "exchange_stream", "noop_unary", "noop_read", "noop_stream"}
    # a lease of 8 pairs carries 8 colourings of 943 decisions: the no-op replies copy its size
    assert line["reply_bytes"] > 8 * 900
    assert all(len(v) == 1 for v in line["server_cpu_us_per_call_all"].values())
