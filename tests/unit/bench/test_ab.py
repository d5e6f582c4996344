"""bench/ab.py runs a bench from a worktree of the baseline commit and from the working tree in
turn, each side with its own packages first on PYTHONPATH."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

BENCH = '''import json, os, sys
from marker import VALUE
print("progress on stdout is skipped")
print(json.dumps({"value": VALUE, "path0": os.environ["PYTHONPATH"].split(os.pathsep)[0], "argv": sys.argv[1:]}))
'''


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True, capture_output=True)


def test_each_side_runs_its_own_code_in_alternation(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "bench").mkdir(parents=True)
    (repo / "core").mkdir()
    (repo / "bench" / "echo.py").write_text(BENCH)
    (repo / "core" / "marker.py").write_text("VALUE = 'base'\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    (repo / "core" / "marker.py").write_text("VALUE = 'new'\n")  # uncommitted: the working tree

    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ab.py"), "HEAD", "--repo", str(repo), "--rounds", "2",
         "--logs", str(tmp_path / "logs"), "--", "bench/echo.py", "--flag"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    line = json.loads(out.stdout.strip().splitlines()[-1])
    assert line["bench"] == "ab" and line["new"].endswith("+dirty") and not line["base"].endswith("+dirty")
    assert line["command"] == ["bench/echo.py", "--flag"]
    assert [(r["side"], r["round"], r["line"]["value"]) for r in line["runs"]] == [
        ("base", 1, "base"), ("new", 1, "new"), ("base", 2, "base"), ("new", 2, "new"),
    ]
    new_core = str(repo / "core")
    assert all((r["line"]["path0"] == new_core) == (r["side"] == "new") for r in line["runs"])
    assert all(r["line"]["argv"] == ["--flag"] for r in line["runs"])
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["base-1.log", "base-2.log", "new-1.log", "new-2.log"]
    # the baseline's worktree is gone again
    listed = subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True, check=True).stdout
    assert len(listed.strip().splitlines()) == 1


def test_a_rev_that_is_not_a_commit_is_refused_by_name(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "commit", "-q", "--allow-empty", "-m", "first")
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ab.py"), "no-such-rev", "--repo", str(repo), "--", "bench/x.py"],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert out.returncode == 2 and "rev: 'no-such-rev' is not a commit" in out.stderr
