"""Problems printed for people: one line each, never a traceback; bad specs exit with code 2."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Final

from esenas.envload import EnvironmentUnavailable
from esenas.spec import EnvironmentSpec, FieldError, Job, SpecError, check_dimensions, load_job

#: Exit code of a run that failed on its way (a rollout process died); it checkpointed first.
EXIT_FAILED: Final = 1
EXIT_BAD_SPEC: Final = 2
#: Exit code of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED: Final = 130


def usage_error(message: str) -> int:
    """One ``error:`` line for a bad command line or input file; returns the exit code (2)."""
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_SPEC


def report_bad_spec(source: str, errors: Sequence[FieldError]) -> int:
    """One line for one problem; a heading and one line per field for several."""
    if len(errors) == 1:
        e = errors[0]
        where = f"{source}: {e.reason}" if e.path == source else f"{source} is not a valid ESENASJob: {e}"
        print(f"error: {where}", file=sys.stderr)
        return EXIT_BAD_SPEC
    print(f"error: {source} is not a valid ESENASJob:", file=sys.stderr)
    for e in errors:
        print(f"  {e}", file=sys.stderr)
    return EXIT_BAD_SPEC


def environment_dims(env: EnvironmentSpec) -> tuple[int, int] | FieldError:
    """The task's (obs_dim, act_dim), or why it cannot be built: the same one line that the
    aggregator writes as its termination message (esenas.envload)."""
    from esenas.rollout import env_dims  # imports gymnasium: only once the spec is known good

    try:
        return env_dims(env)
    except SpecError as exc:  # already about the spec (a discrete action space): say it as it is
        return exc.errors[0]
    except EnvironmentUnavailable as exc:
        return exc.error


def load_checked_job(source: str) -> tuple[Job, int, int] | int:
    """The job and its environment's (obs_dim, act_dim), or the exit code after reporting every
    bad field, including the ones only the environment reveals (an unknown id, its sizes)."""
    try:
        job = load_job(source)
    except SpecError as exc:
        return report_bad_spec(source, exc.errors)
    from esenas.rollout import env_dims  # imports gymnasium: only once the spec is known good

    try:
        obs_dim, act_dim = env_dims(job.spec.environment)
    except SpecError as exc:  # a discrete action space
        return report_bad_spec(source, exc.errors)
    except EnvironmentUnavailable as exc:
        # Not a bad YAML file: the aggregator's own line, so that a local run and a pod's
        # termination message read the same.
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_SPEC
    if errors := check_dimensions(job.spec, obs_dim, act_dim):
        return report_bad_spec(source, errors)
    return job, obs_dim, act_dim
