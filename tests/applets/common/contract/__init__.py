"""Test applet: one resource per case of the TwAppletResource render contract."""

import threading

from twisted.internet import defer, reactor, task
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from hanji.core import applet as _applet
from hanji.core.utils import TwAppletResource

CANCELLED = []  # request ids whose pending Deferred was cancelled
TICKS = [0]  # ticks of the LoopingCall started in on_activate


def _tick():
    TICKS[0] += 1


class Applet(_applet.Applet):
    name = "Contract"
    description = "Test applet for the render contract."

    def on_activate(self):
        self.activate_thread = threading.current_thread().name
        self.deactivate_thread = None
        # A timer opened the reference's way: Hanji must stop it at deactivation.
        loop = task.LoopingCall(_tick)
        reactor.callFromThread(loop.start, 0.02)

    def on_deactivate(self):
        self.deactivate_thread = threading.current_thread().name


class Bytes(TwAppletResource):
    path = "bytes"

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/octet-stream")
        return b"\x00raw"


class Text(TwAppletResource):
    path = "text"

    def render_GET(self, request):
        return "héllo"


class PlainText(TwAppletResource):
    path = "plain"
    content_type = "text/plain; charset=utf-8"

    def render_GET(self, request):
        return "plain"


class Json(TwAppletResource):
    path = "json"

    def render_GET(self, request):
        return {"a": 1, "list": [1, 2]}


class JsonList(TwAppletResource):
    path = "jsonlist"

    def render_GET(self, request):
        return [1, "two"]


class Later(TwAppletResource):
    path = "deferred"

    def render_GET(self, request):
        return task.deferLater(reactor, 0.05, lambda: {"later": True})


class Coroutine(TwAppletResource):
    path = "coroutine"

    async def render_GET(self, request):
        await task.deferLater(reactor, 0.01, lambda: None)
        return "from a coroutine"


class NotDoneYet(TwAppletResource):
    path = "notdoneyet"

    def render_GET(self, request):
        def finish():
            request.write(b"finished by hand")
            request.finish()

        reactor.callLater(0.01, finish)
        return NOT_DONE_YET


class Boom(TwAppletResource):
    path = "boom"

    def render_GET(self, request):
        raise RuntimeError("boom in render")


class FailedDeferred(TwAppletResource):
    path = "failed"

    def render_GET(self, request):
        return task.deferLater(reactor, 0.01, lambda: 1 / 0)


class BadType(TwAppletResource):
    path = "badtype"

    def render_GET(self, request):
        return 42


class Pending(TwAppletResource):
    """Never answers on its own; records the cancellation when the client leaves."""

    path = "pending"

    def render_GET(self, request):
        tag = request.args.get("tag", ["?"])[0]
        d = defer.Deferred(lambda _: CANCELLED.append(tag))
        return d


class Cancelled(TwAppletResource):
    path = "cancelled"

    def render_GET(self, request):
        return {"cancelled": CANCELLED}


class Args(TwAppletResource):
    path = "args"

    def render_POST(self, request):
        body = request.content.read()
        return {
            "str": request.args["name"][0],
            "bytes_hex": request.args[b"name"][0].hex(),
            "has_str": "name" in request.args,
            "missing": request.args.get("missing"),
            "body_len": len(body),
        }


class Leaf(TwAppletResource):
    path = "a/b"
    isLeaf = True

    def render_GET(self, request):
        return {"postpath": [p.decode() for p in request.postpath]}


class Thread(TwAppletResource):
    path = "threads"

    def render_GET(self, request):
        return {"render": threading.current_thread().name, "activate": self.applet.activate_thread,
                "reactor_thread_is_main": threading.current_thread() is threading.main_thread()}


class Sleepy(TwAppletResource):
    """A slow async resource (no blocking): answers after ?s= seconds."""

    path = "sleepy"

    def render_GET(self, request):
        seconds = float(request.args.get("s", ["1"])[0])
        return task.deferLater(reactor, seconds, lambda: "slept")


class PlainTwisted(Resource):
    """A plain twisted.web resource (no applet argument), mounted unchanged."""

    isLeaf = True
    path = "plain_twisted"

    def render_GET(self, request):
        return b"plain twisted.web"


class WebUI(_applet.WebUI):
    twisted_dynamic_resources = [Bytes, Text, PlainText, Json, JsonList, Later, Coroutine, NotDoneYet,
                                 Boom, FailedDeferred, BadType, Pending, Cancelled, Args, Leaf, Thread, Sleepy,
                                 PlainTwisted]
    template = "<p id='contract-card'>contract applet {{ applet.id }}</p>"
