"""A healthy applet next to broken ones."""

from hanji.core import applet as _applet
from hanji.core.utils import TwAppletResource


class Applet(_applet.Applet):
    pass


class Ping(TwAppletResource):
    path = "ping"

    def render_GET(self, request):
        return "pong"


class WebUI(_applet.WebUI):
    twisted_dynamic_resources = [Ping]
