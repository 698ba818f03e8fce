"""A healthy applet beside faulty ones (activated after them: ids sort after theirs).

It listens on a TCP port, serves a resource and a Django view, and writes
``survivor-deactivated.txt`` in the data dir when deactivated.
"""

import os
from pathlib import Path

from twisted.internet.protocol import Factory, Protocol

from hanji.core import applet as _applet
from hanji.core.utils import TwAppletResource


class Applet(_applet.Applet):
    def on_activate(self):
        self.listen_tcp(0, Factory.forProtocol(Protocol), interface="127.0.0.1")

    def on_deactivate(self):
        (Path(os.environ["HANJI_DATA"]) / "survivor-deactivated.txt").write_text("on_deactivate ran")


class Ping(TwAppletResource):
    path = "ping"

    def render_GET(self, request):
        return {"pong": True, "ports": self.applet.ports}


class WebUI(_applet.WebUI):
    twisted_dynamic_resources = [Ping]
