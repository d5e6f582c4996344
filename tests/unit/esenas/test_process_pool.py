"""The rollout process pool: results in task order, a task's exception re-raised, and a process
that dies mid-task an error naming it, never a hang."""

from __future__ import annotations

import os
import signal
import time

import pytest
from esenas.process_pool import PastDeadline, ProcessPool, WorkerDied, unblock_stop_signals


def _init() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    unblock_stop_signals()


def _slow_square(x: int) -> int:
    time.sleep(0.01 * (x % 3))  # uneven tasks finish out of order
    return x * x


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad task {x}")
    return x


def _die_on_five(x: int) -> int:
    if x == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.01)
    return x


def test_results_come_in_task_order_across_calls() -> None:
    pool = ProcessPool(3, _slow_square, _init)
    try:
        assert pool.map(list(range(20))) == [x * x for x in range(20)]
        assert pool.map([7, 1]) == [49, 1]
        assert pool.map([]) == []
    finally:
        pool.close()


def test_a_task_exception_is_raised_in_the_parent() -> None:
    pool = ProcessPool(2, _fail_on_three, _init)
    try:
        with pytest.raises(ValueError, match="bad task 3"):
            pool.map(list(range(8)))
    finally:
        pool.close()


def test_a_process_killed_during_a_task_is_an_error_not_a_hang() -> None:
    pool = ProcessPool(2, _die_on_five, _init)
    try:
        with pytest.raises(WorkerDied, match=r"rollout process \d+ exited \(killed by SIGKILL\) during a task"):
            pool.map(list(range(10)))
    finally:
        pool.close()
    assert pool.procs == []


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_the_deadline_ends_a_map_with_tasks_still_out() -> None:
    pool = ProcessPool(2, _sleep, _init)
    try:
        assert pool.map([0.0, 0.01], deadline=time.monotonic() + 60) == [0.0, 0.01]  # in time: all results
        with pytest.raises(PastDeadline, match="4 of 4 tasks still out at the deadline"):
            pool.map([60.0] * 4, deadline=time.monotonic() + 0.2)  # would take two minutes without it
    finally:
        pool.close()  # what a caller does after PastDeadline: the tasks still out would answer later
    pool = ProcessPool(1, _sleep, _init)
    try:
        with pytest.raises(PastDeadline, match="1 of 1 tasks still out"):
            pool.map([0.0], deadline=time.monotonic() - 1)  # already past: nothing is waited for
    finally:
        pool.close()


def test_close_ends_every_process() -> None:
    pool = ProcessPool(2, _slow_square, _init)
    procs = list(pool.procs)
    assert pool.map([1, 2]) == [1, 4]
    pool.close()
    assert all(not p.is_alive() for p in procs)
    assert [p.exitcode for p in procs] == [-signal.SIGTERM, -signal.SIGTERM]
