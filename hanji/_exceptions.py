"""Hanji's exceptions, in one place.

    HanjiError
    ├── AppletError            (carries ``applet_id``)
    │   ├── AppletNotFound     an id that no active applet has
    │   ├── AppletImportError  an applet package that failed to import
    │   └── AppletActivationError  ``on_activate`` raised
    ├── WrongThreadError       a function called on the wrong thread
    └── ServerNotRunning       the server is not started (or was stopped)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HanjiError(Exception):
    """Base class of every error Hanji raises on purpose."""


class AppletError(HanjiError):
    """An error about one applet, named by ``applet_id``."""

    def __init__(self, applet_id: str, message: str) -> None:
        super().__init__(message)
        self.applet_id = applet_id


class AppletNotFound(AppletError):
    """No active applet has this id."""

    def __init__(self, applet_id: str, known: Iterable[str] = ()) -> None:
        known = sorted(known)
        hint = ""
        close = difflib.get_close_matches(applet_id, known, n=1)
        if close:
            hint = f" Did you mean '{close[0]}'?"
        listing = ", ".join(known) if known else "none"
        super().__init__(
            applet_id,
            f"No active applet '{applet_id}'.{hint} Active applets: {listing}.",
        )


class AppletImportError(AppletError):
    """An applet package raised while it was imported."""


class AppletActivationError(AppletError):
    """An applet's ``on_activate`` raised."""


class WrongThreadError(HanjiError):
    """A function was called on a thread it must not run on."""


class ServerNotRunning(HanjiError):
    """The Hanji server is not running: start it first."""
