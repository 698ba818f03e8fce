"""Test applet left alone while reloadme is reloaded: its websocket must stay open."""

from hanji.core import applet as _applet
from hanji.core.utils import TwAppletWebSocket


class Echo(TwAppletWebSocket):
    """/ws/bystander/echo: echoes text messages."""

    path = "echo"

    def on_message(self, message):
        self.send(message)


class Applet(_applet.Applet):
    name = "Bystander"


class WebUI(_applet.WebUI):
    websocket_resources = [Echo]


applet = Applet()
web = WebUI()
