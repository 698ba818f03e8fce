"""Stopping the throwaway processes the tests start (HAProxy, redis-server, jupyter)."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen | None, timeout: float = 30.0) -> None:  # type: ignore[type-arg]
    """Stop ``proc`` with SIGTERM, then SIGKILL if it is still there after ``timeout``
    seconds, and reap it; nothing if it already exited."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)
