"""Thread-boundary checks.

Hanji code runs on three kinds of thread (see the README): the reactor thread, the
Django pool (``HanjiDjango-N``) and the caller's own thread (a notebook cell, the CLI).
In debug mode (``HANJI_DEBUG=1`` or ``--debug``) the checks below raise
:class:`~hanji._exceptions.WrongThreadError`; otherwise they cost one flag test.
"""

from __future__ import annotations

import os

from twisted.python import threadable

from hanji._exceptions import WrongThreadError

_debug = os.environ.get("HANJI_DEBUG", "") not in ("", "0", "false", "False")


def set_debug(flag: bool) -> None:
    """Turn the thread checks (and tracebacks in 500 bodies) on or off."""
    global _debug
    _debug = bool(flag)


def debug_enabled() -> bool:
    """Return whether Hanji runs in debug mode."""
    return _debug


def in_reactor_thread() -> bool:
    """Return True if the caller runs on the reactor thread."""
    return bool(threadable.isInIOThread())


def assert_reactor_thread(what: str) -> None:
    """In debug mode, raise WrongThreadError unless called on the reactor thread."""
    if _debug and not in_reactor_thread():
        raise WrongThreadError(
            f"{what} must run on the reactor thread; "
            "use reactor.callFromThread() or crochet to get there."
        )


def assert_not_reactor_thread(what: str) -> None:
    """In debug mode, raise WrongThreadError if called on the reactor thread."""
    if _debug and in_reactor_thread():
        raise WrongThreadError(
            f"{what} blocks and must not run on the reactor thread; "
            "use deferToThread() or call it from a worker or cell thread."
        )
