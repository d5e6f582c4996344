"""Spec problems printed for people: every bad field on its own line, exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Final

from esenas.spec import FieldError, Job, SpecError, check_dimensions, load_job

EXIT_BAD_SPEC: Final = 2


def report_bad_spec(source: str, errors: Sequence[FieldError]) -> int:
    print(f"error: {source} is not a valid ESENASJob:", file=sys.stderr)
    for e in errors:
        print(f"  {e}", file=sys.stderr)
    return EXIT_BAD_SPEC


def load_checked_job(source: str) -> tuple[Job, int, int] | int:
    """The job and its environment's (obs_dim, act_dim), or the exit code after reporting every
    bad field, including the ones only the environment's sizes reveal."""
    try:
        job = load_job(source)
    except SpecError as exc:
        return report_bad_spec(source, exc.errors)
    from esenas.rollout import env_dims  # imports gymnasium: only once the spec is known good

    obs_dim, act_dim = env_dims(job.spec.environment)
    if errors := check_dimensions(job.spec, obs_dim, act_dim):
        return report_bad_spec(source, errors)
    return job, obs_dim, act_dim
