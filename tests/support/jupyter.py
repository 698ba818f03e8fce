"""A real Jupyter server (``jupyter server`` or ``jupyter lab``) for the tests: its
REST API, and cells run in its kernels through the kernel websocket, as a browser does."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from support.net import free_port
from support.polling import wait_until
from support.processes import stop_process

WAIT = 60.0  # a hang guard, never a timed assertion


class JupyterProcess:
    """A ``jupyter server`` (or ``jupyter lab``: ``module="jupyterlab"``) process with
    Jupyter's default settings but for its port, token and root folder."""

    def __init__(self, root: Path, env: dict[str, str], module: str = "jupyter_server",
                 log_path: Path | None = None) -> None:
        self.port, self.token = free_port(), uuid.uuid4().hex
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or root / "jupyter.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--no-browser", "--allow-root", f"--port={self.port}",
             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0"],
            cwd=root, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        wait_until(lambda: self._ready(), WAIT, lambda: f"{module} did not start:\n{self.log}")

    @property
    def log(self) -> str:
        """Return what the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"jupyter exited:\n{self.log}")
        try:
            return self.api("GET", "/api/status")[0] == 200
        except OSError:
            return False

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Call the REST API; return the status and the decoded JSON (None if empty)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=WAIT) as answer:
                raw = answer.read()
                return answer.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")

    def run(self, kernel_id: str, code: str) -> dict[str, Any]:
        """Run ``code`` in the kernel through the channels websocket, as JupyterLab's
        page does; return ``{"stdout", "stderr", "error"}`` (``error``: the traceback
        lines of an exception the cell raised, else None)."""
        url = f"ws://127.0.0.1:{self.port}/api/kernels/{kernel_id}/channels?token={self.token}"
        msg_id = uuid.uuid4().hex
        message = {
            "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }
        result: dict[str, Any] = {"stdout": "", "stderr": "", "error": None}
        with connect(url, open_timeout=WAIT, max_size=None) as ws:
            ws.send(json.dumps(message))
            while True:
                reply = json.loads(ws.recv(timeout=WAIT))
                if reply.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = reply["msg_type"], reply["content"]
                if kind == "stream":
                    result[content["name"]] += content["text"]
                elif kind == "error":
                    result["error"] = content["traceback"]
                elif kind == "execute_reply":
                    return result

    def execute(self, kernel_id: str, code: str) -> str:
        """Run ``code`` in the kernel (see :meth:`run`); return its stdout. Fail with
        the error the cell raised, if any."""
        result = self.run(kernel_id, code)
        if result["error"] is not None:
            raise AssertionError("the cell failed: " + "\n".join(result["error"]))
        return str(result["stdout"])

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 30 s)."""
        stop_process(self.proc)
        self._log.close()
