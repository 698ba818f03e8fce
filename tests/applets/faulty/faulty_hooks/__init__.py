"""Test applet failing everywhere it can after a good start: on_deactivate, render
methods (raising, failed Deferred) and websocket handlers (on_message, on_close)."""

from twisted.internet import reactor, task

from hanji.core import applet as _applet
from hanji.core.utils import TwAppletResource, TwAppletWebSocket


class Applet(_applet.Applet):
    def on_deactivate(self):
        raise RuntimeError("on_deactivate fails on purpose")


class Boom(TwAppletResource):
    path = "boom"

    def render_GET(self, request):
        raise LookupError("render fails on purpose")


class FailLater(TwAppletResource):
    path = "fail_later"

    def render_GET(self, request):
        return task.deferLater(reactor, 0.01, self.fail)

    def fail(self):
        raise ArithmeticError("the Deferred fails on purpose")


class Errors(TwAppletResource):
    """What hanji.errors() holds in the server: ``[{applet, where, traceback}]``."""

    path = "errors"

    def render_GET(self, request):
        from hanji import _errorlog as errors

        return [{"applet": e.applet_id, "where": e.where, "traceback": e.traceback} for e in errors.all_errors()]


class Grumpy(TwAppletWebSocket):
    """Echo; the message ``boom`` fails in on_message; every on_close fails."""

    path = "grumpy"

    def on_message(self, message):
        if message == "boom":
            raise ValueError("on_message fails on purpose")
        self.send(message)

    def on_close(self, code):
        raise KeyError(f"on_close fails on purpose (code {code})")


class WebUI(_applet.WebUI):
    twisted_dynamic_resources = [Boom, FailLater, Errors]
    websocket_resources = [Grumpy]
