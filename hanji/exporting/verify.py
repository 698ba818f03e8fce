"""``verify=True``: serve the exported package with ``hanji serve`` on a free port and
a fresh data dir, replay the requests the notebook made to the applet, and compare
the answers (status and body); cell thread (blocks on the subprocess and sockets).

Only the requests answered by the version being exported are replayed
(:mod:`hanji.notebook.recorded`), in their order, so state built by earlier requests
(rows created by a POST) is built again. A fresh data dir means the rows the notebook
created otherwise (in cells) are not there: an answer that depends on them, or on
anything else of the kernel, is reported as a difference, which is the point.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

START_TIMEOUT = 60.0
_KERNEL_ONLY = {"HANJI_DATA", "HANJI_APPLETS", "HANJI_PORT", "HANJI_PUBLIC_URL", "HANJI_INSTALLED_APPLETS"}


@dataclasses.dataclass(frozen=True)
class Difference:
    """One replayed request whose answer differs from the notebook's."""

    method: str
    path: str
    expected_status: int
    expected_body: bytes
    status: int
    body: bytes

    def __str__(self) -> str:
        def short(body: bytes) -> str:
            text = body.decode("utf-8", "replace")
            return repr(text if len(text) <= 200 else text[:200] + "…")

        if self.status != self.expected_status:
            what = f"status {self.status} instead of {self.expected_status}, body {short(self.body)}"
        else:
            what = f"body {short(self.body)} instead of {short(self.expected_body)}"
        return f"{self.method} {self.path}: {what}"


@dataclasses.dataclass
class VerifyReport:
    """The replay of the notebook's requests against the exported package."""

    applet: str
    url: str
    replayed: int
    differences: list[Difference]
    activated: bool = True  # the served package's applet became active
    log: str = ""  # the server's stderr, when something went wrong

    @property
    def ok(self) -> bool:
        return self.activated and not self.differences

    def __repr__(self) -> str:
        if not self.activated:
            return (f"verify: the package's applet '{self.applet}' did not become active under hanji serve; "
                    f"its log:\n{self.log[-3000:]}")
        if not self.replayed:
            return (f"verify: the notebook made no request to applet '{self.applet}' since its last "
                    f"activation; nothing to replay (call it with hanji.get/hanji.post first).")
        if self.ok:
            return f"verify: {self.replayed} requests replayed against the package at {self.url}/: same answers."
        lines = [f"verify: {len(self.differences)} of {self.replayed} answers differ at {self.url}/:"]
        lines += [f"  {d}" for d in self.differences]
        return "\n".join(lines)


class _Server:
    """``hanji serve`` on the exported package alone, in a subprocess, with a
    temporary applets folder and data dir that :meth:`stop` removes."""

    def __init__(self, package: Path, timeout: float) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="hanji-verify-"))
        applets = self.tmp / "applets"
        applets.mkdir()
        (applets / package.name).symlink_to(package, target_is_directory=True)
        ready = self.tmp / "ready.json"
        self.stderr_path = self.tmp / "serve.stderr"
        # Not the kernel's data dir, applets, port or URL (its settings are kept).
        env = {k: v for k, v in os.environ.items() if k not in _KERNEL_ONLY}
        env["PYTHONUNBUFFERED"] = "1"
        env["HANJI_TOKEN"] = secrets.token_urlsafe(24)  # as the notebook's calls, past the CSRF check
        cmd = [sys.executable, "-m", "hanji", "serve", "--port", "0", "--applets", str(applets),
               "--data", str(self.tmp / "data"), "--ready-file", str(ready)]
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, cwd=self.tmp, env=env)
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self.proc.poll() is not None:
                log = self.log
                self.stop()
                raise RuntimeError(f"hanji serve exited with {self.proc.returncode}:\n{log}")
            if time.monotonic() > deadline:
                log = self.log
                self.stop()
                raise RuntimeError(f"hanji serve was not ready within {timeout:g} s:\n{log}")
            time.sleep(0.05)  # polling a file the child writes once
        info = json.loads(ready.read_text())
        self.url, self.token = str(info["url"]), info.get("token")

    @property
    def log(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def request(self, method: str, path: str, headers: dict[str, list[str]], body: bytes | None) -> tuple[int, bytes]:
        """Send one request to the server with its token; return the status and body."""
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        try:
            sent = {k: ", ".join(v) for k, v in headers.items()}
            if self.token:
                sent["X-Hanji-Token"] = self.token
            conn.request(method, path, body=body, headers=sent)
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 30 s) and remove its folder."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)


def replay(applet: str, package: Path, exchanges: list[Any], timeout: float = START_TIMEOUT) -> VerifyReport:
    """Serve ``package`` and replay ``exchanges`` (:class:`hanji.notebook.recorded.Exchange`)
    against it; return the report. Raise RuntimeError with the server's log if it does
    not start."""
    server = _Server(package, timeout)
    try:
        # Logged by hanji serve's activation, before it writes its ready file.
        if f"Applet '{applet}' active" not in server.log:
            return VerifyReport(applet, server.url, 0, [], activated=False, log=server.log)
        differences = []
        for e in exchanges:
            status, body = server.request(e.method, e.path, e.headers, e.body)
            if status != e.status or body != e.content:
                differences.append(Difference(e.method, e.path, e.status, e.content, status, body))
        return VerifyReport(applet, server.url, len(exchanges), differences,
                            log=server.log if differences else "")
    finally:
        server.stop()
