"""Problems printed for people: one line each, never a traceback; bad specs exit with code 2."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Final

from esenas.spec import EnvironmentSpec, FieldError, Job, SpecError, check_dimensions, load_job

EXIT_BAD_SPEC: Final = 2
#: Exit code of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED: Final = 130
#: Longest message quoted from a library (gymnasium, an environment's constructor).
MAX_QUOTE: Final = 300


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


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, cut to :data:`MAX_QUOTE` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 3] + "..."


def environment_problem(env_id: str, exc: BaseException) -> FieldError:
    """Why ``env_id`` could not be built, as the operator would say it: the field and one line."""
    import gymnasium.error

    field = "spec.environment.id"
    if isinstance(exc, gymnasium.error.UnregisteredEnv | gymnasium.error.DeprecatedEnv):
        return FieldError(field, f"unknown environment {env_id!r}: {one_line(exc)} "
                                 "(use module:Class or namespace/Name-vN for custom environments)")
    if ":" in env_id and isinstance(exc, ImportError | AttributeError):
        return FieldError(field, f"cannot load {env_id!r}: {type(exc).__name__}: {one_line(exc)}")
    return FieldError(field, f"cannot build environment {env_id!r}: {type(exc).__name__}: {one_line(exc)}")


def environment_dims(env: EnvironmentSpec) -> tuple[int, int] | FieldError:
    """The task's (obs_dim, act_dim), or why it cannot be built."""
    from esenas.rollout import env_dims  # imports gymnasium: only once the spec is known good

    try:
        return env_dims(env)
    except SpecError as exc:  # already about the spec (a discrete action space): say it as it is
        return exc.errors[0]
    # The edge of the CLI: an environment's constructor may raise anything, and a person
    # should read one line about their spec, not a traceback from inside gymnasium.
    except Exception as exc:
        return environment_problem(env.id, exc)


def load_checked_job(source: str) -> tuple[Job, int, int] | int:
    """The job and its environment's (obs_dim, act_dim), or the exit code after reporting every
    bad field, including the ones only the environment reveals (an unknown id, its sizes)."""
    try:
        job = load_job(source)
    except SpecError as exc:
        return report_bad_spec(source, exc.errors)
    dims = environment_dims(job.spec.environment)
    if isinstance(dims, FieldError):
        return report_bad_spec(source, [dims])
    obs_dim, act_dim = dims
    if errors := check_dimensions(job.spec, obs_dim, act_dim):
        return report_bad_spec(source, errors)
    return job, obs_dim, act_dim
