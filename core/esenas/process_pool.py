"""Forked worker processes, each on its own pipe: a process pool that a dying process cannot hang.

``multiprocessing.Pool`` feeds its workers through one queue guarded by a lock shared between
processes. A worker killed while it holds that lock (a SIGTERM to the whole process group from
``timeout``, systemd or ``kill -- -PGID``, the OOM killer) never releases it, and the parent then
waits forever in ``Pool.terminate``; a worker that dies mid-task leaves ``imap`` waiting forever
too. Here each process has its own duplex pipe and nothing is shared: the parent hands the next
task to whichever process is free, keeps results in task order, and a process that dies is an
error naming it and its exit, not a hang.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, Final, cast

from esenas.lifetime import die_with_parent

#: Signals blocked while forking, until the child's initializer has set its own handlers.
STOP_SIGNALS: Final = {signal.SIGINT, signal.SIGTERM}


class PastDeadline(TimeoutError):
    """:meth:`ProcessPool.map` reached its deadline with tasks still out: close the pool."""


class WorkerDied(RuntimeError):
    """A pool process exited while it had a task."""


def _serve(conn: Connection, func: Callable[[Any], Any], init: Callable[..., None], init_args: tuple[Any, ...]) -> None:
    init(*init_args)
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the parent closed its end
            return
        if task is None:
            return
        try:
            conn.send((True, func(task)))
        except Exception as exc:  # the parent re-raises it, as Pool.imap does
            conn.send((False, exc))


class ProcessPool:
    """``n`` forked processes running ``func`` on tasks; ``init(*init_args)`` runs first in each.
    ``start="spawn"`` starts fresh interpreters instead, for a parent with threads (a gRPC server).

    Forks with SIGINT and SIGTERM blocked (``init`` unblocks them once it has set its handlers),
    so no signal lands in a child that still has the parent's handlers.
    """

    def __init__(
        self, n: int, func: Callable[[Any], Any], init: Callable[..., None], init_args: tuple[Any, ...] = (), start: str = "fork"
    ) -> None:
        ctx: Any = mp.get_context(start)
        self.procs: list[Any] = []
        self.conns: list[Connection] = []
        old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            for _ in range(n):
                ours, theirs = ctx.Pipe()
                proc = ctx.Process(target=_serve, args=(theirs, func, init, init_args), daemon=True)
                proc.start()
                theirs.close()
                self.procs.append(proc)
                self.conns.append(ours)
        except BaseException:
            self.close()
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def map(self, tasks: Sequence[Any], deadline: float | None = None) -> list[Any]:
        """``func`` of every task, in task order. Raises the first task's exception,
        :class:`WorkerDied` when a process exits while it has a task, or :class:`PastDeadline`
        once ``time.monotonic()`` passes ``deadline`` with tasks still out."""
        pending = deque(enumerate(tasks))
        out: list[Any] = [None] * len(tasks)
        busy: dict[Connection, int] = {}  # connection -> task index
        owner = {c: p for c, p in zip(self.conns, self.procs, strict=True)}

        def died(conn: Connection) -> WorkerDied:
            proc = owner[conn]
            proc.join(1)
            return WorkerDied(f"rollout process {proc.pid} exited ({_exit(proc.exitcode)}) during a task")

        def hand_out(conn: Connection) -> None:
            if pending:
                i, task = pending.popleft()
                try:
                    conn.send(task)
                except OSError as exc:  # BrokenPipeError: it is gone
                    raise died(conn) from exc
                busy[conn] = i

        for conn in self.conns:
            hand_out(conn)
        while busy:
            sentinels = {owner[c].sentinel: c for c in busy}
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise PastDeadline(f"{len(busy) + len(pending)} of {len(tasks)} tasks still out at the deadline")
            for ready in wait([*busy, *sentinels], timeout=left):
                if isinstance(ready, int):  # a sentinel: that process exited
                    if sentinels[ready] in busy and not sentinels[ready].poll():
                        raise died(sentinels[ready])
                    continue  # a result it sent first is read from its connection
                conn = cast(Connection, ready)
                if conn not in busy:
                    continue
                try:
                    ok, value = conn.recv()
                except (EOFError, OSError) as exc:
                    raise died(conn) from exc
                i = busy.pop(conn)
                if not ok:
                    raise value
                out[i] = value
                hand_out(conn)
        return out

    def close(self) -> None:
        """End every process now (SIGTERM, then SIGKILL for one still there after a second)."""
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
        for proc in self.procs:
            proc.join(1)
            if proc.is_alive():
                proc.kill()
                proc.join(1)
        for conn in self.conns:
            conn.close()
        self.procs, self.conns = [], []


def _exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def unblock_stop_signals() -> None:
    """For a pool initializer, once it has set its handlers: deliver SIGINT and SIGTERM again."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def quiet_child(parent: int) -> None:
    """For a pool initializer: Ctrl-C is the parent's to handle, SIGTERM ends the process quietly
    (the default action, not a handler copied from the parent), and the process ends with
    ``parent`` (its PID, taken before the start), even one killed by SIGKILL."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    unblock_stop_signals()
    die_with_parent(parent=parent)


__all__ = ["STOP_SIGNALS", "ProcessPool", "WorkerDied", "quiet_child", "unblock_stop_signals"]
