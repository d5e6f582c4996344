"""The Evaluator on a real Gymnasium task: deterministic items, reward shift, clipping rule."""

from __future__ import annotations

import dataclasses

import gymnasium
import numpy as np
import pytest
from esenas.algorithm import ESENAS
from esenas.rollout import Evaluator, action_bounds, env_dims
from esenas.spec import EnvironmentSpec, SpecError, parse_spec

SPEC = parse_spec(
    {
        "environment": {"id": "InvertedPendulum-v5", "maxEpisodeSteps": 50},
        "es": {"perturbations": 3, "exactEvals": 1, "sigma": 0.5},
    }
)


def _results(spec: object) -> tuple[ESENAS, np.ndarray, np.ndarray, np.ndarray]:
    algo = ESENAS(spec, 4, 1)  # type: ignore[arg-type]
    plan = algo.ask()
    ev = Evaluator(spec)  # type: ignore[arg-type]
    ev.set_plan(plan.params + 0.3, plan.obs_mean, plan.obs_std, plan.sigma, plan.topologies)
    r = ev.run(plan.items)
    ev.close()
    return algo, r.reward_pos, r.reward_neg, r.steps.astype(np.float64)


def test_items_are_deterministic_and_shift_is_per_step() -> None:
    _, pos, neg, steps = _results(SPEC)
    _, pos2, neg2, _ = _results(SPEC)
    assert np.array_equal(pos, pos2) and np.array_equal(neg[:3], neg2[:3])
    assert np.isnan(neg[3])  # exact eval: one rollout
    shifted = dataclasses.replace(SPEC, es=dataclasses.replace(SPEC.es, reward_shift=1.0))
    _, spos, sneg, _ = _results(shifted)
    # each pair rollout loses shift * its steps; the pair reports the steps of both
    np.testing.assert_allclose(spos[:3] + sneg[:3], pos[:3] + neg[:3] - steps[:3])
    assert spos[3] == pos[3] > 0  # exact evals stay raw


def test_linear_policies_are_unclipped_and_mlps_are_clipped() -> None:
    algo, *_ = _results(SPEC)
    ev = Evaluator(SPEC)
    assert action_bounds(ev.env, algo.current_policy()) is None
    mlp = parse_spec({"environment": {"id": "InvertedPendulum-v5"}, "policy": {"template": "mlp", "hiddenLayers": [4]}})
    mlp_algo = ESENAS(mlp, 4, 1)
    bounds = action_bounds(ev.env, mlp_algo.current_policy())
    assert bounds is not None and bounds[0][0] == -3.0 and bounds[1][0] == 3.0
    ev.close()


@pytest.mark.parametrize(("template", "clip"), [("linear", True), ("mlp", False)])
def test_clip_actions_overrides_the_templates_rule(template: str, clip: bool) -> None:
    spec = parse_spec({"environment": {"id": "InvertedPendulum-v5"}, "policy": {"template": template, "clipActions": clip}})
    assert spec.policy.clip_actions is clip
    algo, ev = ESENAS(spec, 4, 1), Evaluator(spec)
    policy = algo.current_policy()
    assert (action_bounds(ev.env, policy) is not None) is clip
    ev.close()
    # and the clipped run's action: a linear policy driven far past the range acts at its edge
    ev = Evaluator(spec)
    ev.set_plan(np.full(policy.arch.num_params, 100.0), np.zeros(4), np.ones(4), 0.1, [policy.topology])
    acted: list[float] = []
    step = ev.env.step
    ev.env.step = lambda a: (acted.append(float(np.asarray(a)[0])), step(a))[1]  # type: ignore[method-assign]
    ev.run(algo.ask().items[-1:])  # the exact eval: the centre
    ev.close()
    assert acted and (max(map(abs, acted)) <= 3.0) is clip


@pytest.mark.parametrize(("env_id", "dims"), [("CartPole-v1", (4, 2)), ("Acrobot-v1", (6, 3))])
def test_discrete_action_spaces_are_driven_by_one_score_per_action(env_id: str, dims: tuple[int, int]) -> None:
    # They once passed as act_dim = n and crashed at the first env.step with a float vector;
    # now make_env adapts them (esenas.spaces), and a raw environment is still checked here.
    assert env_dims(EnvironmentSpec(env_id)) == dims
    raw = gymnasium.make(env_id)
    with pytest.raises(SpecError, match=r"action space a policy cannot emit \(Discrete\("):
        env_dims(raw)  # the worker's Evaluator checks the environment it holds the same way
    raw.close()
    assert env_dims(EnvironmentSpec("MountainCarContinuous-v0")) == (2, 1)
