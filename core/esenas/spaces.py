"""What a policy sees and emits, for any Gymnasium task: a flat float vector either way.

ES-ENAS policies map an observation vector to an action vector. Tasks whose spaces are not flat
continuous Boxes are adapted once, where the environment is built (``esenas.envload.make_env``),
so that rollouts, videos, fresh episodes and the exported policy all see the same shapes:

- **Discrete(n) actions** (CartPole-v1, Acrobot-v1): the policy emits one score per action and
  the task gets the argmax (plus the space's ``start``), as in the ES literature's discrete tasks
  (Salimans et al. 2017, Atari). The adapted space is ``Box(-inf, inf, (n,))``, so no clipping
  touches the scores.
- **MultiDiscrete(nvec)**: one block of scores per sub-action, each argmaxed.
- **MultiBinary(n)**: one score per bit; a bit is 1 where its score is positive.
- **Box actions of more than one dimension**: the flat vector is reshaped to the space's shape.
- **Observations that are not a flat Box** (Discrete, Tuple, Dict, images): flattened with
  Gymnasium's own ``FlattenObservation`` (a Discrete becomes one-hot).

Spaces that cannot be driven this way (Tuple, Dict or Text actions) are refused with the field
and the reason (``spec.environment.id``), before anything runs.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from esenas.schema_model import FieldError
from esenas.spec import SpecError, unsupported_actions
from esenas.spec_checks import MAX_ACT_DIM, MAX_OBS_DIM


def _decoder(space: Any) -> tuple[Any, Any, str] | None:
    """(the policy's flat Box, its output -> the task's action, how in words) for a space that needs adapting;
    None for a flat float Box, which the policy drives as it is; raises TypeError for one it
    cannot drive."""
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        if not np.issubdtype(space.dtype, np.floating):
            raise TypeError(f"{space} (an integer Box)")
        if len(space.shape) == 1:
            return None
        shape, dtype = space.shape, space.dtype
        low, high = (b.ravel().astype(np.float64) for b in (space.low, space.high))
        flat = spaces.Box(low, high, dtype=np.float64)  # MLPs clip to it, as to a flat Box
        return flat, lambda a: np.asarray(a, dtype).reshape(shape), f"the output reshaped to {shape}"
    if isinstance(space, spaces.Discrete):
        start = int(space.start)
        how = f"the argmax of the {space.n} scores" + (f" plus {start}" if start else "") + f" ({space})"
        return _scores(int(space.n)), lambda a: np.int64(int(np.argmax(a)) + start), how
    if isinstance(space, spaces.MultiDiscrete):
        if space.nvec.ndim != 1:
            raise TypeError(f"{space} (a MultiDiscrete of more than one dimension)")
        sizes = [int(n) for n in space.nvec]
        cuts = np.cumsum(sizes)[:-1]
        offset = np.asarray(space.start, np.int64)
        how = f"the argmax of each block of {sizes} scores ({space})"
        return _scores(sum(sizes)), lambda a: np.fromiter((int(np.argmax(p)) for p in np.split(np.asarray(a), cuts)), np.int64) + offset, how
    if isinstance(space, spaces.MultiBinary):
        shape = space.shape
        how = f"1 where a score is positive, else 0 ({space})"
        return _scores(int(np.prod(shape))), lambda a: (np.asarray(a) > 0).astype(np.int8).reshape(shape), how
    raise TypeError(str(space))


def _size_problem(action_space: Any, obs_space: Any, flat_obs: bool) -> str | None:
    """Why the policy's flat output or input would be empty or too big, or None; decided from the
    spaces' sizes before anything of that size is allocated (a Discrete(10**10) observation
    one-hot, or the bounds of 10**8 action scores)."""
    from gymnasium import spaces

    act = action_space
    if isinstance(act, spaces.Discrete):
        n_act: int | None = int(act.n)
    elif isinstance(act, spaces.MultiDiscrete):
        n_act = int(sum(int(n) for n in np.ravel(act.nvec)))
    elif isinstance(act, spaces.Box | spaces.MultiBinary):
        n_act = math.prod(int(n) for n in act.shape)
    else:
        n_act = None  # refused by _decoder, with the reason
    if n_act is not None and not 1 <= n_act <= MAX_ACT_DIM:
        return f"has an action space of {n_act:,} numbers ({act}): at least 1 and at most {MAX_ACT_DIM:,} are supported"
    if not flat_obs:
        try:
            n_obs = int(spaces.flatdim(obs_space))
        except (ValueError, TypeError, NotImplementedError) as exc:
            return f"has an observation space that cannot be flattened to a vector ({obs_space}): {exc}"
        if n_obs > MAX_OBS_DIM:
            return f"has an observation space of {n_obs:,} numbers once flattened ({obs_space}): at most {MAX_OBS_DIM:,} are supported"
    return None


def _scores(n: int) -> Any:
    """n unbounded scores: nothing clips them (esenas.rollout.action_bounds)."""
    from gymnasium import spaces

    return spaces.Box(-np.inf, np.inf, (n,), np.float64)


def adapt(env: Any, env_id: str) -> Any:
    """``env`` with a flat float observation and a flat float action Box (see the module doc);
    ``env`` itself when both are already so. Raises SpecError for an action space it cannot drive."""
    from gymnasium import spaces
    from gymnasium.wrappers import FlattenObservation

    obs_space = env.observation_space
    flat_obs = isinstance(obs_space, spaces.Box) and len(obs_space.shape) == 1
    if (problem := _size_problem(env.action_space, obs_space, flat_obs)) is not None:
        env.close()
        raise SpecError([FieldError("spec.environment.id", f"{env_id!r} {problem}")])
    try:
        decode = _decoder(env.action_space)
    except TypeError as exc:
        env.close()
        raise SpecError([unsupported_actions(env_id, str(exc))]) from None
    if not flat_obs:
        env = FlattenObservation(env)
    if decode is None:
        return env
    return _scores_to_action()(env, *decode)


@functools.cache
def _scores_to_action() -> type:
    import gymnasium

    class ScoresToAction(gymnasium.ActionWrapper):
        """The policy's flat output in, the task's own action out."""

        def __init__(self, inner: Any, flat: Any, to_task: Any, how: str) -> None:
            super().__init__(inner)
            self.action_space = flat
            self._to_task = to_task
            self.how = how

        def action(self, action: npt.ArrayLike) -> Any:
            return self._to_task(action)

    return ScoresToAction


def action_decoding(env: Any) -> str | None:
    """How the policy's output becomes the task's action, in words ("the argmax of the 2 scores
    (Discrete(2))"), for an environment :func:`adapt` wrapped; None when the output is the action."""
    import gymnasium

    while isinstance(env, gymnasium.Wrapper):
        if isinstance(env, _scores_to_action()):
            return str(env.get_wrapper_attr("how"))
        env = env.env
    return None


def observation_encoding(env: Any) -> str | None:
    """How the task's observation becomes the policy's input, in words, for an environment whose
    observation :func:`adapt` flattened (a Dict, Tuple, Discrete or image space); None when the
    observation is the input as it is."""
    import gymnasium
    from gymnasium.wrappers import FlattenObservation

    while isinstance(env, gymnasium.Wrapper):
        if isinstance(env, FlattenObservation):
            return f"gymnasium.spaces.flatten(space, observation) of its {env.env.observation_space}"
        env = env.env
    return None
