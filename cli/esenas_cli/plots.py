"""Pictures for a results folder: the reward curve, and the found topology.

The topology picture follows the chromatic-networks poster: each weight matrix is an image,
each cell coloured by its partition (colour) or, for edge pruning, by its weight (blank:
pruned). matplotlib uses the Agg backend, so no display is needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def reward_curve(history: Sequence[Mapping[str, Any]], task: str, path: Path) -> None:
    """Reward against episodes and env steps, labelled with the Gymnasium task version."""
    plt = _plt()
    eps = [h["total_episodes"] for h in history]
    steps = [h["total_env_steps"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for ax, x, label in ((axes[0], eps, "episodes"), (axes[1], steps, "env steps")):
        ax.plot(x, [h["reward_mean"] for h in history], label="mean of rollouts", lw=1)
        ax.plot(x, [h["reward_max"] for h in history], label="max of rollouts", lw=0.8, alpha=0.6)
        if any(h.get("eval_reward") is not None for h in history):
            ax.plot(x, [np.nan if h["eval_reward"] is None else h["eval_reward"] for h in history], label="exact evals", lw=1)
        ax.plot(x, [h["best_reward"] for h in history], label="best", lw=1.5, color="k")
        ax.set_xlabel(label)
        ax.set_ylabel("reward")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{task}: reward")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def topology_picture(policy: Any, path: Path) -> None:
    """One image per weight matrix of a :class:`esenas.policies.Policy`."""
    plt = _plt()
    arch, topo = policy.arch, policy.topology
    mats, _ = arch.weights(policy.params, topo)
    fig, axes = plt.subplots(1, len(mats), figsize=(4 * len(mats), 4), constrained_layout=True, squeeze=False)
    offsets = arch.offsets
    for i, (ax, b, m) in enumerate(zip(axes[0], arch.blocks, mats, strict=True)):
        if arch.kind == "partition" and topo.decisions.size:
            colours = topo.decisions[offsets[i] : offsets[i + 1]].reshape(b.n_out, b.n_in)
            im = ax.imshow(colours, cmap="tab20", interpolation="nearest", aspect="auto", vmin=0, vmax=max(19, int(topo.decisions.max())))
            title = "partition (colour) per weight"
        else:
            shown = np.where(m == 0, np.nan, m)
            im = ax.imshow(shown, cmap="coolwarm", interpolation="nearest", aspect="auto")
            title = "weights (blank: pruned)" if arch.kind == "edges" else "weights"
        ax.set_title(f"layer {b.src}->{b.dst}: {title}", fontsize=9)
        ax.set_xlabel(f"inputs ({b.n_in})")
        ax.set_ylabel(f"outputs ({b.n_out})")
        fig.colorbar(im, ax=ax, fraction=0.04)
    fig.suptitle(f"{arch.kind} topology: {policy.trainable_params} trainable of {policy.dense_params} dense ({policy.compression:.0%} compression)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
