"""One worker process seen from the supervisor; supervisor process, main thread.

A worker is ``python -m hanji serve …`` started with ``subprocess`` (a fresh
interpreter, never a fork of the supervisor), given the listening socket and the
write end of a pipe through ``pass_fds``. On the pipe it writes one byte per event
(:mod:`hanji.supervisor.link`): ``R`` once it serves with its applets active, ``H``
for each heartbeat of its reactor.
"""

from __future__ import annotations

import enum
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

READY = b"R"
HEARTBEAT = b"H"


class WorkerState(enum.Enum):
    """Where a worker is in its life; transitions only go down this list."""

    BOOTING = "booting"  # started, not ready yet
    READY = "ready"  # serving
    STOPPING = "stopping"  # sent SIGTERM (draining) or SIGKILL; no longer counted
    EXITED = "exited"  # reaped


_NEXT = {
    WorkerState.BOOTING: {WorkerState.READY, WorkerState.STOPPING, WorkerState.EXITED},
    WorkerState.READY: {WorkerState.STOPPING, WorkerState.EXITED},
    WorkerState.STOPPING: {WorkerState.EXITED},
    WorkerState.EXITED: set(),
}


class Worker:
    """A started worker process, its pipe and its heartbeat; supervisor main thread."""

    def __init__(self, worker_id: int, generation: int, argv: Sequence[str], env: Mapping[str, str],
                 listen_fd: int) -> None:
        self.id = worker_id
        self.generation = generation
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        self.pipe = read_fd
        command = [sys.executable, "-m", "hanji", *argv, "--worker-link", f"{listen_fd},{write_fd}"]
        try:
            # process_group=0: a Ctrl-C in the terminal reaches the supervisor only,
            # which drains the workers itself (each exactly once).
            self.proc = subprocess.Popen(command, env=dict(env), pass_fds=(listen_fd, write_fd),
                                         stdin=subprocess.DEVNULL, process_group=0)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # the worker holds it; EOF on our end once it exits
        self.pid = self.proc.pid
        self.started = time.monotonic()
        self.last_message = self.started
        self.heard = False  # any message yet: the heartbeat deadline applies from then on
        self.state = WorkerState.BOOTING
        self.reason = ""  # why it was stopped, for the exit line in the log
        self.kill_at: float | None = None  # when to SIGKILL it if still alive

    def __repr__(self) -> str:
        return f"worker {self.id} (pid {self.pid})"

    @property
    def counted(self) -> bool:
        """Return True while the worker counts towards the wanted number (booting or ready)."""
        return self.state in (WorkerState.BOOTING, WorkerState.READY)

    def move(self, state: WorkerState) -> None:
        """Change state; raise RuntimeError on a transition the life of a worker forbids."""
        if state not in _NEXT[self.state]:
            raise RuntimeError(f"{self!r}: no transition from {self.state.value} to {state.value}")
        self.state = state

    def read(self) -> bytes:
        """Return the bytes waiting on the pipe (b"" at EOF or when there are none)."""
        chunks = []
        while True:
            try:
                data = os.read(self.pipe, 4096)
            except BlockingIOError:
                break
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        got = b"".join(chunks)
        if got:
            self.last_message = time.monotonic()
            self.heard = True
        return got

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the worker if it has not been reaped."""
        if self.proc.returncode is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass

    def terminate(self, reason: str, deadline: float) -> None:
        """Ask the worker to drain and exit (SIGTERM); SIGKILL it at ``deadline``."""
        self.move(WorkerState.STOPPING)
        self.reason = reason
        self.kill_at = deadline
        self.signal(signal.SIGTERM)

    def kill(self, reason: str, after: float = 0.0) -> None:
        """Dump the worker's Python stacks to stderr (SIGUSR2, see link.py), then
        SIGKILL it ``after`` seconds later (at once with 0)."""
        if self.state is not WorkerState.STOPPING:
            self.move(WorkerState.STOPPING)
        self.reason = reason
        if after > 0:
            self.signal(signal.SIGUSR2)
            self.kill_at = time.monotonic() + after
        else:
            self.kill_at = None
            self.signal(signal.SIGKILL)

    def poll(self) -> int | None:
        """Reap the worker if it exited; return its exit code (negative: the signal)."""
        code = self.proc.poll()
        if code is not None and self.state is not WorkerState.EXITED:
            self.move(WorkerState.EXITED)
            os.close(self.pipe)
        return code


def describe_exit(code: int) -> str:
    """Return "exited with code 3" or "was killed by SIGKILL" for ``code``."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"
