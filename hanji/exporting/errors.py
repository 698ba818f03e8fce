"""The export's exceptions; any thread.

    ExportError(HanjiError, UsageError)   the export refused: nothing was written
    └── VerifyFailed                      the package was written, but its answers
                                          differ from the notebook's (``.report``)

Both are ``UsageError`` too, so a notebook shows their message as it is, without
Hanji's frames, and ``hanji export`` prints it as one message.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError

from hanji._exceptions import HanjiError


class ExportError(HanjiError, UsageError):
    """The export of an applet was refused; the message says why and what to do."""


class VerifyFailed(ExportError):
    """The exported package answers differently from the notebook (``report``)."""

    def __init__(self, message: str, report: Any) -> None:
        super().__init__(message)
        self.report = report
