"""ES defaults that depend on other fields, so the CRD carries none of them and the parser
fills them in (esenas.schema_parse): by template, and the reward shift, the clip and the top
directions by task.

An mlp policy gets :data:`MLP_ES_DEFAULTS`, the settings every MLP run in
bench/results/learning.md was measured with; a linear one keeps the dataclass defaults of
esenas.spec.ESSpec, ARS V2-t's.

The survival bonus of Gymnasium's MuJoCo locomotion tasks, and the reward shift that removes it:

Hopper, Walker2d and Humanoid pay ``healthy_reward`` for every step the body has not fallen,
and end the episode when it falls. ES on the raw reward finds "stand still, fall late" long
before it finds walking (ARS, Mania et al. 2018, section 4.2, which subtracts the bonus). So
``es.rewardShift`` defaults to that bonus on these tasks: the task's own default, or
``environment.kwargs.healthy_reward`` where the job sets it. Not on a task whose episodes do not
end on a fall (``terminate_when_unhealthy: false``): its bonus is the same for every episode, and
not on balancing tasks (InvertedDoublePendulum), where staying up is the goal itself.

Not on Ant either, though it pays the same bonus: its control cost (0.5 |a|^2, 500 times
Hopper's and Walker2d's) makes every step of a shifted episode cost more than standing earns, so
ES learns to fall at once. Measured on Ant-v5 (dense linear defaults, seed 0): with the shift the
current weights' reward fell from 991 (standing) to about -20 by 1.3M steps, with or without the
contact forces in the observation, and to 21 by 0.5M with clipped actions; without it, 1,136 at
2M steps (learning-history.md).

:func:`survival_bonus` is the parser's default; :func:`survival_bonus_cel` is the same rule in
CEL, for the CRD's rule on edits (esenas.edits).

``policy.clipActions`` (:func:`clip_actions`): an mlp's actions are clipped to the action space,
a linear policy's go to MuJoCo raw, as in ARS (MuJoCo clamps the control, the control cost sees
the raw action; HalfCheetah ARS V2-t reached 3430 in 3,072 episodes raw against 3,712 clipped).
Except on Humanoid, whose range is +-0.4: raw, a perturbed linear policy's large actions pay
0.1 |a|^2 over 17 actuators and every episode fell within ~17 steps; clipped, ~65 steps and a
best policy of 510 on new episodes against 197 (dense linear, seed 0, 1M steps). On Ant clipping
did worse (860 against 1,136 at 2M steps), and the shift's collapse there came either way.
HumanoidStandup has the same range and cost: raw, the first iteration's perturbed rollouts (before
the normaliser has statistics) returned about -1.1e6, beyond ``spec.environment.maxAbsReward``'s
1e6, so its defaults could not run; clipped and raw (the bound raised) learned alike after it (best
78,654 against 76,290 at 0.6M steps, dense linear, seed 0; learning-history.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from esenas.spec import Job

#: An mlp's ES defaults, measured on MuJoCo (bench/results/learning.md).
MLP_ES_DEFAULTS: Final = {"sigma": 0.1, "stepSize": 0.05, "perturbations": 64, "fitnessShaping": "centered_ranks", "optimizer": "adam"}


def mlp_default(key: str) -> str:
    """How the CRD reference words a template default ("Defaults to 0.03 for a linear policy, ...")."""
    return f"for a linear policy, {json.dumps(MLP_ES_DEFAULTS[key])} for an mlp"


#: healthy_reward of each task in Gymnasium v4 and v5 whose default shift removes it (not Ant's 1.0).
SURVIVAL_BONUS: Final = {"Hopper": 1.0, "Walker2d": 1.0, "Humanoid": 5.0}
def _task_ids(names: Iterable[str]) -> str:
    """A regular expression (Python and CEL) for the Gymnasium v4 and v5 ids of ``names``."""
    return "^(" + "|".join(names) + ")-v[45]$"


_ID: Final = _task_ids(SURVIVAL_BONUS)
#: The ids (Python and CEL) of the tasks whose ``healthy_reward`` the default shift removes.
SURVIVAL_TASK_ID: Final = _ID
#: How the CRD reference words the default ("Defaults to 0.0 ...").
SHIFT_DEFAULT: Final = (
    "except on Hopper, Walker2d and Humanoid (-v4, -v5), where it is the task's survival bonus (healthy_reward: "
    "1.0, 5.0 for Humanoid, or environment.kwargs.healthy_reward), unless kwargs.terminate_when_unhealthy is false"
)


#: Tasks (Gymnasium v4, v5) whose linear policies' actions are clipped by default too.
CLIPPED_LINEAR: Final = ("Humanoid", "HumanoidStandup")
_CLIPPED_ID: Final = _task_ids(CLIPPED_LINEAR)
#: How the CRD reference words the default.
CLIP_DEFAULT: Final = "for a linear policy except on Humanoid and HumanoidStandup (-v4, -v5), true for an mlp"


#: Tasks (Gymnasium v4, v5) that start every episode from nearly one state, where an update steps on
#: the best quarter of its pairs by default (``es.topDirections`` unset): ranking a pair by its
#: better rollout then ranks the direction. Elsewhere the default is every pair (0), see
#: :func:`top_directions`.
ONE_START: Final = ("HalfCheetah", "Hopper", "Walker2d", "Swimmer", "Ant", "Humanoid", "HumanoidStandup",
                    "InvertedPendulum", "InvertedDoublePendulum")
_ONE_START_ID: Final = _task_ids(ONE_START)
#: How the CRD reference words the default.
TOP_DEFAULT: Final = (
    "a quarter of the pairs in each update, rounded up (16 of 64), on the MuJoCo tasks that start from nearly "
    "one state (" + ", ".join(ONE_START) + "; -v4, -v5), so it follows perturbationsPerWorker as the fleet "
    "scales; 0 (all pairs) on any other task, whose start or goal is random per episode (Reacher, Pendulum) "
    "or not known"
)


def top_directions(env_id: str) -> int | None:
    """``es.topDirections``'s default on ``env_id``: None (a quarter of each update's pairs,
    esenas.es.top_count) on the :data:`ONE_START` tasks, else 0 (all pairs).

    Each pair's two rollouts share a start, but pairs do not: on a task whose start or goal is drawn
    per episode, the pairs whose better rollout scored highest are mostly those that drew an easy
    one, so stepping on them follows the draw, not the direction. Measured (learning-history.md,
    2026-12-05), all pairs against the best quarter, 3 seeds each, on new episodes: Reacher-v5
    dense linear (1M steps) a median of -5.6 against -6.4; Pendulum-v1 mlp (6M steps) -133 against
    -290; MountainCar-v0 reached -110 in 288-720 episodes against 1,008; CartPole-v1 and Acrobot-v1
    the same. On the locomotion tasks the best quarter won (HalfCheetah H41/17, 5 seeds: a median
    best of 2,406 against 1,496; docs/tuning.md item 4).
    """
    return None if re.match(_ONE_START_ID, env_id) else 0


def top_directions_cel(obj: str) -> str:
    """:func:`top_directions` of ``obj.environment`` in CEL (obj: self or oldSelf), -1 standing for
    the quarter: no count equals it, as it follows the population."""
    return f"({obj}.environment.id.matches('{_ONE_START_ID}') ? -1 : 0)"


def clip_actions(template: str, env_id: str) -> bool:
    """``policy.clipActions``'s default for ``template`` on ``env_id``."""
    return template == "mlp" or re.match(_CLIPPED_ID, env_id) is not None


def survival_bonus(env_id: str, kwargs: Mapping[str, Any]) -> float:
    """The per-step survival bonus of ``env_id`` built with ``kwargs``; 0 for other tasks."""
    match = re.match(_ID, env_id)
    if match is None or kwargs.get("terminate_when_unhealthy", True) is False:
        return 0.0
    bonus = kwargs.get("healthy_reward", SURVIVAL_BONUS[match[1]])
    return float(bonus) if is_number(bonus) else SURVIVAL_BONUS[match[1]]  # the parser refuses a non-number


def is_number(value: Any) -> bool:
    """A JSON number (CEL's int or double): not a boolean, a string or null."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_number_cel(expr: str) -> str:
    """:func:`is_number` of ``expr`` in CEL, so that ``double(expr)`` cannot fail on a free-form value."""
    return f"(type({expr}) == int || type({expr}) == double)"


def survival_bonus_cel(obj: str) -> str:
    """:func:`survival_bonus` of ``obj.environment`` as a CEL expression (obj: self or oldSelf)."""
    env, kw = f"{obj}.environment", f"{obj}.environment.kwargs"
    falls = f"!(has({kw}) && 'terminate_when_unhealthy' in {kw} && {kw}.terminate_when_unhealthy == false)"
    task = " : ".join(f"{env}.id.startsWith('{name}-') ? {bonus}" for name, bonus in SURVIVAL_BONUS.items()) + " : 0.0"
    given = f"has({kw}) && 'healthy_reward' in {kw} && {is_number_cel(kw + '.healthy_reward')} ? double({kw}.healthy_reward) : ({task})"
    return f"({env}.id.matches('{_ID}') && {falls} ? ({given}) : 0.0)"


def chosen_by_task(job: Job) -> str:
    """The defaults ``job`` got from its task rather than its template and did not set, in one line
    for ``esenas run`` ("" when none): a Humanoid job that sets nothing learns on shifted rewards
    and clipped actions, which its YAML does not say."""
    spec, raw = job.spec, job.raw_spec
    got = []
    if "rewardShift" not in (raw.get("es") or {}) and spec.es.reward_shift:
        got.append(f"es.rewardShift {spec.es.reward_shift:g} (the task's survival bonus)")
    if "clipActions" not in (raw.get("policy") or {}) and spec.policy.template != "mlp" and spec.policy.clip_actions:
        got.append("policy.clipActions true (the task's narrow action range)")
    if "topDirections" not in (raw.get("es") or {}) and spec.es.top_directions == 0:
        got.append("es.topDirections 0 (all pairs: a task not known to start from one state)")
    return f"defaults for {spec.environment.id}: {'; '.join(got)} (docs/tuning.md)" if got else ""
