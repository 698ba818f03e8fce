"""benchapp: the trivial endpoints that bench/run.py loads through Hanji.

The same resource, view and file are served by the baseline servers in bench/servers/,
so every figure compares the serving layer, not the work done.
"""

from hanji.core import applet as _applet


class Applet(_applet.Applet):
    name = "Bench"
    description = "Trivial endpoints for the side-by-side benchmarks (bench/run.py)."


applet = Applet()
