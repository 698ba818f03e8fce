"""Test applet for clients that read slowly or not at all, resource exhaustion and
threads left behind (tests/server/test_reliability.py)."""

import errno
import threading
import time

from hanji.core import applet as _applet
from hanji.core.utils import TwAppletResource, TwAppletWebSocket

# Renders of Big by tag, and what the websocket hooks saw; reactor thread only.
RENDERS: dict = {}
EVENTS: list = []


class Big(TwAppletResource):
    """GET ?kb=N&tag=T: N kB of 'x' in one write, counted per tag."""

    path = "big"

    def render_GET(self, request):
        tag = request.args.get("tag", ["-"])[0]
        RENDERS[tag] = RENDERS.get(tag, 0) + 1
        return b"x" * (int(request.args.get("kb", ["100"])[0]) * 1024)


class Renders(TwAppletResource):
    """GET ?tag=T: how many times Big rendered for T."""

    path = "renders"

    def render_GET(self, request):
        return {"renders": RENDERS.get(request.args["tag"][0], 0)}


class Flood(TwAppletWebSocket):
    """A message 'N K TAG' makes the server send N messages of K bytes, ignoring what
    send() answers (it records when send() first said the connection is not
    writable), and records the close code."""

    path = "flood"
    max_send_buffer = 256 * 1024

    def on_message(self, message):
        count, size, self.tag = message.split()
        payload = b"y" * int(size)
        told = False
        for i in range(int(count)):
            if not self.send(payload) and not told:
                EVENTS.append({"tag": self.tag, "hook": "not_writable", "arg": i})
                told = True

    def on_close(self, code):
        EVENTS.append({"tag": getattr(self, "tag", None), "hook": "on_close", "arg": code})


class Hoard(Flood):
    """As Flood, with room for 64 MB of unsent data (to see it freed on close)."""

    path = "hoard"
    max_send_buffer = 64 * 1024 * 1024

    def on_message(self, message):
        count, size, self.tag = message.split()
        payload = b"h" * int(size)
        for _ in range(int(count)):
            self.send(payload)
        EVENTS.append({"tag": self.tag, "hook": "sent", "arg": int(count) * int(size)})


class Events(TwAppletResource):
    """GET ?tag=T: the websocket events recorded for T."""

    path = "events"

    def render_GET(self, request):
        tag = request.args["tag"][0]
        return [e for e in EVENTS if e["tag"] == tag]


class DiskFull(TwAppletResource):
    """GET fails as a write to a full disk does."""

    path = "diskfull"

    def render_GET(self, request):
        raise OSError(errno.ENOSPC, "No space left on device")


class Chatty(TwAppletResource):
    """GET ?n=N logs N lines of 1 kB (to fill hanji.log)."""

    path = "chatty"

    def render_GET(self, request):
        for _ in range(int(request.args.get("n", ["1"])[0])):
            self.applet.logger.info("chatty %s", "z" * 1000)
        return "logged"


class LeaveThread(TwAppletResource):
    """POST starts a plain (non-daemon) thread that never ends, as careless applet
    code does from a reactor callback."""

    path = "leave_thread"

    def render_POST(self, request):
        threading.Thread(target=lambda: time.sleep(3600), name="forgotten-worker").start()
        return "started"


class WebUI(_applet.WebUI):
    twisted_dynamic_resources = [Big, Renders, Events, DiskFull, Chatty, LeaveThread]
    websocket_resources = [Flood, Hoard]
    template = "<p>Slow peers and exhaustion tests.</p>"


applet = _applet.Applet()
