"""The progress bar of ``esenas run``: the budget that will stop the job, and a smoothed steps/s.

A job stops at the first of its budgets to run out (``spec.stopping``: iterations, env steps,
episodes, a deadline), so the bar follows the one that is furthest along. An ES iteration's
env steps vary with episode lengths, so the rate is an exponential moving average over time.
The step total only moves when an iteration completes, so the rate is measured between moves
and held in between (polling an unchanged total would decay it to a saw-tooth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from esenas.spec import StoppingSpec

#: Time constant of the steps/s average, in seconds.
RATE_TAU_S: Final = 10.0


@dataclass(frozen=True)
class Budget:
    """One stopping budget: how much of it is used."""

    name: str  # as the bar labels it
    used: float
    total: float

    @property
    def label(self) -> str:
        """E.g. ``1,860/3,000 env steps``."""
        return f"{int(self.used):,}/{int(self.total):,} {self.name}"

    @property
    def fraction(self) -> float:
        return min(1.0, self.used / self.total) if self.total > 0 else 1.0


def binding_budget(s: StoppingSpec, iteration: int, env_steps: int, episodes: int, elapsed_s: float) -> Budget:
    """The budget closest to stopping the job; on a tie (at the start) the one set most deliberately,
    since ``maxIterations`` always has a default and the others are only there when asked for."""
    budgets = []
    if s.max_env_steps is not None:
        budgets.append(Budget("env steps", env_steps, s.max_env_steps))
    if s.max_episodes is not None:
        budgets.append(Budget("episodes", episodes, s.max_episodes))
    if s.deadline_seconds is not None:
        budgets.append(Budget("deadline s", math.floor(elapsed_s), s.deadline_seconds))
    budgets.append(Budget("iterations", iteration, s.max_iterations))
    return max(budgets, key=lambda b: b.fraction)  # max keeps the first of equals


class SmoothedRate:
    """Env steps per second, averaged over about :data:`RATE_TAU_S` seconds."""

    def __init__(self, tau_s: float = RATE_TAU_S) -> None:
        self.tau_s = tau_s
        self.rate: float | None = None
        self._last: tuple[float, float] | None = None

    def update(self, steps: float, now: float) -> float | None:
        """Feed the running total at time ``now``; the averaged rate (None until the total moves)."""
        if self._last is not None and steps == self._last[0]:
            return self.rate  # between two iterations' totals: nothing new to average
        if self._last is not None:
            dt = now - self._last[1]
            if dt <= 0:
                return self.rate
            instant = (steps - self._last[0]) / dt
            # weight by elapsed time, so the average does not depend on how often it is polled
            alpha = 1.0 - math.exp(-dt / self.tau_s)
            self.rate = instant if self.rate is None else self.rate + alpha * (instant - self.rate)
        self._last = (steps, now)
        return self.rate


class Bar:
    """A tqdm bar over the binding budget, which may change as the run goes."""

    def __init__(self, stopping: StoppingSpec) -> None:
        from tqdm import tqdm

        self.stopping = stopping
        self.rate = SmoothedRate()
        self._trial = ""
        # the counts go in the description: tqdm's unit_scale would show 5 iterations as "5.00"
        self._bar: Any = tqdm(total=stopping.max_iterations, dynamic_ncols=True, desc="starting",
                              bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}{postfix}]")

    def update(self, *, iteration: int, env_steps: int, episodes: int, elapsed_s: float, now: float,
               best: float | None, mean: float | None, extra: str = "", trial: str = "") -> None:
        """``trial``: the trial's label (esenas.trials.Trials.label); a line marks each change."""
        if self._trial and trial != self._trial:
            self.write(f"{self._trial} ended by {env_steps:,} env steps; now {trial}")
        self._trial = trial
        b = binding_budget(self.stopping, iteration, env_steps, episodes, elapsed_s)
        rate = self.rate.update(env_steps, now)
        self._bar.set_description_str(b.label, refresh=False)
        self._bar.total = b.total
        self._bar.n = min(b.used, b.total)
        parts = [f"it {iteration}" if b.name != "iterations" else "", f"best {_fmt(best)}", f"mean {_fmt(mean)}",
                 "- steps/s" if rate is None else f"{rate:,.0f} steps/s", trial, extra]
        self._bar.set_postfix_str(" ".join(p for p in parts if p), refresh=False)
        self._bar.refresh()

    def write(self, text: str) -> None:
        self._bar.write(text)

    def close(self) -> None:
        self._bar.close()


def _fmt(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.1f}"
