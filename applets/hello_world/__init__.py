"""hello_world: the reference applet layout, with the reference's Twisted resource."""

from hanji.core import applet as _applet


class Applet(_applet.Applet):
    name = "Hello World"
    description = "The reference example: a Twisted resource called from a button with hanji.callback."


applet = Applet()
