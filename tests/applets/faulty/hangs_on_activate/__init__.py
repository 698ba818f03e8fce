"""Test applet whose on_activate never returns: it must not hold up the others."""

import threading

from hanji.core import applet as _applet

_never = threading.Event()


class Applet(_applet.Applet):
    def on_activate(self):
        _never.wait()
