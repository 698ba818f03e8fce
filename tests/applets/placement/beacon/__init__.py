"""beacon: an "exactly one" applet for the placement and several-hosts tests.

Its ``on_activate`` listens on the fixed port ``HANJI_BEACON_PORT`` (on 127.0.0.1),
which answers each connection with this process's id; every process serves its web
UI (webUI.py) and its Django views (urls.py): the process id, a CSRF-protected form,
Django's cache, and a websocket feed that broadcasts what ``/res/beacon/shout``
receives.
"""

import os

from twisted.internet.protocol import Factory, Protocol

from hanji.core import applet as _applet


class _SayPid(Protocol):
    def connectionMade(self):
        self.transport.write(f"{os.getpid()}\n".encode())
        self.transport.loseConnection()


class Applet(_applet.Applet):
    name = "Beacon"
    description = "Listens on a fixed port in exactly one process."
    placement = _applet.Placement.ONE

    def on_activate(self):
        self.logger.info("beacon on_activate in process %d", os.getpid())
        port = int(os.environ.get("HANJI_BEACON_PORT", "0"))
        self.listen_tcp(port, Factory.forProtocol(_SayPid), interface="127.0.0.1")

    def on_deactivate(self):
        self.logger.info("beacon on_deactivate in process %d", os.getpid())


applet = Applet()
