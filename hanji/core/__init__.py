"""The applet model that applet authors import: :mod:`hanji.core.applet` and
:mod:`hanji.core.utils`."""
