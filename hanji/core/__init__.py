"""The applet model that applet authors import: :mod:`hanji.core.applet` and
:mod:`hanji.core.utils`. It imports nothing of the server (:mod:`hanji.server`) or of
Django, and installs no reactor; :mod:`hanji.core._context` holds what it needs to
know at run time."""
