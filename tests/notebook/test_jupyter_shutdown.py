"""Kernel shutdown through a real jupyter_server's REST API, with Jupyter's default
timings (jupyter_client sends SIGTERM 2.5 s after the shutdown request, SIGKILL at 5 s):
the applets are deactivated, clients get an answer or a clean close, the log ends
with "Hanji stopped."."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from support.jupyter import JupyterProcess
from support.net import free_port
from support.polling import wait_until

WAIT = 60.0  # a hang guard, never a timed assertion

# The cell a user would run: an applet with a request that finishes within the drain,
# one that never does, a websocket endpoint, and a slow on_deactivate.
CELL = r'''
%load_ext hanji
import json, pathlib, time
import hanji
from twisted.internet import defer, reactor, task
from hanji.core.applet import Applet, WebUI
from hanji.core.utils import TwAppletResource, TwAppletWebSocket
from hanji.notebook.session import get_session

class Soon(TwAppletResource):
    path = "soon"
    def render_GET(self, request):
        return task.deferLater(reactor, 1.0, lambda: "finished")

class Never(TwAppletResource):
    path = "never"
    def render_GET(self, request):
        return defer.Deferred()

class Room(TwAppletWebSocket):
    path = "room"

class Bye(Applet):
    def on_deactivate(self):
        time.sleep(0.5)
        pathlib.Path("deactivated.txt").write_text("yes")

class ByeWeb(WebUI):
    twisted_dynamic_resources = [Soon, Never]
    websocket_resources = [Room]

hanji.activate(Bye(id="bye"), web=ByeWeb)
print("HANJI " + json.dumps({"url": hanji.url(), "token": get_session().token}))
'''


@pytest.fixture(params=["jupyter_server", "jupyterlab"])
def jupyter(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[JupyterProcess]:
    """A ``jupyter server``, then a ``jupyter lab``, rooted in an empty folder (Hanji's
    data dir lands there); Jupyter's default settings otherwise."""
    env = dict(os.environ, HANJI_PORT=str(free_port()), JUPYTER_CONFIG_DIR=str(tmp_path / ".jupyter-config"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / ".lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / ".lab-workspaces"))
    env.pop("HANJI_DRAIN_TIMEOUT", None)
    server = JupyterProcess(tmp_path, env, module=request.param)
    yield server
    server.stop()


def _get(url: str, token: str, results: dict[str, Any], key: str) -> None:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as answer:
            results[key] = (answer.status, answer.read().decode())
    except urllib.error.HTTPError as err:
        results[key] = (err.code, err.read().decode())
    except OSError as exc:
        results[key] = (None, repr(exc))


def _watch_ws(url: str, token: str, results: dict[str, Any]) -> None:
    try:
        with connect(url, additional_headers={"Authorization": f"token {token}"}, open_timeout=WAIT) as ws:
            results["ws_open"] = True
            ws.recv(timeout=WAIT)
    except ConnectionClosed as exc:
        results["ws"] = exc.rcvd.code if exc.rcvd is not None else None
    except Exception as exc:  # noqa: BLE001 - reported in the assertion
        results["ws"] = repr(exc)


@pytest.mark.parametrize("drain", ["default", "longer than SIGTERM's delay"])
def test_kernel_shutdown_from_jupyter_runs_the_cleanup(jupyter: JupyterProcess, tmp_path: Path, drain: str) -> None:
    """Shutting a kernel down through jupyter_server's REST API with requests and a
    websocket in flight: the finishing request gets its answer, the one that never
    finishes a 503, the websocket 1001, on_deactivate runs, the log ends with "Hanji
    stopped."; with a drain longer than jupyter_client's 2.5 s before SIGTERM, the
    SIGTERM cuts the drain short and the deactivation still runs."""
    status, kernel = jupyter.api("POST", "/api/kernels", {"name": "python3"})
    assert status == 201, kernel
    code = CELL
    if drain != "default":
        code = "import os; os.environ['HANJI_DRAIN_TIMEOUT'] = '20'\n" + CELL
    printed = jupyter.execute(kernel["id"], code)
    info = json.loads(printed.split("HANJI ", 1)[1].splitlines()[0])
    base, token = info["url"].rstrip("/"), info["token"]

    results: dict[str, Any] = {}
    threads = [threading.Thread(target=_get, args=(f"{base}/res/bye/soon", token, results, "soon")),
               threading.Thread(target=_get, args=(f"{base}/res/bye/never", token, results, "never")),
               threading.Thread(target=_watch_ws, args=(base.replace("http", "ws", 1) + "/ws/bye/room",
                                                        token, results))]
    for thread in threads:
        thread.start()
    wait_until(lambda: results.get("ws_open"), WAIT, "the websocket did not open")
    time.sleep(0.3)  # the two requests are in flight

    status, _ = jupyter.api("DELETE", f"/api/kernels/{kernel['id']}")  # Jupyter's default timings
    assert status == 204
    for thread in threads:
        thread.join(WAIT)

    assert results["soon"] == (200, "finished")
    assert results["never"][0] == 503 and "Hanji is stopping" in results["never"][1]
    assert results["ws"] == 1001
    assert (tmp_path / "deactivated.txt").read_text() == "yes"
    lines = [ln for ln in (tmp_path / ".hanji" / "hanji.log").read_text().splitlines() if " hanji" in ln]
    assert lines[-1].endswith("Hanji stopped."), lines[-5:]
