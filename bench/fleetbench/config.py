"""Settings and helpers the fleet bench's three programs share."""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

OBS_DIM: Final = 4
TOKEN: Final = "fleet-bench-token"
NOOP_METHOD: Final = "/bench.Noop/Call"
OFFERED: Final = 60_000.0  # results/s the fleet offers in total


@dataclass(frozen=True)
class FleetConfig:
    """Command-line settings every program of the bench reads (passed down, never global)."""

    script: Path  # the entry script the driver starts servers and clients with
    batch: int = 32  # results per Exchange (--batch)
    client_gc: bool = False  # --client-gc: keep the collector on in the client processes
    trace: bool = False  # --trace: metadata timestamps on every call
    acceptors: int = 0  # --acceptors: grpc.aio servers of the aggregator (0: its default)


@dataclass(frozen=True)
class ClientSpec:
    """One client process's share of the fleet and its measurement window."""

    port: str
    workers: int
    think: float  # mean seconds a simulated worker "rolls out" a batch
    go: Path  # the driver writes the start time here
    warmup: float
    measure: float
    out: Path  # the window's stats, as JSON
    seq: int = 0  # the client's number, part of its workers' ids
    noop: bool = False  # closed-loop calls to the no-op ceiling server


async def loop_lag(lags: list[float], period: float = 0.005) -> None:
    """Record how late the event loop wakes a periodic timer (ms): stalls from GC, CPU or long callbacks."""
    loop = asyncio.get_running_loop()
    while True:
        t = loop.time()
        await asyncio.sleep(period)
        lags.append((loop.time() - t - period) * 1000)


def pct(values: list[float] | np.ndarray, q: float) -> float | None:
    a = np.asarray(values, dtype=np.float64)
    return round(float(np.percentile(a, q)), 2) if a.size else None


def raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
