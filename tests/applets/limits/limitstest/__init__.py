"""Test applet for the HTTP limits and the Django queue (tests/server/test_limits.py,
tests/server/test_overload.py)."""

from twisted.internet import reactor
from twisted.web.server import NOT_DONE_YET

from hanji.core import applet as _applet
from hanji.core.utils import TwAppletResource, defer_to_django


class Applet(_applet.Applet):
    name = "Limits test"
    description = "Resources with their own body limits, a late answer and Django work."


class Small(TwAppletResource):
    """A resource that takes bodies of at most 1000 bytes."""

    path = "small"
    max_body = 1000

    def render_POST(self, request):
        return {"got": len(request.content.read())}


class Roomy(TwAppletResource):
    """A resource that takes larger bodies than the server's limit in the tests."""

    path = "roomy"
    max_body = 100_000

    def render_POST(self, request):
        return {"got": len(request.content.read())}


class Later(TwAppletResource):
    """Answer after ``?s=`` seconds, finishing the request itself (NOT_DONE_YET)."""

    path = "later"

    def render_GET(self, request):
        delay = float(request.args.get("s", ["2"])[0])

        def answer():
            if not request.finished and not request._disconnected:
                request.write(b"late answer")
                request.finish()

        reactor.callLater(delay, answer)
        return NOT_DONE_YET


class InDjango(TwAppletResource):
    """Run a trivial job with defer_to_django."""

    path = "defer"

    def render_GET(self, request):
        return defer_to_django(lambda: "ran in the Django pool")


class WebUI(_applet.WebUI):
    twisted_dynamic_resources = [Small, Roomy, Later, InDjango]
