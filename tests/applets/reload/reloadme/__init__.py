"""Test applet edited on disk by the reload tests (which copy this folder first)."""

from hanji.core import applet as _applet


class Applet(_applet.Applet):
    name = "Reload me"
    description = "Edited on disk by tests/server/test_reload.py and tests/notebook/test_watch.py."


applet = Applet()
