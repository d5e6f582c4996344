"""One container as a local process: start, readiness probes, restart with back-off, graceful stop.

Each process runs in its own session (process group), so a stop signals it and its children.
Readiness and startup probe periods are capped at `probe_period` seconds (the pod's 10 s would
make tests slow); liveness keeps the pod's own timing; thresholds and timeouts are the pod's. Restarts follow restartPolicy with the kubelet's doubling
back-off, from `backoff` seconds up to 30 s, reset after 60 s of running.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.simcluster.podspec import Launch
from tests.simcluster.runc import RuncBox

log = logging.getLogger("simcluster.container")
Obj = dict[str, Any]


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class State:
    """What containerStatuses reports; `changed` tells the kubelet to write it."""

    pid: int | None = None
    running_since: str | None = None
    ready: bool = False
    restart_count: int = 0
    last_exit: tuple[int, str, str, str] | None = None  # exit code, reason, started, finished
    last_message: str = ""  # the termination message of the last exit
    waiting_reason: str | None = "ContainerCreating"
    finished: bool = False  # will not run again (policy says so, or stopped)
    history: list[int] = field(default_factory=list)  # exit codes, for tests and logs


async def probe_once(probe: Obj, ports: dict[str, int], port_map: dict[int, int], env: dict[str, str],
                     box: RuncBox | None = None) -> bool:
    """One readiness/liveness check against the container's mapped port; True when it passes.
    An exec probe runs inside the container (`runc exec`) in container mode."""
    timeout = float(probe.get("timeoutSeconds", 1))

    def local(port: int | str) -> int:
        number = ports.get(str(port)) if not str(port).isdigit() else int(port)
        if number is None:
            raise ValueError(f"probe port {port!r} is not a containerPort")
        return port_map.get(number, number)

    try:
        if "grpc" in probe:
            target = f"127.0.0.1:{local(probe['grpc']['port'])}"
            async with grpc.aio.insecure_channel(target, options=(("grpc.enable_http_proxy", 0),)) as ch:
                reply = await health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service=probe["grpc"].get("service", "")), timeout=timeout)
                return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        if "httpGet" in probe:
            get = probe["httpGet"]
            url = f"http://127.0.0.1:{local(get['port'])}{get.get('path', '/')}"
            async with aiohttp.ClientSession() as s, s.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                return 200 <= r.status < 400
        if "tcpSocket" in probe:
            _, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", local(probe["tcpSocket"]["port"])), timeout)
            w.close()
            return True
        if "exec" in probe:
            argv = box.exec_argv(probe["exec"]["command"]) if box is not None else probe["exec"]["command"]
            p = await asyncio.create_subprocess_exec(*argv, env=env if box is None else None,
                                                     stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            return await asyncio.wait_for(p.wait(), timeout) == 0
    except (grpc.RpcError, aiohttp.ClientError, OSError, TimeoutError, ValueError):
        return False
    return True


class Container:
    """Runs one container of a pod until stopped, following restartPolicy."""

    def __init__(self, spec: Obj, launch: Launch, port_map: dict[int, int], restart_policy: str,
                 log_path: Path, on_change: Callable[[], None], backoff: float = 1.0, probe_period: float = 1.0,
                 box: RuncBox | None = None) -> None:
        self.spec = spec
        self.name = str(spec["name"])
        self.launch = launch
        self.port_map = port_map
        self.restart_policy = restart_policy
        self.log_path = log_path
        self.on_change = on_change
        self.backoff = backoff
        self.probe_period = probe_period
        self.state = State()
        self.box = box  # container mode: run with runc (runc.py) instead of as a local process
        self.proc: asyncio.subprocess.Process | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._ports = {str(p.get("name") or p["containerPort"]): int(p["containerPort"]) for p in spec.get("ports") or ()}

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"container {self.name}")

    async def _run(self) -> None:
        delay = self.backoff
        while not self._stopping:
            started = time.monotonic()
            start_stamp = now()
            self.state.last_message = ""
            with self.log_path.open("ab") as out:
                log_start = out.tell()
                argv, env, cwd = self.launch.argv, self.launch.env, self.launch.cwd
                if self.box is not None:  # runc gets the launch inside its config.json
                    argv, env, cwd = self.box.run_argv(), dict(os.environ), str(self.box.bundle)
                try:
                    self.proc = await asyncio.create_subprocess_exec(
                        *argv, env=env, cwd=cwd,
                        stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
                except OSError as exc:
                    out.write(f"simcluster: cannot start {argv}: {exc}\n".encode())
                    self.state.last_exit = (128, "StartError", start_stamp, now())
                    self.proc = None
            pid = self.proc.pid if self.proc is not None else None
            if self.proc is not None and self.box is not None and await self.box.started(self.proc) is None:
                code = await self.proc.wait()  # runc could not create the container: its error is in the log
                self.state.last_exit = (128, "StartError", start_stamp, now())
                self.state.last_message = self.log_path.read_bytes()[log_start:].decode(errors="replace").strip()[-1024:]
                self.state.history.append(code)
                await self.box.delete()
                self.proc = pid = None
            elif self.box is not None:
                pid = self.box.pid
            if self.proc is not None and self._stopping:  # stop() began while this process started
                self._signal(self.proc, signal.SIGTERM)
            if self.proc is not None:
                self.state.pid = pid
                self.state.running_since = start_stamp
                self.state.waiting_reason = None
                self.on_change()
                probing = [asyncio.create_task(self._probe_loop()), asyncio.create_task(self._liveness_loop(self.proc))]
                code = await self.proc.wait()
                for task in probing:
                    task.cancel()
                reason = "Completed" if code == 0 else ("Error" if code > 0 else f"Signal{-code}")
                self.state.last_exit = (code, reason, start_stamp, now())
                self.state.last_message = self._termination_message(code, log_start)
                self.state.history.append(code)
                log.info("container %s (pid %s) exited %s", self.name, pid, code)
                if self.box is not None:
                    await self.box.delete()
            self.state.pid, self.state.running_since, self.state.ready = None, None, False
            code = self.state.last_exit[0] if self.state.last_exit else 1
            again = self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and code != 0)
            if self._stopping or not again:
                self.state.finished = True
                self.on_change()
                return
            if time.monotonic() - started > 60:
                delay = self.backoff
            self.state.restart_count += 1
            self.state.waiting_reason = "CrashLoopBackOff" if delay > self.backoff else None
            self.on_change()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wait_stopping(), delay)
            delay = min(delay * 2, 30.0)
        self.state.finished = True
        self.on_change()

    async def _wait_stopping(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.1)

    async def _probe_loop(self) -> None:
        probe = self.spec.get("readinessProbe")
        if probe is None:
            self.state.ready = True
            self.on_change()
            return
        await asyncio.sleep(min(float(probe.get("initialDelaySeconds", 0)), self.probe_period))
        fails = ok = 0
        while True:
            passed = await probe_once(probe, self._ports, self.port_map, self.launch.env, self.box)
            fails, ok = (0, ok + 1) if passed else (fails + 1, 0)
            ready = self.state.ready
            if ok >= int(probe.get("successThreshold", 1)):
                ready = True
            elif fails >= int(probe.get("failureThreshold", 3)):
                ready = False
            if ready != self.state.ready:
                self.state.ready = ready
                self.on_change()
            await asyncio.sleep(min(float(probe.get("periodSeconds", 10)), self.probe_period))

    async def _liveness_loop(self, proc: asyncio.subprocess.Process) -> None:
        """Kills the process after failureThreshold failed liveness checks, once the startup probe
        passed. Uses the pod's own period (not the capped one): never more eager than a kubelet."""
        startup, live = self.spec.get("startupProbe"), self.spec.get("livenessProbe")
        if live is None:
            return
        if startup is not None:
            fails = 0
            while not await probe_once(startup, self._ports, self.port_map, self.launch.env, self.box):
                fails += 1
                if fails >= int(startup.get("failureThreshold", 3)):
                    break  # the liveness checks below decide
                await asyncio.sleep(min(float(startup.get("periodSeconds", 10)), self.probe_period))
        await asyncio.sleep(float(live.get("initialDelaySeconds", 0)))
        fails = 0
        while True:
            fails = 0 if await probe_once(live, self._ports, self.port_map, self.launch.env, self.box) else fails + 1
            if fails >= int(live.get("failureThreshold", 3)):
                log.warning("container %s (pid %s): liveness probe failed %d times; killing it", self.name, proc.pid, fails)
                self._signal(proc, signal.SIGKILL)
                return
            await asyncio.sleep(float(live.get("periodSeconds", 10)))

    async def stop(self, grace: float) -> None:
        """SIGTERM the process group, SIGKILL after `grace` seconds; no restart afterwards.

        A process the run loop is starting right now is signalled by the loop itself (it checks
        `_stopping` once the process exists), so the stop never leaves one behind."""
        self._stopping = True
        first = self.proc
        if first is not None and first.returncode is None:
            self._signal(first, signal.SIGTERM)
        if self._task is not None and not self._task.done():
            done, _ = await asyncio.wait({self._task}, timeout=grace)
            if not done:  # past the grace period: kill whatever runs now
                if self.proc is not None and self.proc.returncode is None:
                    self._signal(self.proc, signal.SIGKILL)
                await asyncio.wait({self._task}, timeout=5)
        for proc in {first, self.proc} - {None}:  # leftovers of the groups (children)
            assert proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self.box is not None:  # a container runc still holds (the loop was cancelled)
            await self.box.delete()
            self.box.release()

    def _signal(self, proc: asyncio.subprocess.Process, sig: int) -> None:
        """SIGTERM/SIGKILL for the container: its process group, or, under runc, its init process
        (as `runc kill` does; until runc reports that pid, runc itself, which forwards SIGTERM)."""
        if self.box is not None and self.box.pid is not None:
            self.box.signal(sig)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def status(self, image: str) -> Obj:
        """This container's entry in pod.status.containerStatuses."""
        s = self.state
        out: Obj = {"name": self.name, "image": image, "imageID": "", "ready": s.ready,
                    "restartCount": s.restart_count, "started": s.pid is not None}
        if s.pid is not None:
            out["state"] = {"running": {"startedAt": s.running_since}}
            out["containerID"] = f"simcluster://{s.pid}"
        elif s.finished and s.last_exit is not None:
            out["state"] = {"terminated": self._terminated(s.last_exit)}
        else:
            out["state"] = {"waiting": {"reason": s.waiting_reason or "ContainerCreating"}}
        if s.last_exit is not None and not (s.finished and s.pid is None):
            out["lastState"] = {"terminated": self._terminated(s.last_exit)}
        return out

    def _terminated(self, e: tuple[int, str, str, str]) -> Obj:
        out: Obj = {"exitCode": e[0], "reason": e[1], "startedAt": e[2], "finishedAt": e[3]}
        if self.state.last_message:
            out["message"] = self.state.last_message
        return out

    def _termination_message(self, code: int, log_start: int) -> str:
        """What the kubelet reports as the exit's message. No process here writes
        terminationMessagePath, so only FallbackToLogsOnError gives one: after a failure, the
        tail of this run's log, at most 80 lines and 2048 bytes, as the kubelet cuts it."""
        if code == 0 or self.spec.get("terminationMessagePolicy") != "FallbackToLogsOnError":
            return ""
        try:
            with self.log_path.open("rb") as f:
                f.seek(log_start)
                data = f.read()
        except OSError:
            return ""
        tail = b"\n".join(data.rstrip(b"\n").split(b"\n")[-80:])[-2048:]
        return tail.decode(errors="replace")
