"""A worker rolls a lease out until the environment fails, and reports that item with one line."""

from __future__ import annotations

import signal
import time

import numpy as np
from esenas.results import KIND_EXACT, KIND_PAIR, Results
from esenas_api import wire
from esenas_worker.items import roll_out


class _Evaluator:
    """Items 0, 1, ... return 1.0 each; item ``bad`` raises, or returns ``value``."""

    def __init__(self, bad: int, value: float | None = None, obs: float = 0.0) -> None:
        self.bad, self.value, self.obs, self.ran = bad, value, obs, []

    def run(self, items: np.ndarray) -> Results:
        i = int(items["index"][0])
        self.ran.append(i)
        if i == self.bad and self.value is None:
            raise ValueError("qpos went NaN\n  at the solver")
        r = self.value if i == self.bad else 1.0
        neg = r if int(items["kind"][0]) == KIND_PAIR else np.nan
        obs = np.full(1, self.obs if i == self.bad else 0.0)
        return Results(np.array([i], np.uint32), np.array([r]), np.array([neg]), np.array([10], np.uint32), 10.0, obs, obs * obs)


def _items(kinds: list[int]) -> np.ndarray:
    it = np.zeros(len(kinds), dtype=wire.WORK_DTYPE)
    it["index"] = np.arange(len(kinds))
    it["kind"] = kinds
    return it


def test_an_exception_stops_the_lease_at_that_item_and_says_where() -> None:
    ev = _Evaluator(bad=2)
    out = roll_out(ev, _items([KIND_PAIR] * 4), lambda: False, "w", "my.envs:Arm")
    assert ev.ran == [0, 1, 2] and len(out.parts) == 2 and out.failed == 2  # item 3 is left to the lease's release
    assert out.failure.startswith("environment 'my.envs:Arm': ValueError: qpos went NaN at the solver (test_items.py:")
    assert out.failure.endswith(" in run)")


def test_a_non_finite_return_is_a_failure_but_an_exact_eval_s_missing_half_is_not() -> None:
    out = roll_out(_Evaluator(bad=1, value=float("inf")), _items([KIND_EXACT, KIND_PAIR]), lambda: False, "w", "E-v0")
    assert len(out.parts) == 1 and out.failed == 1  # item 0 is an exact eval: its NaN second half is by design
    assert out.failure == "environment 'E-v0': the environment returned a non-finite return (inf)"
    clean = roll_out(_Evaluator(bad=-1), _items([KIND_EXACT, KIND_PAIR]), lambda: False, "w", "E-v0")
    assert clean.failed is None and clean.failure == "" and len(clean.parts) == 2


def test_a_stop_ends_the_lease_without_a_failure() -> None:
    ev = _Evaluator(bad=3)
    out = roll_out(ev, _items([KIND_PAIR] * 5), lambda: len(ev.ran) >= 2, "w", "E-v0")
    assert ev.ran == [0, 1] and out.failed is None


def test_a_non_finite_observation_is_a_failure() -> None:
    out = roll_out(_Evaluator(bad=0, value=1.0, obs=float("nan")), _items([KIND_PAIR]), lambda: False, "w", "E-v0")
    assert out.failed == 0 and out.failure == "environment 'E-v0': the environment returned a non-finite observation"


class _Sleeper(_Evaluator):
    def run(self, items: np.ndarray) -> Results:
        if int(items["index"][0]) == self.bad:
            while True:  # a Python-level hang
                time.sleep(0.01)
        return super().run(items)


def test_a_rollout_past_the_limit_is_reported_where_it_hung_and_the_alarm_is_cleared() -> None:
    handler = signal.getsignal(signal.SIGALRM)  # a test runner's timeout may hold SIGALRM: it gets it back
    start = time.monotonic()
    out = roll_out(_Sleeper(bad=1), _items([KIND_PAIR] * 3), lambda: False, "w", "E-v0", limit_s=0.2)
    assert out.failed == 1 and len(out.parts) == 1 and time.monotonic() - start < 5
    assert out.failure.startswith("environment 'E-v0': RolloutTimeout: one item's rollout ran past 0.2 s")
    assert "(test_items.py:" in out.failure and "in run)" in out.failure
    assert signal.getsignal(signal.SIGALRM) is handler
    if handler in (signal.SIG_DFL, None):
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # no stray alarm left behind
