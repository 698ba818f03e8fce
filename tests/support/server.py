"""``hanji serve`` in a subprocess on an ephemeral port, ready once it wrote its
``--ready-file`` (``{"url", "token", "pid"}``, written once listening with the applets
active); used by the ``server`` and ``start_server`` fixtures and by the bench."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from support.http import Answer, request
from support.polling import WaitTimeout, wait_until

# The tests run in debug mode (conftest.py); this env gives a server the default of `hanji serve`.
NO_DEBUG = {"HANJI_DEBUG": "0"}
START_TIMEOUT = 60.0  # seconds: a hang guard for start-up


class ServerStartError(RuntimeError):
    """``hanji serve`` exited, or did not write its ready file in time."""


@dataclasses.dataclass(frozen=True)
class Ready:
    """What a started server wrote to its ready file."""

    url: str
    token: str | None
    pid: int


def serve_arguments(applet_dirs: Sequence[Path], data: Path, ready_file: Path, args: Sequence[str] = ()) -> list[str]:
    """Return the arguments of ``hanji serve`` on an ephemeral port (without the program)."""
    cmd = ["serve", "--port", "0", "--data", str(data), "--ready-file", str(ready_file)]
    for d in applet_dirs:
        cmd += ["--applets", str(d)]
    return cmd + list(args)


def wait_ready(ready_file: Path, proc: subprocess.Popen[bytes], log: Callable[[], str],
               timeout: float = START_TIMEOUT) -> Ready:
    """Wait until the server ``proc`` wrote ``ready_file`` and return its content; raise
    ServerStartError, with the server's ``log()``, if it exits or times out first."""

    def written() -> bool:
        if ready_file.exists():
            return True
        if proc.poll() is not None:
            raise ServerStartError(f"hanji serve exited with {proc.returncode}:\n{log()}")
        return False

    try:
        wait_until(written, timeout, "hanji serve wrote no ready file")
    except WaitTimeout:
        raise ServerStartError(f"hanji serve was not ready within {timeout:g} s:\n{log()}") from None
    return Ready(**json.loads(ready_file.read_text()))


class ServerProcess:
    """``hanji serve`` in a subprocess; started (``url``, ``token``, ``pid`` known) on return."""

    def __init__(self, tmp: Path, applet_dirs: Sequence[Path], args: Sequence[str] = (),
                 env: dict[str, str] | None = None, timeout: float = START_TIMEOUT) -> None:
        self.data = tmp / "data"
        self.stderr_path = tmp / "server.stderr"
        ready_file = tmp / "ready.json"
        cmd = [sys.executable, "-m", "hanji", *serve_arguments(applet_dirs, self.data, ready_file, args)]
        full_env = dict(os.environ, HANJI_ECHO_PORT="0", PYTHONUNBUFFERED="1")
        full_env.update(env or {})
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._stderr, env=full_env, cwd=tmp)
        try:
            ready = wait_ready(ready_file, self.proc, lambda: self.log, timeout)
        except BaseException:
            self.stop()
            raise
        self.url, self.token, self.pid = ready.url, ready.token or None, ready.pid

    @property
    def log(self) -> str:
        """Return what the server wrote to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        """Return True while the server process runs."""
        return self.proc.poll() is None

    def default_headers(self, method: str) -> dict[str, str]:
        """Return what a legitimate client sends: the server's own Origin on unsafe
        methods (CSRF check), and the access token header if the server has one."""
        headers = {}
        if method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
            headers["Origin"] = self.url
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        return headers

    def request(self, method: str, path: str, data: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float = 30) -> Answer:
        """Send a request; with ``headers`` None, those of :meth:`default_headers`,
        else exactly ``headers``."""
        sent = self.default_headers(method) if headers is None else headers
        return request(self.url + path, method, data, sent, timeout)

    def get(self, path: str, **kw: Any) -> Answer:
        """Send a GET request (see :meth:`request`)."""
        return self.request("GET", path, **kw)

    def post(self, path: str, data: bytes = b"", **kw: Any) -> Answer:
        """Send a POST request (see :meth:`request`)."""
        return self.request("POST", path, data=data, **kw)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send ``sig`` (to this server's own pid) and return the exit code; kill it and
        fail if it does not exit within ``timeout`` s."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"hanji serve did not stop within {timeout}s:\n{self.log}")
        self._stderr.close()
        return self.proc.returncode
