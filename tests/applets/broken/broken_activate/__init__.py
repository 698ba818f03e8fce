"""An applet whose on_activate fails: the others must still start."""

from hanji.core import applet as _applet


class Applet(_applet.Applet):
    def on_activate(self):
        raise ValueError("on_activate fails on purpose")
