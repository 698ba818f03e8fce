import os

from hanji.core import applet
from hanji.core.utils import TwAppletResource, TwAppletWebSocket


class Feed(TwAppletWebSocket):
    """/ws/beacon/feed: says this process's and its host's ids, then relays every broadcast."""

    path = "feed"

    def on_open(self):
        self.send({"pid": os.getpid(), "host": int(os.environ.get("HANJI_SUPERVISOR_PID") or os.getpid())})


class Shout(TwAppletResource):
    """POST /res/beacon/shout: broadcast the body to every Feed connection."""

    path = "shout"

    def render_POST(self, request):
        Feed.broadcast(request.content.read().decode())
        return {"pid": os.getpid()}


class WebUI(applet.WebUI):
    twisted_dynamic_resources = [Shout]
    websocket_resources = [Feed]
    template = "<p class='beacon'>Beacon</p>"
