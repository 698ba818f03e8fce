"""Notebook flavours of Hanji's exceptions.

A user mistake in a cell should read as one clear line, which IPython does for any
:class:`~IPython.core.error.UsageError`. These classes are both the Hanji exception
(so ``except AppletNotFound`` still works) and a ``UsageError``:

    NotLoaded(ServerNotRunning, UsageError)      Hanji is not loaded in this kernel
    UnknownApplet(AppletNotFound, UsageError)    no active applet has this id
"""

from __future__ import annotations

from IPython.core.error import UsageError

from hanji._exceptions import AppletNotFound, ServerNotRunning


class NotLoaded(ServerNotRunning, UsageError):
    """Hanji is not running in this kernel."""

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message or "Hanji is not running in this kernel: run %load_ext hanji first "
            "(or %hanji start after %hanji stop)."
        )


class UnknownApplet(AppletNotFound, UsageError):
    """No active applet has this id (with a "Did you mean" hint)."""


__all__ = ["NotLoaded", "UnknownApplet", "UsageError"]
