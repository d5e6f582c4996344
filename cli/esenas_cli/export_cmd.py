"""``esenas export DIR --format onnx``: the found policy as an ONNX model, for deployment on robots.

The model takes raw observations (the normalisation is inside it) and returns the action the
task gets: clipped to the action space for MLP policies, as the rollouts clip them. The compact
form (the default) keeps the topology's compression; ``--form dense`` writes materialised
matrices, and the command reports both sizes.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from esenas import onnx_export
from esenas.envload import one_line
from esenas.policies import Policy
from esenas.spec import EnvironmentSpec

from esenas_cli import mujoco_log
from esenas_cli.errors import usage_error
from esenas_cli.eval_cmd import load_policy
from esenas_cli.results_dir import POLICY_FILE

EXTRA_HINT = "pip install 'esenas-cli[export]' (or: make, which installs it)"


def register(sub: Any) -> None:
    p = sub.add_parser("export", help="write the found policy of a results folder as an ONNX model")
    p.add_argument("results", type=Path, help="results folder (or a policy.json)")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="model format (default: onnx)")
    p.add_argument("-o", "--output", type=Path, default=None, help="model file (default: DIR/policy.onnx)")
    p.add_argument("--form", choices=["auto", *onnx_export.FORMS], default="auto",
                   help="compact: only the numbers the topology stores; dense: full matrices, the "
                        "normalisation folded in; auto (default): the smaller file")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="the model's input, weights and output (default: float32)")
    p.add_argument("--no-clip", action="store_true",
                   help="output the network's raw action (MLP actions are otherwise clipped to the action space)")
    p.set_defaults(func=main)


_error = usage_error


def main(args: argparse.Namespace) -> int:
    path: Path = args.results / POLICY_FILE if args.results.is_dir() else args.results
    loaded = load_policy(path)
    if isinstance(loaded, str):
        return _error(loaded)
    policy, env_spec = loaded
    try:
        onnx_export.check_installed()
    except onnx_export.OnnxMissing:
        return _error(f"esenas export --format onnx needs the onnx package: {EXTRA_HINT}")
    mujoco_log.capture(path.parent)  # building the task to read its bounds may warn: into the folder
    clip = bool(policy.arch.spec.clip_actions) and not args.no_clip
    task = _task(policy, env_spec)
    if clip and isinstance(task, str):
        return _error(f"{path}: {task}; --no-clip exports the unclipped output without the environment")
    # Without the environment (a linear policy needs none), the doc string just says less.
    bounds, how, obs_how = task if not isinstance(task, str) else (None, None, None)
    bounds = bounds if clip else None
    out: Path = args.output or path.parent / "policy.onnx"
    doc = (f"ES-ENAS {policy.arch.kind} {policy.arch.spec.template} policy for {env_spec.id} from {path}: "
           f"input 'observation' (batch x {policy.arch.layers[0]}, raw), output 'action' "
           f"(batch x {policy.arch.layers[-1]}{', clipped to the action space' if bounds else ''})"
           f"{f'; the task gets {how}' if how else ''}{f'; the observation is {obs_how}' if obs_how else ''}")
    models = {form: onnx_export.to_bytes(onnx_export.build(policy, form=form, dtype=args.dtype, bounds=bounds, doc=doc))
              for form in onnx_export.FORMS}
    form = min(models, key=lambda f: len(models[f])) if args.form == "auto" else args.form
    blob = models[form]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(blob)
    except OSError as exc:
        return _error(f"cannot write {out}: {one_line(exc)}")
    dense = len(models["dense"])
    print(f"wrote {out}: {policy.arch.kind} {policy.arch.spec.template} policy in the {form} form, {len(blob):,} bytes "
          f"(dense form {dense:,} bytes: {len(blob) / dense:.0%}); {policy.trainable_params} trainable numbers, "
          f"{args.dtype}, observation normalisation inside"
          f"{'; actions clipped to the action space' if bounds else ''}")
    if obs_how:
        print(f"{env_spec.id}: the model's input is {obs_how}")
    if how:
        print(f"{env_spec.id}: the model outputs scores; the task's action is {how}")
    if isinstance(task, str):
        print(f"note: {task}; where its observations or actions are not flat vectors (Dict, Discrete, ...), "
              "the model takes them flattened and outputs one score per choice (docs/own-environment.md)")
    return 0


def _task(policy: Policy, env_spec: EnvironmentSpec) -> tuple[tuple[np.ndarray, np.ndarray] | None, str | None, str | None] | str:
    """From one build of the task: where the rollouts clip this policy's actions (None: nowhere,
    as for a discrete task's scores), how its output becomes the task's action and how the task's
    observation becomes its input (None: as they are; esenas.spaces); or why the task could not be built."""
    try:
        from esenas.rollout import action_bounds, make_env
        from esenas.spaces import action_decoding, observation_encoding

        env = make_env(env_spec)
    except ImportError as exc:
        return f"reading the action bounds needs the environment: {one_line(exc)} (pip install 'esenas-core[rl]')"
    # The edge of the CLI: an environment's constructor may raise anything; say it in one line.
    except Exception as exc:
        return f"cannot build {env_spec.id} to read its action bounds: {type(exc).__name__}: {one_line(exc)}"
    try:
        return action_bounds(env, policy), action_decoding(env), observation_encoding(env)
    finally:
        env.close()
