"""Baseline: the same websocket endpoints on bare ``twisted.web.websocket``.

    python bare_websocket.py PORT

/ws/benchapp/echo sends every message back; /ws/benchapp/fanout sends a text message
starting with "broadcast:" to every open fanout connection. /res/benchapp/hello
answers the usual bytes (readiness check). No Hanji code runs here.
"""

import sys
import time

from twisted.internet import reactor
from twisted.web import resource, server
from twisted.web.websocket import WebSocketResource

HELLO = b"Hello, world!\n"


class Hello(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        return HELLO


class Echo:
    """A WebSocketProtocol that echoes."""

    transport = None

    def negotiationStarted(self, transport):
        self.transport = transport

    def negotiationFinished(self):
        pass

    def pongReceived(self, payload):
        pass

    def textMessageReceived(self, message):
        self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data):
        self.transport.sendBytesMessage(bytes(data))

    def connectionLost(self, reason):
        pass


class Fanout(Echo):
    """A WebSocketProtocol that broadcasts "broadcast:" messages to every peer."""

    peers: set = set()

    def negotiationFinished(self):
        Fanout.peers.add(self)

    def textMessageReceived(self, message):
        if message.startswith("broadcast:"):
            t0 = time.perf_counter()
            for peer in list(Fanout.peers):
                peer.transport.sendTextMessage(message)
            self.transport.sendTextMessage(f"took:{(time.perf_counter() - t0) * 1000:.3f}")

    def bytesMessageReceived(self, data):
        pass

    def connectionLost(self, reason):
        Fanout.peers.discard(self)


class Factory:
    def __init__(self, protocol):
        self.protocol = protocol

    def buildProtocol(self, request):
        return self.protocol()


def main() -> None:
    port = int(sys.argv[1])
    root, res, ws = resource.Resource(), resource.Resource(), resource.Resource()
    res_applet, ws_applet = resource.Resource(), resource.Resource()
    root.putChild(b"res", res)
    res.putChild(b"benchapp", res_applet)
    res_applet.putChild(b"hello", Hello())
    root.putChild(b"ws", ws)
    ws.putChild(b"benchapp", ws_applet)
    ws_applet.putChild(b"echo", WebSocketResource(Factory(Echo)))
    ws_applet.putChild(b"fanout", WebSocketResource(Factory(Fanout)))
    reactor.listenTCP(port, server.Site(root), interface="127.0.0.1")
    print(f"bare websocket serves http://127.0.0.1:{port}/", file=sys.stderr, flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
