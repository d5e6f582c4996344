#!/usr/bin/env python3
"""Draws docs/img/architecture-layers.png: the five packages as layers (docs/architecture.md).

The arrows are the imports the code makes, all downward (the import-linter contracts in
pyproject.toml enforce them); the one dashed arrow up is not an import: the aggregator and the
worker register their `esenas aggregator` / `esenas worker` subcommands through the
`esenas.commands` entry point group, which the CLI reads at run time.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch

REPO: Final = Path(__file__).resolve().parents[1]
OUT: Final = REPO / "docs" / "img" / "architecture-layers.png"

TO_API: Final = "#2e7d32"  # arrows into esenas_api
TO_CORE: Final = "#1565c0"  # arrows into esenas
PLUGIN: Final = "#6a1b9a"  # the entry point registration
FILLS: Final = {"cli": "#fff3e0", "deploy": "#e3f2fd", "api": "#e8f5e9", "core": "#f3e5f5"}
EDGES: Final = {"cli": "#e65100", "deploy": "#1565c0", "api": "#2e7d32", "core": "#6a1b9a"}

Box = tuple[float, float, float, float]  # x, y, width, height

CLI: Final[Box] = (24, 66, 52, 12)
AGG: Final[Box] = (6, 42, 26, 14)
WORKER: Final[Box] = (37, 42, 26, 14)
OPERATOR: Final[Box] = (68, 42, 26, 14)
API: Final[Box] = (24, 24, 52, 9)
CORE: Final[Box] = (2, 2, 96, 12)


def box(ax: Axes, b: Box, layer: str, title: str, dist: str, lines: Sequence[str]) -> None:
    x, y, w, h = b
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=1.2",
                                facecolor=FILLS[layer], edgecolor=EDGES[layer], linewidth=2, zorder=2))
    ax.text(x + w / 2, y + h - 2.0, title, ha="center", va="center", fontsize=13,
            fontweight="bold", family="monospace", zorder=3)
    ax.text(x + w / 2, y + h - 4.1, dist, ha="center", va="center", fontsize=8.5,
            color="#555555", style="italic", zorder=3)
    for i, line in enumerate(lines):
        ax.text(x + w / 2, y + h - 6.6 - 2.1 * i, line, ha="center", va="center", fontsize=9, zorder=3)


def arrow(ax: Axes, points: Sequence[tuple[float, float]], color: str, *, dashed: bool = False) -> None:
    """A polyline whose last segment ends in an arrow head."""
    style = (0, (5, 3)) if dashed else "solid"
    xs, ys = zip(*points, strict=True)
    if len(points) > 2:
        ax.plot(xs[:-1], ys[:-1], color=color, linewidth=1.8, linestyle=style, zorder=1)
    ax.annotate("", xy=points[-1], xytext=points[-2], zorder=1,
                arrowprops={"arrowstyle": "-|>,head_length=0.8,head_width=0.4", "color": color,
                            "linewidth": 1.8, "linestyle": style, "shrinkA": 0, "shrinkB": 0})


def draw(out: Path) -> None:
    fig, ax = plt.subplots(figsize=(12, 9.6))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 80)
    ax.set_axis_off()

    box(ax, CLI, "cli", "esenas_cli", "dist esenas-cli: the `esenas` command (top layer)",
        ["esenas run · eval · export · fetch",
         "`esenas run` starts aggregator and workers as processes"])
    box(ax, AGG, "deploy", "esenas_aggregator", "dist esenas-aggregator (image)",
        ["ES ask/tell loop, work queue, leases", "gRPC Exchange · HTTP /status /result",
         "checkpoints, result documents"])
    box(ax, WORKER, "deploy", "esenas_worker", "dist esenas-worker (image)",
        ["Exchange long poll: lease items,", "roll out θ ± σε, push results", "(esenas.rollout.Evaluator)"])
    box(ax, OPERATOR, "deploy", "esenas_operator", "dist esenas-operator (image)",
        ["kopf: ESENASJob → children,", "status from the aggregator,", "result ConfigMaps"])
    box(ax, API, "api", "esenas_api", "dist esenas-core: the wire format",
        ["generated protobuf/gRPC (esenas.api.v1) · wire.py · tls.py"])
    box(ax, CORE, "core", "esenas", "dist esenas-core: the algorithm library (numpy)",
        ["algorithm · es · controllers/ · topology · network · policies · rollout · spec · checkpoint · trainer",
         "imports no grpc, protobuf, kopf, kubernetes, aiohttp or prometheus_client, even indirectly"])

    # Imports, all downward. The worker's import of esenas has to pass the operator's of esenas_api.
    arrow(ax, [(4 + 20, 72), (4, 72), (4, 14)], TO_CORE)  # CLI -> esenas, down the left margin
    arrow(ax, [(34.5, 66), (34.5, 33)], TO_API)  # CLI -> esenas_api, through the gap
    arrow(ax, [(28, 42), (28, 33)], TO_API)
    arrow(ax, [(12, 42), (12, 14)], TO_CORE)
    arrow(ax, [(50, 42), (50, 33)], TO_API)
    arrow(ax, [(59, 42), (59, 37.5), (81, 37.5), (81, 14)], TO_CORE)
    arrow(ax, [(72, 42), (72, 33)], TO_API)
    arrow(ax, [(90, 42), (90, 14)], TO_CORE)

    # Not an import: the deployables register their subcommands with the CLI.
    arrow(ax, [(22, 56), (29, 66)], PLUGIN, dashed=True)
    arrow(ax, [(46, 56), (46, 66)], PLUGIN, dashed=True)
    ax.text(47, 61, "registers subcommand\n(entry point group\nesenas.commands)",
            fontsize=8.5, color=PLUGIN, va="center", ha="left")
    ax.text(82, 60.5, "side by side: none imports another;\neach image holds itself + esenas-core",
            fontsize=8.5, color="#333333", ha="center", va="center", style="italic")

    handles = [
        Line2D([], [], color=TO_API, linewidth=1.8, label="imports esenas_api"),
        Line2D([], [], color=TO_CORE, linewidth=1.8, label="imports esenas"),
        Line2D([], [], color=PLUGIN, linewidth=1.8, linestyle=(0, (5, 3)), label="registers a subcommand (not an import)"),
    ]
    ax.legend(handles=handles, loc="center", bbox_to_anchor=(0.5, 19 / 80), ncol=3, fontsize=8.5, frameon=False)
    ax.set_title("ES-ENAS Fleet: five packages in four layers (enforced by import-linter)", fontsize=13, pad=4)

    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight", facecolor="white")
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=OUT, help=f"the PNG to write (default: {OUT.relative_to(REPO)})")
    draw(p.parse_args().out)


if __name__ == "__main__":
    main()
