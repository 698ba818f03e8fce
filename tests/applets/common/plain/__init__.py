"""Test applet with a web UI but no content template (nor an inline one)."""

from hanji.core import applet as _applet
from hanji.core.utils import TwAppletResource


class Ping(TwAppletResource):
    path = "ping"

    def render_GET(self, request):
        return "pong"


class Applet(_applet.Applet):
    name = "Plain"
    description = "Test applet without a content.html."


class WebUI(_applet.WebUI):
    twisted_dynamic_resources = [Ping]


applet = Applet()
web = WebUI()
