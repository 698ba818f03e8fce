"""Test applet that misbehaves on purpose: a resource that blocks the reactor, and
resources, a TCP protocol and a plain websocket that call reactor-only APIs from
threads (for the stall watchdog and the wrong-thread guard).

Each wrong-thread call runs in a thread and answers what happened: ``ok`` if the
call went through, else the exception's class name and message (written on the
reactor thread, as it should be).
"""

import threading
import time

from twisted.internet import reactor, threads
from twisted.internet.protocol import Factory, Protocol
from twisted.web.websocket import WebSocketResource

from hanji.core import applet as _applet
from hanji.core.utils import TwAppletResource


def _outcome(failure):
    return f"{failure.type.__name__}: {failure.getErrorMessage()}"


class Applet(_applet.Applet):
    name = "Guard tests"
    description = "Test applet for the stall watchdog and the wrong-thread guard."

    def on_activate(self):
        # A raw reactor.listenTCP through callFromThread, as in the reference.
        reactor.callFromThread(lambda: setattr(self, "tcp_port", reactor.listenTCP(0, _ThreadWriterFactory(),
                                                                                   interface="127.0.0.1")))


applet = Applet()


class Block(TwAppletResource):
    """GET blocks the reactor thread for 0.2 s (a bug the watchdog must report)."""

    path = "block"

    def render_GET(self, request):
        time.sleep(0.2)  # blocks the reactor: the watchdog's blocking frame
        return "slept"


class WriteFromThread(TwAppletResource):
    """GET calls request.write from a worker thread (HanjiThreadError in debug mode)."""

    path = "write_from_thread"

    def render_GET(self, request):
        def work():
            request.write(b"from a thread\n")
            return "written\n"

        return threads.deferToThread(work)


class FinishFromThread(TwAppletResource):
    """GET calls request.finish from a thread of its own."""

    path = "finish_from_thread"

    def render_GET(self, request):
        from twisted.web.server import NOT_DONE_YET

        def work():
            try:
                request.finish()
            except Exception as exc:
                reactor.callFromThread(_answer, request, f"{type(exc).__name__}: {exc}")

        threading.Thread(target=work, name="GuardTest-1").start()
        return NOT_DONE_YET


def _answer(request, text):
    if not request.finished:
        request.write(text.encode())
        request.finish()


class CallLaterFromThread(TwAppletResource):
    """GET calls reactor.callLater from a worker thread."""

    path = "call_later_from_thread"

    def render_GET(self, request):
        def work():
            reactor.callLater(0, lambda: None)
            return "ok"

        return threads.deferToThread(work).addErrback(_outcome)


class TransportWriteFromThread(TwAppletResource):
    """GET calls the HTTP request's transport.write from a worker thread."""

    path = "transport_write_from_thread"

    def render_GET(self, request):
        def work():
            request.transport.write(b"")
            return "ok"

        return threads.deferToThread(work).addErrback(_outcome)


class TcpPort(TwAppletResource):
    """GET answers the port of the applet's raw listenTCP."""

    path = "tcp_port"

    def render_GET(self, request):
        return {"port": self.applet.tcp_port.getHost().port}


class _ThreadWriter(Protocol):
    """Answers each chunk received by writing from a thread: ``ok`` or the error."""

    def dataReceived(self, data):
        d = threads.deferToThread(self.transport.write, b"ok\n")
        d.addErrback(lambda f: self.transport.write((_outcome(f) + "\n").encode()))


class _ThreadWriterFactory(Factory):
    protocol = _ThreadWriter


class _PlainWs:
    """A plain twisted.web.websocket protocol that sends its answer from a thread."""

    transport = None

    def negotiationStarted(self, transport):
        self.transport = transport

    def negotiationFinished(self):
        pass

    def textMessageReceived(self, message):
        d = threads.deferToThread(self.transport.sendTextMessage, "ok")
        d.addErrback(lambda f: self.transport.sendTextMessage(_outcome(f)))

    def bytesMessageReceived(self, data):
        pass

    def pongReceived(self, payload):
        pass

    def connectionLost(self, reason):
        pass


class _PlainWsFactory:
    def buildProtocol(self, request):
        return _PlainWs()


class PlainWebSocket(WebSocketResource):
    """A plain ``WebSocketResource`` at /res/guardtest/plainws."""

    path = "plainws"

    def __init__(self, applet=None):
        super().__init__(_PlainWsFactory())


class WebUI(_applet.WebUI):
    twisted_dynamic_resources = [Block, WriteFromThread, FinishFromThread, CallLaterFromThread,
                                 TransportWriteFromThread, TcpPort, PlainWebSocket]
    template = "<p>Guard tests.</p>"
