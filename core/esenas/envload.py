"""Building a job's Gymnasium environment, and one line that says why it could not be built.

``environment.id`` takes three forms (``esenas.spec.GYM_PATTERN``):

- ``HalfCheetah-v5`` (or ``namespace/Name-vN``): an id already in Gymnasium's registry;
- ``module:Class``: ``Class(**kwargs)`` from an importable module, wrapped in a TimeLimit (``Class``
  must subclass ``gymnasium.Env``: nothing else is called);
- ``module:Name-vN``: the module is imported so that it registers its ids, then
  ``gymnasium.make("module:Name-vN", **kwargs)``, as Gymnasium itself supports.

The aggregator (which builds the environment to learn its sizes), the workers and ``esenas run``
all build it here, so all three fail with the same :class:`EnvironmentUnavailable` line: the
field, the id, the module and class or id, the stage, and the exception's own message. A user's
package only has to be importable (installed in the image, or in the local Python).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Final, TextIO

from esenas.schema_model import FieldError
from esenas.spaces import adapt
from esenas.spec import EnvironmentSpec

FIELD: Final = "spec.environment.id"
#: Longest message quoted from a library (gymnasium, an environment's constructor).
MAX_QUOTE: Final = 300
_VERSIONED: Final = re.compile(r"(?:[\w.-]+/)?[A-Za-z][\w.-]*-v\d+")
#: Terminal colour codes, which Gymnasium puts around its warnings.
_ANSI: Final = re.compile(r"\x1b\[[0-9;]*m")
_GYMNASIUM_DIR: Final = f"{os.sep}gymnasium{os.sep}"


@dataclass(frozen=True)
class EnvRef:
    """What an ``environment.id`` names: a module (or None for Gymnasium's registry) and a class or id."""

    id: str
    module: str | None
    name: str

    @property
    def registered(self) -> bool:
        """True when ``name`` is a registry id (``Name-vN``), False when it is a class."""
        return self.module is None or bool(_VERSIONED.fullmatch(self.name))

    def describe(self) -> str:
        """``'pkg.envs:Arm' (module pkg.envs, class Arm)``, or just the quoted id for a registry id."""
        if self.module is None:
            return repr(self.id)
        return f"{self.id!r} (module {self.module}, {'id' if self.registered else 'class'} {self.name})"


def parse_env_id(env_id: str) -> EnvRef:
    module, sep, name = env_id.partition(":")
    return EnvRef(env_id, module, name) if sep else EnvRef(env_id, None, env_id)


#: The longest episode of a task that names none: a ``module:Class``, or an id registered without
#: a limit, when the spec's ``maxEpisodeSteps`` is unset.
DEFAULT_EPISODE_STEPS: Final = 1000
_LIMITS: dict[str, int] = {}


def episode_limit(env: EnvironmentSpec) -> int:
    """The longest episode of ``env``: ``maxEpisodeSteps``, or unset the limit its id is registered
    with (Reacher-v5: 50, Pusher-v5: 100), as ``gymnasium.make`` would apply it, else
    :data:`DEFAULT_EPISODE_STEPS`. Every part that bounds an episode (the TimeLimit, the native
    stepper, rollout buffers, the aggregator's result bounds) asks here, so they agree."""
    if env.max_episode_steps is not None:
        return env.max_episode_steps
    got = _LIMITS.get(env.id)
    if got is None:  # only a found limit is kept: a module imported later may still register one
        got = _registered_limit(parse_env_id(env.id))
        if got is None:
            return DEFAULT_EPISODE_STEPS
        _LIMITS[env.id] = got
    return got


def _registered_limit(ref: EnvRef) -> int | None:
    if not ref.registered:
        return None
    import gymnasium

    try:
        if ref.module is not None:
            importlib.import_module(ref.module)
        limit = gymnasium.spec(ref.name).max_episode_steps
    except Exception:  # an unknown or broken environment: make_env says why, with its reason
        return None
    return int(limit) if limit else None


class EnvironmentUnavailable(Exception):
    """The environment could not be imported or built. ``str()`` is the one-line reason that the
    aggregator writes as its termination message and ``esenas run`` prints."""

    def __init__(self, error: FieldError) -> None:
        super().__init__(str(error))
        self.error = error


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, cut to :data:`MAX_QUOTE` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 3] + "..."


_UNEXPECTED_KWARG: Final = re.compile(r"unexpected keyword argument '(\w+)'")


def _fail(ref: EnvRef, stage: str, exc: BaseException, kwargs: dict[str, Any] | None = None) -> EnvironmentUnavailable:
    """One line on ``FIELD``, or on the kwarg the constructor does not take, where that is the cause."""
    field = FIELD
    unexpected = _UNEXPECTED_KWARG.search(str(exc)) if isinstance(exc, TypeError) else None
    if unexpected and unexpected.group(1) in (kwargs or {}):
        field = f"spec.environment.kwargs.{unexpected.group(1)}"
    return EnvironmentUnavailable(FieldError(field, f"environment {ref.describe()}: {stage}: {type(exc).__name__}: {one_line(exc)}"))


def _unknown(ref: EnvRef, exc: BaseException) -> EnvironmentUnavailable:
    hint = "" if ref.module else " (use module:Class or module:Name-vN for your own environments)"
    where = f"environment {ref.describe()}: not registered by module {ref.module}" if ref.module else f"unknown environment {ref.id!r}"
    return EnvironmentUnavailable(FieldError(FIELD, f"{where}: {one_line(exc)}{hint}"))


def make_env(env: EnvironmentSpec) -> Any:
    """The environment of ``env``, limited to :func:`episode_limit`; raises EnvironmentUnavailable.

    Its spaces are flat float vectors (:mod:`esenas.spaces`: Discrete actions become one score per
    action, Discrete or Tuple observations one-hot vectors); an action space that cannot be made
    so raises SpecError.

    The edge of user code: an environment's module or constructor may raise anything, and what a
    person (or the operator's Failed condition) needs is one line about it, not a traceback from
    inside gymnasium. The original exception stays chained (``__cause__``) for the logs.
    """
    import gymnasium
    import gymnasium.error

    ref = parse_env_id(env.id)
    kwargs = dict(env.kwargs)
    if ref.module is not None:
        try:
            module = importlib.import_module(ref.module)
        except Exception as exc:
            raise _fail(ref, f"cannot import module {ref.module}", exc) from exc
        if not ref.registered:
            try:
                cls = getattr(module, ref.name)
            except AttributeError as exc:
                raise _fail(ref, f"module {ref.module} has no class {ref.name}", exc) from exc
            if not (isinstance(cls, type) and issubclass(cls, gymnasium.Env)):
                # never call what is not an environment class: ``os:system`` with kwargs would run
                # a command wherever the job is checked (the aggregator, ``esenas run``)
                got = f"the class {cls.__qualname__}" if isinstance(cls, type) else f"a {type(cls).__name__}"
                raise EnvironmentUnavailable(FieldError(FIELD, f"environment {ref.describe()}: {ref.module}.{ref.name} must be a "
                                                               f"gymnasium.Env subclass, got {got}"))
            try:
                instance = cls(**kwargs)
            except Exception as exc:
                raise _fail(ref, f"{ref.name}(**kwargs) failed", exc, kwargs) from exc
            from gymnasium.wrappers import TimeLimit

            _check_spaces(ref, instance)
            return adapt(TimeLimit(instance, max_episode_steps=episode_limit(env)), env.id)
    try:
        made = gymnasium.make(env.id, max_episode_steps=episode_limit(env), **kwargs)
    except (gymnasium.error.UnregisteredEnv, gymnasium.error.DeprecatedEnv) as exc:
        raise _unknown(ref, exc) from exc
    except Exception as exc:
        if ref.module is not None and "No registered env with id" in str(exc):
            raise _unknown(ref, exc) from exc
        raise _fail(ref, "cannot build it", exc, kwargs) from exc
    _check_spaces(ref, made)
    return adapt(made, env.id)


def _check_spaces(ref: EnvRef, env: Any) -> None:
    """One line where ``env`` lacks a Gymnasium observation or action space, not an AttributeError."""
    from gymnasium.spaces import Space

    for name in ("observation_space", "action_space"):
        space = getattr(env, name, None)
        if not isinstance(space, Space):
            env.close()
            got = "none" if space is None else f"a {type(space).__name__}"
            raise EnvironmentUnavailable(FieldError(FIELD, f"environment {ref.describe()}: its {name} must be a "
                                                           f"gymnasium.spaces.Space, got {got}"))


def first_step(e: Any, env: EnvironmentSpec) -> None:
    """Reset ``e`` and take one step with the centre of its action space, as a rollout will.

    Some environments build but fail only when stepped: a kwarg of the wrong type (Pendulum-v1's
    ``g: "heavy"``), a missing asset, a bug in a user's ``step``. Found here, before any worker
    starts, it is one line about the spec instead of a traceback from the first rollout; an
    observation of another size than the observation space is refused the same way.
    """
    import numpy as np

    ref = parse_env_id(env.id)
    stage = "its first reset and step failed" + (f" (kwargs {dict(env.kwargs)})" if env.kwargs else "")
    try:
        obs, _ = e.reset(seed=0)
        expected = int(np.prod(e.observation_space.shape))
        space = e.action_space
        centre = np.clip(np.zeros(space.shape), space.low, space.high).astype(space.dtype)
        obs2 = e.step(centre)[0]
    except Exception as exc:
        raise _fail(ref, stage, exc) from exc
    for name, o in (("reset", obs), ("step", obs2)):
        size = np.asarray(o).size
        if size != expected:
            msg = f"{name}() returned {size} observation numbers, its observation_space has {expected}"
            raise EnvironmentUnavailable(FieldError(FIELD, f"environment {ref.describe()}: {msg}"))


def tidy_gymnasium_warnings() -> None:
    """Show Gymnasium's warnings as one plain line each, once per process.

    Gymnasium colours its warnings and Python adds the file, the line and its source, so an
    outdated id (``Reacher-v4``) printed three lines of noise before the job's first line. After
    this, it is ``warning: gymnasium: The environment Reacher-v4 is out of date. ...``. Other
    warnings are shown as before. The entry points (``esenas``, the aggregator, the worker) call it.
    """
    previous = warnings.showwarning
    if getattr(previous, "tidies_gymnasium", False):
        return
    seen: set[str] = set()

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        if _GYMNASIUM_DIR not in filename:
            previous(message, category, filename, lineno, file, line)
            return
        text = " ".join(_ANSI.sub("", str(message)).split()).removeprefix("WARN: ")
        if text not in seen:
            seen.add(text)
            print(f"warning: gymnasium: {text}", file=file or sys.stderr)

    show.tidies_gymnasium = True  # type: ignore[attr-defined]
    warnings.showwarning = show
