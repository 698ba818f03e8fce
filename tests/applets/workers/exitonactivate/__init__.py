"""Test applet: with HANJI_TEST_EXIT_ON_ACTIVATE=1 its on_activate ends the worker
process (os._exit(3)), a worker that dies before it is ready; else it does nothing."""

import os

from hanji.core import applet as _applet


class Applet(_applet.Applet):
    name = "Exit on activate"
    description = "Ends its process in on_activate when the test asks."

    def on_activate(self):
        if os.environ.get("HANJI_TEST_EXIT_ON_ACTIVATE") == "1":
            os._exit(3)


applet = Applet()
