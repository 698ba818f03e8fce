"""Test applet: websocket endpoints with small limits, short pings and refusals,
plus resources that let a test read what the hooks saw and deactivate an applet."""

import threading

from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory, Protocol

from hanji.core import applet as _applet
from hanji.core.utils import TwAppletResource, TwAppletWebSocket, WebSocketRefused

# What the hooks saw, as dicts {"tag", "hook", "arg"}; reactor thread only.
EVENTS = []


class Applet(_applet.Applet):
    name = "Websocket tests"
    description = "Test applet for the websocket endpoints."


applet = Applet()


class Recorded(TwAppletWebSocket):
    """An echo endpoint that records its hooks under the ``tag`` query argument."""

    def _note(self, hook, arg=None):
        tag = self.request.args.get("tag", [""])[0]
        EVENTS.append({"tag": tag, "hook": hook, "arg": arg, "endpoint": self.path,
                       "thread": threading.current_thread().name})

    def on_open(self):
        self._note("on_open")

    def on_message(self, message):
        self.send(message)

    def on_close(self, code):
        self._note("on_close", code)


class Small(Recorded):
    path = "small"
    max_message_size = 1000


class Ping(Recorded):
    path = "ping"
    ping_interval = 0.2
    ping_timeout = 0.5


class Origin(Recorded):
    path = "origin"
    allowed_origins = ["http://good.example", "friend.example:9000"]


class Capped(Recorded):
    path = "capped"
    max_connections = 2


class Refuse(Recorded):
    """Refuse by default; ``?status=N`` raises with that status, ``?boom=1`` raises
    a bug, ``?later=yes|no`` decides asynchronously."""

    path = "refuse"

    def accept(self, request):
        if "status" in request.args:
            raise WebSocketRefused(int(request.args["status"][0]), "no entry today")
        if "boom" in request.args:
            raise ZeroDivisionError("accept bug")
        if "later" in request.args:
            d = defer.Deferred()
            reactor.callLater(0.05, d.callback, request.args["later"][0] == "yes")
            return d
        return False


class Hub(Recorded):
    """``all:X`` broadcasts X on the reactor, ``thread:X`` from a new thread,
    ``count`` answers the number of open connections."""

    path = "hub"

    def on_message(self, message):
        if message.startswith("all:"):
            type(self).broadcast(message[4:])
        elif message.startswith("thread:"):
            threading.Thread(target=Hub.broadcast, args=(message[7:],), name="NotTheReactor").start()
        elif message == "count":
            self.send(str(len(Hub.connections())))


class Faulty(Recorded):
    """``?open_boom=1`` fails in on_open; a message ``boom`` fails in on_message,
    ``async-boom`` in a coroutine."""

    path = "faulty"

    def on_open(self):
        super().on_open()
        if "open_boom" in self.request.args:
            raise RuntimeError("on_open bug")

    async def on_message(self, message):
        if message == "boom":
            raise ValueError("on_message bug")
        if message == "async-boom":
            await defer.succeed(None)
            raise KeyError("async on_message bug")
        self.send(message)


class Tracked(Recorded):
    """Listen on a TCP port in on_open, which Hanji should record on the applet."""

    path = "tracked"

    def on_open(self):
        super().on_open()
        reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        self.send(",".join(str(p) for p in self.applet.ports))


class Rooms(Recorded):
    """A leaf endpoint: /ws/wstest/rooms/<name> greets with the name."""

    path = "rooms"
    isLeaf = True

    def on_open(self):
        self.send("room " + "/".join(p.decode() for p in self.request.postpath))


class Drop(Recorded):
    """An echo endpoint that the server ends on request, to test reconnecting
    clients: ``close:N`` closes with code N, ``cut`` drops the TCP connection
    without a close frame (as a crash would). Messages are recorded too."""

    path = "drop"

    def on_message(self, message):
        self._note("on_message", message)
        if message.startswith("close:"):
            self.close(int(message[len("close:"):]), "closed on request")
        elif message == "cut":
            self.request.transport.abortConnection()
        else:
            self.send(message)


class Blank(TwAppletResource):
    """GET /res/wstest/blank: a page that loads hanji.js and nothing else."""

    path = "blank"

    def render_GET(self, request):
        return ('<!doctype html><html><head><title>hanji.js alone</title>'
                '<script src="/static/hanji/hanji.js"></script></head><body></body></html>')


class Events(TwAppletResource):
    """GET /res/wstest/events?tag=T: the hooks recorded for tag T."""

    path = "events"

    def render_GET(self, request):
        tag = request.args.get("tag", [""])[0]
        return [e for e in EVENTS if e["tag"] == tag]


class Errors(TwAppletResource):
    """GET /res/wstest/errors: the errors reported for this applet."""

    path = "errors"

    def render_GET(self, request):
        from hanji import _errorlog as errors

        return [{"where": e.where, "traceback": e.traceback} for e in errors.all_errors("wstest")]


class Deactivate(TwAppletResource):
    """POST /res/wstest/deactivate?id=X: deactivate applet X."""

    path = "deactivate"

    def render_POST(self, request):
        applet_id = request.args["id"][0]
        return request.site.server.deactivate(applet_id).addCallback(lambda _: {"deactivated": applet_id})


class WebUI(_applet.WebUI):
    twisted_dynamic_resources = [Events, Errors, Deactivate, Blank]
    websocket_resources = [Small, Ping, Origin, Capped, Refuse, Hub, Faulty, Tracked, Rooms, Drop]
    template = "<p>Websocket protocol test endpoints under <code>/ws/{{ applet.id }}/</code>.</p>"


web = WebUI()
