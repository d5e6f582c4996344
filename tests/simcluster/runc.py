"""Container mode: runs one container with runc (`runc run` in the foreground, one bundle each).

`runc run` stays the child the Container waits on; its exit status is the container's (128 + the
signal for a killed one, as Kubernetes reports). Signals go to the container's init process by
its host pid (what `runc kill` does), so SIGTERM reaches the entry point and SIGKILL ends the
whole pid namespace. Exec probes run with `runc exec`. A writable root filesystem
(readOnlyRootFilesystem unset or false) is an overlay of the shared image root, one per container.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

Obj = dict[str, Any]


class RuncBox:
    """One container's bundle (config.json) and runc state; reused across its restarts."""

    def __init__(self, container_id: str, state_root: Path, bundle: Path, config: Obj, image_rootfs: Path) -> None:
        self.id = container_id
        self.root = state_root
        self.bundle = bundle
        self.pid_file = bundle / "init.pid"
        self.pid: int | None = None
        self._overlay = not config["root"]["readonly"]
        bundle.mkdir(parents=True, exist_ok=True)
        if self._overlay:
            merged = bundle / "rootfs"
            for d in ("upper", "work", "rootfs"):
                (bundle / d).mkdir(exist_ok=True)
            subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                            f"lowerdir={image_rootfs},upperdir={bundle / 'upper'},workdir={bundle / 'work'}", str(merged)],
                           check=True, capture_output=True, text=True)
            config = {**config, "root": {"path": str(merged), "readonly": False}}
        (bundle / "config.json").write_text(json.dumps(config, indent=1))

    def runc(self, *args: str) -> list[str]:
        return ["runc", "--root", str(self.root), *args]

    def run_argv(self) -> list[str]:
        self.pid_file.unlink(missing_ok=True)
        return self.runc("run", "--bundle", str(self.bundle), "--pid-file", str(self.pid_file), self.id)

    async def started(self, runner: asyncio.subprocess.Process, timeout: float = 30) -> int | None:
        """The container's init pid once runc has started it; None if runc exited without starting
        it. A container that exits at once still left its pid file: it started (and ran)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            exited = runner.returncode is not None
            with contextlib.suppress(OSError, ValueError):
                self.pid = int(self.pid_file.read_text().strip())
                return self.pid
            if exited or loop.time() > deadline:
                return None
            await asyncio.sleep(0.02)

    def signal(self, sig: int) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def exec_argv(self, command: list[str]) -> list[str]:
        return self.runc("exec", self.id, *command)

    async def delete(self) -> None:
        """Removes runc's state of the exited container (and its cgroup), ready for a restart."""
        self.pid = None
        proc = await asyncio.create_subprocess_exec(*self.runc("delete", "--force", self.id),
                                                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await proc.wait()

    def release(self) -> None:
        """Unmounts a writable root's overlay; the pod's folder goes with the pod."""
        if self._overlay:
            subprocess.run(["umount", "-l", str(self.bundle / "rootfs")], check=False, capture_output=True)
            shutil.rmtree(self.bundle / "work", ignore_errors=True)
