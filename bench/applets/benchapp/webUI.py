"""benchapp's Twisted side: a trivial resource and websocket endpoints (reactor thread)."""

import time

from hanji.core import applet
from hanji.core.utils import TwAppletResource

from .payload import HELLO


class Hello(TwAppletResource):
    """GET /res/benchapp/hello: fixed bytes, the smallest possible render."""

    path = "hello"

    def render_GET(self, request):
        return HELLO


_websockets = []
try:  # websocket support may not exist in the Hanji being measured
    from hanji.core.utils import TwAppletWebSocket
except ImportError:
    TwAppletWebSocket = None

if TwAppletWebSocket is not None:

    class Echo(TwAppletWebSocket):
        """/ws/benchapp/echo: send every message back."""

        path = "echo"

        def on_message(self, message):
            self.send(message)

    class Fanout(TwAppletWebSocket):
        """/ws/benchapp/fanout: a message starting with "broadcast:" goes to every
        open connection of this endpoint (the sender included); the sender then gets
        "took:<ms>", the time the broadcast() call took on the reactor."""

        path = "fanout"

        def on_message(self, message):
            if isinstance(message, str) and message.startswith("broadcast:"):
                t0 = time.perf_counter()
                type(self).broadcast(message)
                self.send(f"took:{(time.perf_counter() - t0) * 1000:.3f}")

    _websockets = [Echo, Fanout]


class WebUI(applet.WebUI):
    twisted_dynamic_resources = [Hello]
    websocket_resources = _websockets
    template = "<p>Benchmark endpoints: <code>/res/{{ applet.id }}/hello</code>.</p>"


web = WebUI()
