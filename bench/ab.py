"""Run one bench against an earlier commit in the same session: an A/B with its own baseline.

    bench/ab.py REV [--rounds 2] -- bench/scale.py --workers 1000 --iterations 8

REV is checked out into a temporary git worktree. The bench then runs from there ("base") and
from this working tree ("new") in turn, base first, ``--rounds`` times. Each side runs with its
own packages first on PYTHONPATH (core, aggregator, worker_image, cli), so the aggregator, the
relays and the simulated workers that a bench starts are that side's code; the Python
environment (this interpreter's) is shared, so REV must not need other dependencies. Each run's
output goes to a log in ``--logs``. Pause other work on the machine while it runs: the sides
alternate so that drift in the machine's load falls on both.

Ends with ONE JSON line: {"bench": "ab", "base": ..., "new": ..., "command": [...], "runs":
[{"side", "round", "line"}, ...]}, each ``line`` the bench's own final JSON line (None if it
printed none or failed, with its exit code).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PACKAGES = ("core", "aggregator", "worker_image", "cli")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def describe(repo: Path, rev: str) -> str:
    """``rev`` as a short commit, "+dirty" for a working tree with uncommitted changes."""
    short = git(repo, "rev-parse", "--short", rev)
    if rev == "HEAD" and git(repo, "status", "--porcelain", "--untracked-files=no"):
        short += "+dirty"
    return short


def run_side(root: Path, command: list[str], log: Path) -> tuple[dict[str, Any] | None, int]:
    """The bench from ``root`` with ``root``'s packages first; its final JSON line and exit code."""
    env = dict(os.environ)
    paths = [str(root / p) for p in PACKAGES if (root / p).is_dir()]
    env["PYTHONPATH"] = os.pathsep.join([*paths, *filter(None, [env.get("PYTHONPATH")])])
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.run([sys.executable, *command], cwd=root, env=env, stdout=subprocess.PIPE, stderr=out, text=True, check=False)
        out.write(proc.stdout)
    for text in reversed(proc.stdout.strip().splitlines()):
        try:
            line = json.loads(text)
        except ValueError:
            continue
        return (line if isinstance(line, dict) else None), proc.returncode
    return None, proc.returncode


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rev", help="the baseline commit (anything git rev-parse takes)")
    p.add_argument("--rounds", type=int, default=2, help="base then new, this many times")
    p.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]), help="the repository (default: this one)")
    p.add_argument("--logs", help="folder for each run's output (default: a new temporary folder)")
    p.epilog = "After --: the bench and its arguments, run with this Python."
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    a = p.parse_args(argv[:split])
    command = argv[split + 1 :]
    if not command:
        p.error("give the bench after --, e.g. -- bench/scale.py --workers 1000")
    if a.rounds < 1:
        p.error("--rounds: must be at least 1")
    repo = Path(a.repo).resolve()
    try:
        base_commit = git(repo, "rev-parse", "--verify", f"{a.rev}^{{commit}}")
    except subprocess.CalledProcessError:
        p.error(f"rev: {a.rev!r} is not a commit of {repo}")
    logs = Path(a.logs or tempfile.mkdtemp(prefix="esenas-ab-"))
    logs.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="esenas-ab-base-") as d:
        base = Path(d) / "tree"
        git(repo, "worktree", "add", "--detach", str(base), base_commit)
        try:
            for k in range(1, a.rounds + 1):
                for side, root in (("base", base), ("new", repo)):
                    log = logs / f"{side}-{k}.log"
                    print(f"round {k}, {side}: {' '.join(command)} (log {log})", file=sys.stderr, flush=True)
                    line, code = run_side(root, command, log)
                    runs.append({"side": side, "round": k, "line": line, **({"exit_code": code} if code else {})})
        finally:
            git(repo, "worktree", "remove", "--force", str(base))
    print(json.dumps({"bench": "ab", "base": describe(repo, base_commit), "new": describe(repo, "HEAD"),
                      "command": command, "logs": str(logs), "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
