"""Run seeds of one learning row (bench/learning_rows.py), one after another.

    bench/learning_sweep.py ROW [--seeds 0,1,2,3,4] [--force]

For each seed it runs bench/learning.py with the row's budget and keeps, in
bench/results/learning/ROW/: seedS.json (the run's JSON line, plus the commit it ran on),
seedS.curve.jsonl (one line per iteration) and seedS.log (its progress). A seed whose
seedS.json exists is skipped unless --force. Then bench/learning_report.py regenerates
bench/results/learning.md. Seeds are long: minutes to an hour each on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # bench/ is run as a script: import its modules from the repo root

from bench.learning_rows import RESULTS, ROOT, ROWS  # noqa: E402


def commit_of_core() -> str:
    """The short HEAD commit, "+dirty" when core/ has uncommitted changes: what a result was measured on."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "core"], cwd=ROOT, capture_output=True, text=True, check=False)
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def run_logged(cmd: list[str], log_path: Path) -> dict[str, object] | None:
    """Run one bench/learning.py command, its output to ``log_path``; its final JSON line, or None
    when it failed or printed none."""
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True, check=False)
        log.write(proc.stdout)
        if proc.returncode != 0:
            log.write(f"exit {proc.returncode}\n")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if proc.returncode == 0 and lines else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("row", choices=sorted(ROWS))
    ap.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    ap.add_argument("--force", action="store_true", help="rerun seeds that already have a result")
    args = ap.parse_args()
    row = ROWS[args.row]
    out = RESULTS / args.row
    out.mkdir(parents=True, exist_ok=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        result = out / f"seed{seed}.json"
        if result.exists() and not args.force:
            print(f"{args.row} seed {seed}: done already ({result.relative_to(ROOT)})", flush=True)
            continue
        commit = commit_of_core()
        cmd = [sys.executable, *row.command(seed), "--curve", str(out / f"seed{seed}.curve.jsonl")]
        print(f"{args.row} seed {seed}: {' '.join(row.command(seed))}", flush=True)
        start = time.monotonic()
        line = run_logged(cmd, out / f"seed{seed}.log")
        if line is None:
            print(f"{args.row} seed {seed}: failed, see {out / f'seed{seed}.log'}", file=sys.stderr)
            return 1
        figures = {"row": args.row, **line, "commit": commit}
        result.write_text(json.dumps(figures) + "\n", encoding="utf-8")
        print(f"{args.row} seed {seed}: best {figures['best_reward']}, fresh {figures['eval_reward']} "
              f"({time.monotonic() - start:.0f} s)", flush=True)
    return subprocess.run([sys.executable, "bench/learning_report.py"], cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
