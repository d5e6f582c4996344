"""``esenas run JOB.yaml``: one aggregator and N worker processes on 127.0.0.1.

These are exactly the processes the pods run. The run folder holds the checkpoints, so
``--resume`` continues an interrupted run; Ctrl-C or SIGTERM checkpoints and stops cleanly,
and the children die with this process even when it is killed. At the end it writes the same
results folder as the in-process trainer (``--in-process``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Final

from esenas.edits import immutable_changes
from esenas.es_defaults import chosen_by_task
from esenas.spec import Job, SpecError
from esenas.trainer import default_workers
from esenas_api import tls

from esenas_cli import mujoco_log
from esenas_cli.args import available_mib, non_negative_int, port, positive_int, too_many_workers
from esenas_cli.child import PARENT_ENV
from esenas_cli.errors import EXIT_INTERRUPTED, load_checked_job, report_bad_spec, usage_error
from esenas_cli.fresh_eval import FRESH_EPISODES
from esenas_cli.local_job import follow_local_workers
from esenas_cli.progress import Bar
from esenas_cli.results_dir import best_text, default_dir
from esenas_cli.run_folder import (
    Resumed,
    aggregator_result_dir,
    checkpoint_dir,
    folder_problem,
    has_checkpoint,
    load_resumed,
    lock,
)

POLL_S: Final = 0.5
START_TIMEOUT_S: Final = 120.0


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="train a job locally (aggregator + worker processes) and write a results folder")
    p.add_argument("job", help="ESENASJob YAML (the same file you would kubectl apply)")
    p.add_argument("--workers", type=positive_int, default=None, help="worker processes (default: number of cores)")
    p.add_argument("--output", type=Path, default=None, help="run folder (default: runs/<job>-<time>/)")
    p.add_argument("--resume", action="store_true", help="continue the run in --output from its checkpoint")
    p.add_argument("--http-port", type=port, default=None,
                   help="the aggregator's status and metrics port on 127.0.0.1 (default: a free one)")
    p.add_argument("--in-process", action="store_true", help="train in this process instead (no gRPC, no HTTP)")
    p.add_argument("--no-video", action="store_true",
                   help="skip the folder's clip (video/episode.mp4, a few seconds of the found policy)")
    p.add_argument("--fresh-episodes", type=non_negative_int, default=FRESH_EPISODES, metavar="N",
                   help=f"replay the found policy on N new episodes at the end, summary.json's freshEval "
                   f"(default: {FRESH_EPISODES}; 0 skips it)")
    p.set_defaults(func=main)


_error = usage_error


def main(args: argparse.Namespace) -> int:
    if args.in_process and args.http_port is not None:
        return _error("--http-port needs the aggregator process; --in-process serves no HTTP")
    if problem := folder_problem(args.output, args.resume):  # before the environment is built
        return _error(problem)
    if args.workers and (problem := too_many_workers(args.workers, available_mib())):
        return _error(problem)
    mujoco_log.capture(None)  # the environment check below may warn before the folder is known
    loaded = load_checked_job(args.job)
    if isinstance(loaded, int):
        return loaded
    job, obs_dim, act_dim = loaded
    out: Path = (args.output or default_dir(job)).resolve()  # the children run inside it
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _error(f"--output {out}: cannot create the run folder: {exc.strerror}")
    held = lock(out)  # kept open (and so locked) until this process ends
    if isinstance(held, str):
        return _error(held)
    mujoco_log.capture(out)
    resumed: Resumed | None = None
    if args.resume:
        r = load_resumed(out)
        if isinstance(r, str):
            print(f"error: {r}", file=sys.stderr)
            return 1
        if changed := immutable_changes(r.algo.spec, job.spec):
            fields = ", ".join(f"spec.{c}" for c in changed)
            return _error(f"--resume: {args.job} changed {fields} since this run started; a run keeps the values "
                          f"it started with: undo the edit, or train into a new --output folder")
        resumed = r
        print(resumed.message)
    workers = args.workers or default_workers()
    try:
        job_file, job = follow_local_workers(Path(args.job).resolve(), job, workers, out)
    except SpecError as exc:
        return report_bad_spec(f"{args.job} with --workers {workers}", exc.errors)
    if args.in_process:
        from esenas_cli import run_local

        return run_local.train(job, obs_dim, act_dim, out, workers, resumed, args.job, video=not args.no_video,
                               fresh=args.fresh_episodes)
    return LocalFleet(job_file, job, out, workers, args.http_port or 0, resumed, video=not args.no_video,
                      fresh=args.fresh_episodes).run()


class LocalFleet:
    """Starts, watches and stops the local aggregator and workers."""

    def __init__(self, job_file: Path, job: Job, out: Path, workers: int, http_port: int = 0,
                 resumed: Resumed | None = None, *, video: bool = True, fresh: int = FRESH_EPISODES) -> None:
        self.job_file, self.job, self.out, self.n_workers = job_file, job, out, workers
        self.http_port, self.resumed, self.video, self.fresh = http_port, resumed, video, fresh
        self.logs = out / "logs"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.interrupted = False
        self.workers_failed = ""  # why, once every worker process has exited (see _workers_dead)

    def _spawn(self, name: str, module: str, *argv: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the child
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{PARENT_ENV: str(os.getpid())})
        if env.get("PYTHONPATH"):  # the children run in the run folder: what imports here imports there
            env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) if p else p for p in env["PYTHONPATH"].split(os.pathsep))
        # esenas_cli.child ties the child's life to this process (PR_SET_PDEATHSIG). A new session:
        # Ctrl-C reaches only this process, which then stops the children in order. The run folder
        # as working directory: MuJoCo writes its MUJOCO_LOG.TXT there.
        p = subprocess.Popen([sys.executable, "-m", "esenas_cli.child", module, *argv], stdout=log,
                             stderr=subprocess.STDOUT, env=env, cwd=self.out, start_new_session=True)
        self.procs.append(p)
        return p

    def run(self) -> int:
        self.logs.mkdir(parents=True, exist_ok=True)
        token = self.out / ".token"
        if not token.exists():
            token.touch(mode=0o600)
            token.write_text(secrets.token_urlsafe(32))
        tls_dir = self.out / ".tls"  # gRPC over TLS on 127.0.0.1 too: a CA and certificate per run folder
        if not (tls_dir / tls.KEY_KEY).exists():
            tls.issue("esenas-local", ["127.0.0.1", "localhost"]).write(tls_dir)
        ports = self.out / ".ports.json"
        ports.unlink(missing_ok=True)
        shutil.rmtree(aggregator_result_dir(self.out), ignore_errors=True)  # a result is this session's
        spec = self.job.spec
        print(f"training {self.job.name}: {spec.environment.id}, {spec.policy.topology} {spec.policy.template}, "
              f"controller {spec.controller.type}; 1 aggregator + {self.n_workers} worker processes; folder {self.out}")
        if by_task := chosen_by_task(self.job):
            print(by_task)
        start = time.monotonic()
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            agg = self._spawn(
                "aggregator", "esenas_aggregator", "--job", str(self.job_file), "--checkpoint-dir", str(checkpoint_dir(self.out)),
                "--token-file", str(token), "--host", "127.0.0.1", "--port", "0", "--http-port", str(self.http_port),
                "--tls-cert-file", str(tls_dir / tls.CERT_KEY), "--tls-key-file", str(tls_dir / tls.KEY_KEY),
                "--ports-file", str(ports), "--exit-when-done", "--log-level", "WARNING",
            )
            bound = self._wait_ports(agg, ports)
            if bound is None:
                return EXIT_INTERRUPTED if self.interrupted else self._fail("the aggregator did not start")
            http_port, grpc_port = bound
            print(f"status: http://127.0.0.1:{http_port}/status  metrics: http://127.0.0.1:{http_port}/metrics")
            for i in range(self.n_workers):
                self._spawn(
                    f"worker-{i}", "esenas_worker", "--job", str(self.job_file), "--aggregator", f"127.0.0.1:{grpc_port}",
                    "--token-file", str(token), "--tls-ca-file", str(tls_dir / tls.CA_KEY),
                    "--worker-id", f"local-{i}", "--give-up-after", "60", "--log-level", "WARNING",
                )
            last = self._watch(agg, http_port, start)
            code = self._stop(agg)
        except KeyboardInterrupt:  # the second Ctrl-C or SIGTERM: stop waiting
            print("forced stop: the children are killed; the last checkpoint stays", file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
            for p in self.procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        return self._finish(last, code, time.monotonic() - start)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"\ninterrupted ({name}): checkpointing and stopping (Ctrl-C again to force)", file=sys.stderr)

    def _wait_ports(self, agg: subprocess.Popen[bytes], ports: Path) -> tuple[int, int] | None:
        end = time.monotonic() + START_TIMEOUT_S
        while not ports.exists():
            if agg.poll() is not None or time.monotonic() > end or self.interrupted:
                return None
            time.sleep(0.05)
        p = json.loads(ports.read_text())
        return int(p["http"]), int(p["grpc"])

    def _watch(self, agg: subprocess.Popen[bytes], http_port: int, start: float) -> dict[str, Any]:
        bar = Bar(self.job.spec.stopping)
        elapsed_before = self.resumed.elapsed_s if self.resumed else 0.0
        last: dict[str, Any] = {}
        while agg.poll() is None and not self.interrupted:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/status", timeout=5) as r:
                    last = json.loads(r.read())
            except OSError:
                time.sleep(POLL_S)
                continue
            now = time.monotonic()
            bar.update(iteration=last["iteration"], env_steps=last["envSteps"], episodes=last["episodes"],
                       elapsed_s=elapsed_before + now - start, now=now, best=last["bestReward"],
                       mean=last["meanReward"], extra=self._workers_text(last["workersConnected"]), trial=last.get("trial") or "")
            if last.get("done"):
                break
            self.workers_failed = self._workers_dead()
            if self.workers_failed:
                break
            time.sleep(POLL_S)
        bar.close()
        return last

    def _workers_text(self, connected: int) -> str:
        """The bar's workers: those whose results the aggregator accepted, of the processes alive
        ("workers 0/2" while the first results of a slow task are still out, not a bare 0)."""
        return f"workers {connected}/{sum(p.poll() is None for p in self.procs[1:])}"

    def _workers_dead(self) -> str:
        """Why the run cannot go on when every worker process has exited, else "" (the aggregator
        would wait for them forever: a crash in native code, the OOM killer)."""
        workers = self.procs[1:]
        if not workers or any(p.poll() is None or p.returncode == 0 for p in workers):
            return ""
        log = self.logs / "worker-0.log"
        lines = [line for line in (log.read_text(errors="replace") if log.exists() else "").splitlines() if line.strip()]
        last = f", its log's last line: {lines[-1].strip()[:300]}" if lines else ", with nothing in its log"
        rc = workers[0].returncode
        how = f"code {rc}" if rc >= 0 else f"signal {signal.Signals(-rc).name}"
        return f"every worker process exited (worker-0 with {how}{last})"

    def _stop(self, agg: subprocess.Popen[bytes]) -> int:
        if (self.interrupted or self.workers_failed) and agg.poll() is None:
            agg.send_signal(signal.SIGTERM)  # checkpoint the last completed iteration
        try:
            code = agg.wait(timeout=60)
        except subprocess.TimeoutExpired:
            agg.kill()
            code = agg.wait()
        for p in self.procs[1:]:  # workers exit 0 on "done"; on an interrupt or a dead aggregator, SIGTERM
            if p.poll() is None and (self.interrupted or code != 0):
                p.send_signal(signal.SIGTERM)
        for p in self.procs[1:]:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        return code

    @property
    def _resume_hint(self) -> str:
        return f"resume with: esenas run {self.job_file} --output {self.out} --resume"

    def _fail(self, what: str) -> int:
        """One line: what happened, the aggregator's last line (its reason, or a traceback's last
        line), and where its whole log is."""
        log = self.logs / "aggregator.log"
        lines = [ln.strip() for ln in log.read_text(errors="replace")[-4000:].splitlines() if ln.strip()] if log.exists() else []
        why = f": {lines[-1]}" if lines else ""
        print(f"error: {what}{why} (its log: {log})", file=sys.stderr)
        return 1

    def _finish(self, last: dict[str, Any], code: int, wall: float) -> int:
        from esenas_cli.clip import add_clip
        from esenas_cli.fresh_eval import add_fresh_eval
        from esenas_cli.results_dir import read_documents, write_folder

        if self.workers_failed:
            print(f"error: {self.workers_failed}; see {self.logs}", file=sys.stderr)
            return 1
        if code < 0 and not self.interrupted:  # killed: its log's last line says nothing about why
            resume = f"; {self._resume_hint}" if has_checkpoint(self.out) else ""
            print(f"error: the aggregator was killed by {signal.Signals(-code).name} (the OOM killer sends SIGKILL){resume}",
                  file=sys.stderr)
            return 1
        if code != 0 and not self.interrupted:
            return self._fail(f"the aggregator exited with code {code}")
        try:  # the documents the aggregator wrote when it finished or was stopped
            docs = read_documents(aggregator_result_dir(self.out))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if docs is None:
            print("stopped before the first completed iteration; nothing to write", file=sys.stderr)
            return EXIT_INTERRUPTED if self.interrupted else 1
        info, policy, history = docs
        reason = str(info["stopReason"]) or ("interrupted" if self.interrupted else last.get("reason", ""))
        info["stopReason"] = reason
        status_file = aggregator_result_dir(self.out) / "status.json"
        failed = status_file.exists() and json.loads(status_file.read_text()).get("phase") == "Failed"
        if failed and not info["iterations"]:  # nothing trained: no folder, no evaluation of the initial policy
            print(f"error: the job failed before its first iteration: {reason}\nlogs: {self.logs}", file=sys.stderr)
            return 1
        write_folder(self.out, policy, info, history, self.job.spec.environment.id)
        add_fresh_eval(self.out, self.fresh, why_not="the run was interrupted" if self.interrupted else "")
        add_clip(self.out, enabled=self.video and not self.interrupted,
                 why_not="the run was interrupted" if self.interrupted else "--no-video")
        best = info["bestReward"]
        print(f"stopped: {reason}; best reward {best_text(best)} after "
              f"{info['episodes']} episodes, {info['envSteps']} env steps, {wall:.0f} s")
        if self.interrupted:
            print(self._resume_hint)
            return EXIT_INTERRUPTED
        print(f"results: {self.out}")
        if failed:
            print(f"error: the job failed: {reason}", file=sys.stderr)
            return 1
        return 0
