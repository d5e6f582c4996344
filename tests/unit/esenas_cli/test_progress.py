"""The progress bar follows the budget that will stop the job, and smooths steps/s."""

from __future__ import annotations

import pytest
from esenas.spec import StoppingSpec
from esenas_cli.progress import Bar, Budget, SmoothedRate, binding_budget


def test_iterations_when_they_are_the_only_budget() -> None:
    b = binding_budget(StoppingSpec(max_iterations=50), iteration=10, env_steps=10**6, episodes=900, elapsed_s=30)
    assert b == Budget("iterations", 10, 50)
    assert b.label == "10/50 iterations"


def test_env_steps_stop_the_job_before_the_default_iterations() -> None:
    s = StoppingSpec(max_iterations=1000, max_env_steps=200_000)
    assert binding_budget(s, 0, 0, 0, 0.0).name == "env steps"  # at the start: the budget asked for
    b = binding_budget(s, iteration=12, env_steps=150_000, episodes=400, elapsed_s=9)
    assert (b.name, b.label, b.fraction) == ("env steps", "150,000/200,000 env steps", 0.75)


def test_the_budget_furthest_along_wins() -> None:
    s = StoppingSpec(max_iterations=20, max_env_steps=10**7, max_episodes=1000, deadline_seconds=600)
    assert binding_budget(s, 15, 10**5, 100, 60).name == "iterations"
    assert binding_budget(s, 5, 10**5, 900, 60).name == "episodes"
    assert binding_budget(s, 5, 10**5, 100, 599.7) == Budget("deadline s", 599, 600)


def test_fraction_is_capped_and_survives_a_zero_budget() -> None:
    assert Budget("episodes", 1200, 1000).fraction == 1.0
    assert Budget("episodes", 0, 0).fraction == 1.0


def test_smoothed_rate_follows_a_steady_rate_and_damps_a_spike() -> None:
    r = SmoothedRate(tau_s=10.0)
    assert r.update(0, 0.0) is None
    assert r.update(1000, 1.0) == pytest.approx(1000.0)
    for t in range(2, 30):
        r.update(1000 * t, float(t))
    assert r.rate == pytest.approx(1000.0)
    spiked = r.update(1000 * 29 + 10_000, 30.0)  # one poll with ten times the steps
    assert spiked is not None and 1000.0 < spiked < 2000.0


def test_smoothing_does_not_depend_on_how_often_it_is_polled() -> None:
    fast, slow = SmoothedRate(), SmoothedRate()
    for r in (fast, slow):
        r.update(0, 0.0)
        r.update(1000, 1.0)  # 1000 steps/s for a second, then 3000 steps/s for 10 s
    for i in range(1, 41):
        fast.update(1000 + 3000 * 0.25 * i, 1.0 + 0.25 * i)
    slow.update(1000 + 30_000, 11.0)
    assert fast.rate == pytest.approx(1000 + 2000 * (1 - 2.718281828 ** -1), rel=0.02)
    assert slow.rate == pytest.approx(fast.rate, rel=0.02)


def test_a_repeated_timestamp_keeps_the_rate() -> None:
    r = SmoothedRate()
    r.update(0, 0.0)
    r.update(500, 1.0)
    assert r.update(900, 1.0) == pytest.approx(500.0)


def test_the_bar_shows_the_binding_budget_and_rate(capsys: pytest.CaptureFixture[str]) -> None:
    bar = Bar(StoppingSpec(max_iterations=1000, max_env_steps=5000))
    bar.update(iteration=1, env_steps=1000, episodes=10, elapsed_s=1.0, now=1.0, best=12.0, mean=None)
    bar.update(iteration=2, env_steps=3000, episodes=20, elapsed_s=2.0, now=2.0, best=15.5, mean=9.31)
    bar.close()
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("3,000/5,000 env steps  60%")
    assert "it 2 best 15.5 mean 9.3 2,000 steps/s" in last


def test_a_total_that_moves_once_per_iteration_gives_a_steady_rate() -> None:
    # 10,000 steps per 10 s iteration, polled every half second: the rate holds at 1,000 steps/s
    # between iterations instead of decaying towards 0 and jumping back (it once read 13,263
    # falling to 4,842 within one iteration of a 10,000 steps/s run)
    r = SmoothedRate()
    assert r.update(0, 0.0) is None
    seen = []
    for k in range(1, 121):
        t = 0.5 * k
        seen.append(r.update(10_000 * int(t // 10), t))
    rates = [x for x in seen if x is not None]
    assert seen[18] is None and len(rates) == 120 - 19  # none until the first iteration is in
    assert min(rates) == pytest.approx(1000.0) and max(rates) == pytest.approx(1000.0)
