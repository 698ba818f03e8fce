"""echo: a line-echo TCP protocol opened in on_activate, as in the reference chapter.

The port is 1234 as there; ``HANJI_ECHO_PORT`` overrides it (0 picks a free port). It
listens on 127.0.0.1 (``HANJI_ECHO_HOST`` for another interface, ``0.0.0.0`` for all).
Hanji closes the port when the applet is deactivated or the server stops. With
several processes (``hanji serve --workers N``, several hosts) one process runs
``on_activate`` and listens (``placement = Placement.ONE``); the others serve the
web side and stand by to take over.
"""

import os

from twisted.internet import reactor
from twisted.protocols.basic import LineReceiver
from twisted.internet.protocol import Factory

from hanji.core import applet


class EchoProtocol(LineReceiver):
    delimiter = b"\n"

    def lineReceived(self, line):
        self.sendLine(line.rstrip(b"\r"))


class EchoFactory(Factory):
    protocol = EchoProtocol


class Applet(applet.Applet):
    name = "Echo"
    description = "A line-echo TCP server (port 1234, or HANJI_ECHO_PORT), opened on activation."
    # A fixed port is bound once: in exactly one process of the set, not in every worker.
    placement = applet.Placement.ONE
    port_number = None  # set by on_activate, in the process that listens

    def on_activate(self):
        self.port_number = int(os.environ.get("HANJI_ECHO_PORT", "1234"))
        my_factory = EchoFactory()
        host = os.environ.get("HANJI_ECHO_HOST", "127.0.0.1")
        reactor.callFromThread(lambda: reactor.listenTCP(self.port_number, my_factory, interface=host))
