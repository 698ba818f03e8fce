"""Real Jupyter kernels for the notebook and data tests, driven through jupyter_client.

Each kernel gets its own data dir (``HANJI_DATA``), an ephemeral port
(``HANJI_PORT=0``), the echo applet's port 0 and the repo's ``applets/`` unless a
test asks otherwise. One kernel is shared per test module where the tests allow it.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

from support.paths import APPLETS

# The access token of the kernels' servers, so tests can call them from outside.
KERNEL_TOKEN = "kernel-test-token"


class CellResult:
    """Everything one executed cell produced."""

    def __init__(self, reply: dict[str, Any], outputs: list[dict[str, Any]]) -> None:
        self.reply = reply
        self.outputs = outputs

    @property
    def ok(self) -> bool:
        return self.reply["content"]["status"] == "ok"

    @property
    def stdout(self) -> str:
        return "".join(o["content"]["text"] for o in self.outputs
                       if o["msg_type"] == "stream" and o["content"]["name"] == "stdout")

    @property
    def stderr(self) -> str:
        return "".join(o["content"]["text"] for o in self.outputs
                       if o["msg_type"] == "stream" and o["content"]["name"] == "stderr")

    def data(self, mime: str = "text/plain") -> list[str]:
        """Return the ``mime`` parts of the displayed values and results."""
        return [o["content"]["data"][mime] for o in self.outputs
                if o["msg_type"] in ("display_data", "execute_result") and mime in o["content"]["data"]]

    @property
    def text(self) -> str:
        """Everything printed or displayed as text, in order."""
        parts = []
        for o in self.outputs:
            if o["msg_type"] == "stream":
                parts.append(o["content"]["text"])
            elif o["msg_type"] in ("display_data", "execute_result"):
                parts.append(o["content"]["data"].get("text/plain", "") + "\n")
        return "".join(parts)

    @property
    def error(self) -> dict[str, Any] | None:
        for o in self.outputs:
            if o["msg_type"] == "error":
                return o["content"]
        return None

    @property
    def error_text(self) -> str:
        err = self.error
        if err is None:
            return ""
        return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(err["traceback"]))

    def __repr__(self) -> str:
        return f"<CellResult ok={self.ok}\n{self.text}\n{self.error_text}>"


class Kernel:
    """A real IPython kernel in a subprocess, with a blocking client."""

    def __init__(self, tmp: Path, env: dict[str, str] | None = None, applets: Path | None = APPLETS,
                 cwd: Path | None = None) -> None:
        self.data = tmp / "data"
        full_env = dict(os.environ)
        full_env.update({
            "HANJI_DATA": str(self.data),
            "HANJI_APPLETS": str(applets) if applets is not None else str(tmp / "no-applets"),
            "HANJI_ECHO_PORT": "0",
            "HANJI_PORT": "0",
            "HANJI_TOKEN": KERNEL_TOKEN,
            "PYTHONUNBUFFERED": "1",
        })
        (tmp / "no-applets").mkdir(exist_ok=True)
        full_env.update(env or {})
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=full_env, cwd=str(cwd or tmp))
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 90) -> CellResult:
        """Execute ``code`` as a cell and return what it produced."""
        outputs: list[dict[str, Any]] = []
        reply = self.kc.execute_interactive(textwrap.dedent(code), output_hook=outputs.append,
                                            timeout=timeout, allow_stdin=False)
        return CellResult(reply, outputs)

    def ok(self, code: str, timeout: float = 90) -> CellResult:
        """Execute ``code`` and fail the test if the cell raised."""
        result = self.run(code, timeout)
        assert result.ok, result
        return result

    def value(self, expr: str) -> Any:
        """Return the value of a Python literal expression evaluated in the kernel."""
        import ast

        result = self.ok(f"print(repr(({expr})))")
        return ast.literal_eval(result.stdout.strip().splitlines()[-1])

    def shutdown(self) -> None:
        """Stop the client's channels and shut the kernel down."""
        try:
            self.kc.stop_channels()
        finally:
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=False)


def open_url(url: str, timeout: float = 30) -> Any:
    """``urllib.request.urlopen(url)`` with the kernels' access token header."""
    import urllib.request

    request = urllib.request.Request(url, headers={"Authorization": f"token {KERNEL_TOKEN}"})
    return urllib.request.urlopen(request, timeout=timeout)

