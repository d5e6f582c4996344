#!/usr/bin/env python3
"""Draws docs/img/dashboard.png: the Grafana dashboard's panels, plotted with matplotlib from the
query results of a real run (tests/e2e/test_metrics_prometheus.py: a real Prometheus scraping
`esenas run` and the operator). Without --data it runs that test first to collect them."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parents[1]
DASHBOARD: Final = REPO / "helm" / "esenas" / "dashboards" / "esenas.json"
TEST: Final = "tests/e2e/test_metrics_prometheus.py::test_every_dashboard_query_returns_data"


def collect(seconds: float) -> dict[str, Any]:
    """Runs the end-to-end metrics test and returns the panels' query ranges it saved."""
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "dashboard.json"
        env = {**os.environ, "ESENAS_DASHBOARD_DUMP": str(dump), "ESENAS_DASHBOARD_SECONDS": str(seconds),
               "PATH": f"{REPO / '.tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST],
                       cwd=REPO, env=env, check=True)
        data: dict[str, Any] = json.loads(dump.read_text())
        return data


def _legend(template: str, labels: dict[str, str]) -> str:
    out = template
    for key, value in labels.items():
        out = out.replace("{{" + key + "}}", value)
    return out


def _axes_settings(panel: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The panel's field defaults, and each refId's overridden properties (Grafana's byFrameRefID)."""
    defaults = dict(panel.get("fieldConfig", {}).get("defaults", {}))
    by_ref: dict[str, dict[str, Any]] = {}
    for o in panel.get("fieldConfig", {}).get("overrides", []):
        if o["matcher"]["id"] == "byFrameRefID":
            by_ref[o["matcher"]["options"]] = {p["id"]: p["value"] for p in o["properties"]}
    return defaults, by_ref


def _limits(ax: Any, props: dict[str, Any], scale: float) -> None:
    """Grafana's min/max on an axis (in the axis' displayed scale); unset ones stay automatic."""
    if "min" in props:
        ax.set_ylim(bottom=props["min"] * scale)
    if "max" in props:
        ax.set_ylim(top=props["max"] * scale)


def render(data: dict[str, Any], out: Path) -> None:
    """One subplot per dashboard panel, in the dashboard's order; trend panels use their x field."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dash = json.loads(DASHBOARD.read_text())
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    by_panel: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for q in data["queries"]:
        by_panel[q["panel"]].append(q)
    t0 = float(data["start"])
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 4.6, rows * 3.0))
    for ax, panel in zip(axes.flat, panels, strict=False):
        title = panel["title"].replace("$job", data["job"])
        queries = by_panel[title]
        ax.set_title(title, fontsize=10, loc="left")
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        if panel["type"] == "stat":
            series = [s for q in queries for s in q["result"]]
            value = float(series[0]["values"][-1][1]) if series else float("nan")
            ax.text(0.5, 0.45, f"{value:,.4g}", ha="center", va="center", fontsize=26, color="#1f77b4",
                    transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        if panel["type"] == "trend":
            (x_q, *y_qs) = queries
            xs = {float(t): float(v) for t, v in x_q["result"][0]["values"]} if x_q["result"] else {}
            for q in y_qs:
                for s in q["result"]:
                    pts = [(xs[float(t)], float(v)) for t, v in s["values"] if float(t) in xs]
                    if pts:
                        ax.plot(*zip(*pts, strict=True), label=_legend(q["legend"], s["metric"]), lw=1.4)
            ax.set_xlabel(x_q["legend"], fontsize=8)
        else:
            # As Grafana draws it: the panel's unit and min/max, and a query whose override puts it
            # on the right axis gets that axis with its own unit (percentunit: 0.4 shows as 40 %).
            defaults, by_ref = _axes_settings(panel)
            right = None
            right_props: dict[str, Any] = {}
            for target_def, q in zip(panel["targets"], queries, strict=True):
                props = by_ref.get(target_def["refId"], {})
                on_right = props.get("custom.axisPlacement") == "right"
                scale = 100.0 if props.get("unit", defaults.get("unit")) == "percentunit" else 1.0
                if on_right and right is None:
                    right = ax.twinx()
                    right.tick_params(labelsize=7)
                    right.set_ylabel(q["legend"].split(" ")[0] + (" (%)" if scale == 100.0 else ""), fontsize=8)
                    right_props = {**props, "scale": scale}
                target = right if on_right and right is not None else ax
                for s in q["result"]:
                    ts = [float(t) - t0 for t, _ in s["values"]]
                    vs = [float(v) * scale for _, v in s["values"]]
                    target.plot(ts, vs, label=_legend(q["legend"], s["metric"]), lw=1.4,
                                ls="--" if on_right else "-", color="tab:red" if on_right else None)
            ax.set_xlabel("seconds", fontsize=8)
            _limits(ax, defaults, 1.0)
            if right is not None:
                _limits(right, right_props, right_props["scale"])
                right.legend(fontsize=6, loc="lower right")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="best")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"ES-ENAS Fleet dashboard — job {data['job']} (InvertedPendulum-v5, local run with "
                 f"{len(panels)} panels drawn from a real Prometheus)", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, help="query ranges saved by the e2e test (ESENAS_DASHBOARD_DUMP)")
    parser.add_argument("--seconds", type=float, default=90.0, help="how long to observe the run when collecting")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "dashboard.png")
    args = parser.parse_args(argv)
    data = json.loads(args.data.read_text()) if args.data else collect(args.seconds)
    render(data, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
