"""A real ``hanji serve`` process on an ephemeral port, for the tests (see conftest.py)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
APPLETS = ROOT / "applets"
TEST_APPLETS = ROOT / "tests" / "applets"
# The tests run in debug mode (conftest.py); this env gives a server the default of `hanji serve`.
NO_DEBUG = {"HANJI_DEBUG": "0"}


class HttpAnswer:
    """A finished HTTP exchange: status, headers and body."""

    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class ServerProcess:
    """``hanji serve`` in a subprocess; ``url`` is known once it printed it."""

    def __init__(self, tmp: Path, applet_dirs: list[Path], args: list[str] = (), env: dict[str, str] | None = None) -> None:
        self.data = tmp / "data"
        self.stderr_path = tmp / "server.stderr"
        cmd = [sys.executable, "-m", "hanji", "serve", "--port", "0", "--data", str(self.data)]
        for d in applet_dirs:
            cmd += ["--applets", str(d)]
        cmd += list(args)
        full_env = dict(os.environ, HANJI_ECHO_PORT="0", PYTHONUNBUFFERED="1")
        full_env.update(env or {})
        self._stderr = open(self.stderr_path, "wb")
        self.token: str | None = None
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._stderr, env=full_env, cwd=tmp)
        self.url = self._wait_for_url()

    def _wait_for_url(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"Hanji serves (http://\S+?)/  ", self.log)
            if match:
                url = match.group(1)
                self._wait_ready(deadline)
                # A server that requires the access token prints the URL with it.
                token = re.search(r"\?token=(\S+)", self.log)
                self.token = token.group(1) if token else None
                return url
            if self.proc.poll() is not None:
                raise RuntimeError(f"hanji serve exited with {self.proc.returncode}:\n{self.log}")
            time.sleep(0.05)
        raise RuntimeError(f"hanji serve did not start in {timeout}s:\n{self.log}")

    def _wait_ready(self, deadline: float) -> None:
        # Applets activate right after listening; wait until the activation log settles.
        while time.monotonic() < deadline:
            if "Applet activation finished" in self.log:
                return
            time.sleep(0.05)
        raise RuntimeError(f"hanji serve did not finish activating its applets in time:\n{self.log}")

    @property
    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def default_headers(self, method: str) -> dict[str, str]:
        """Return what a legitimate client sends: the server's own Origin on unsafe
        methods (CSRF check), and the access token header if the server has one."""
        headers = {}
        if method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
            headers["Origin"] = self.url
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        return headers

    def request(self, method: str, path: str, data: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 30) -> HttpAnswer:
        """Send a request; with ``headers`` None, those of :meth:`default_headers`,
        else exactly ``headers``."""
        sent = self.default_headers(method) if headers is None else headers
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return HttpAnswer(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as err:
            return HttpAnswer(err.code, err.headers, err.read())

    def get(self, path: str, **kw: Any) -> HttpAnswer:
        return self.request("GET", path, **kw)

    def post(self, path: str, data: bytes = b"", **kw: Any) -> HttpAnswer:
        return self.request("POST", path, data=data, **kw)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
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


