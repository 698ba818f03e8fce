"""A broadcast to many websockets starts writing as it goes (no head-of-line wait for
the end of the loop) and keeps each connection's send bound."""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from support.paths import write_applet
from support.polling import wait_until
from support.ws import RawClient

APPLET_INIT = '''from hanji.core import applet as _applet


class Applet(_applet.Applet):
    name = "Broadcast test"


applet = Applet()
'''

APPLET_WEBUI = '''import os
import time

from twisted.internet import task

from hanji.core import applet
from hanji.core.utils import TwAppletResource, TwAppletWebSocket


class Gate(TwAppletWebSocket):
    """"hold:PATH" broadcasts "news", then blocks the reactor (on purpose) until
    PATH exists, then broadcasts "after"."""

    path = "gate"
    ping_interval = None

    def on_message(self, message):
        if message.startswith("hold:"):
            release = message[5:]
            type(self).broadcast("news")
            deadline = time.monotonic() + 40  # a hang guard
            while not os.path.exists(release) and time.monotonic() < deadline:
                time.sleep(0.01)
            type(self).broadcast("after")


class Flood(TwAppletWebSocket):
    """"flood:N SIZE" broadcasts N messages of SIZE bytes, one every 5 ms."""

    path = "flood"
    ping_interval = None
    max_send_buffer = 256 * 1024
    codes = []

    def on_message(self, message):
        if message.startswith("flood:"):
            n, size = map(int, message[6:].split())
            counter = iter(range(n))

            def tick():
                i = next(counter, None)
                if i is None:
                    loop.stop()
                else:
                    type(self).broadcast(f"{i}:".ljust(size, "x"))

            loop = task.LoopingCall(tick)
            loop.start(0.005)

    def on_close(self, code):
        type(self).codes.append(code)


class Codes(TwAppletResource):
    path = "codes"

    def render_GET(self, request):
        return Flood.codes


class WebUI(applet.WebUI):
    twisted_dynamic_resources = [Codes]
    websocket_resources = [Gate, Flood]


web = WebUI()
'''

WAIT = 40.0  # seconds: a hang guard, nothing here is timed


@pytest.fixture
def castapp(tmp_path: Path) -> Path:
    """Return an applet directory holding the castapp applet."""
    return write_applet(tmp_path / "applets", "castapp", {"__init__.py": APPLET_INIT, "webUI.py": APPLET_WEBUI})


class Reader:
    """A websocket client recording every text message in a thread of its own."""

    def __init__(self, stack: contextlib.ExitStack, url: str) -> None:
        self.ws = stack.enter_context(connect(url, open_timeout=WAIT, max_size=None))
        self.messages: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                self.messages.append(str(self.ws.recv()))
        except Exception:
            pass


def test_broadcast_reaches_clients_while_the_reactor_is_still_busy(start_server: Any, castapp: Path,
                                                                   tmp_path: Path) -> None:
    """Every one of 60 clients receives a broadcast while the reactor turn that sent it has not ended (frames are not held until the loop returns)."""
    server = start_server([castapp], [], {"HANJI_STALL_MS": "0"})
    url = server.url.replace("http", "ws") + "/ws/castapp/gate"
    release = tmp_path / "release"
    with contextlib.ExitStack() as stack:
        readers = [Reader(stack, url) for _ in range(60)]
        try:
            readers[0].ws.send(f"hold:{release}")
            wait_until(lambda: all("news" in r.messages for r in readers), 20,
                       lambda: f"{sum('news' in r.messages for r in readers)} of 60 clients got the broadcast "
                               "while the reactor was busy")
        finally:
            release.write_text("go")  # unblock the reactor
        wait_until(lambda: all(r.messages == ["news", "after"] for r in readers), WAIT,
                   lambda: f"messages: {[r.messages for r in readers][:3]}")


def test_a_slow_reader_of_broadcasts_is_closed_with_1013_while_the_others_get_everything(
        start_server: Any, castapp: Path) -> None:
    """Broadcasts beyond a peer's send bound close that peer with 1013; five reading peers get all 400 messages in order."""
    server = start_server([castapp], [], {"HANJI_STALL_MS": "0"})
    url = server.url.replace("http", "ws") + "/ws/castapp/flood"
    slow = RawClient(server, "/ws/castapp/flood", rcvbuf=4096)
    try:
        with contextlib.ExitStack() as stack:
            readers = [Reader(stack, url) for _ in range(5)]
            readers[0].ws.send("flood:400 16384")
            wait_until(lambda: all(len(r.messages) >= 400 for r in readers), WAIT,
                       lambda: f"received: {[len(r.messages) for r in readers]}")
            for r in readers:
                assert [m.split(":", 1)[0] for m in r.messages] == [str(i) for i in range(400)]
                assert all(len(m) == 16384 for m in r.messages)
            codes = wait_until(lambda: json.loads(server.get("/res/castapp/codes").body), WAIT,
                               "the slow reader was not closed")
            assert codes == [1013]
    finally:
        slow.close()
