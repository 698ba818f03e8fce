"""Thread-boundary checks.

Hanji code runs on three kinds of thread (see the README): the reactor thread, the
Django pool (``HanjiDjango-N``) and the caller's own thread (a notebook cell, the CLI).
In debug mode (``--debug``, ``HANJI_DEBUG=1``; on by default in a notebook) the checks
below raise :class:`~hanji._exceptions.HanjiThreadError`; otherwise they cost one flag
test. :mod:`hanji.server._guard` applies them to requests, transports and the reactor.
"""

from __future__ import annotations

import threading

from twisted.python import threadable

from hanji import _config
from hanji._exceptions import HanjiThreadError



def _initial_debug() -> bool:
    """Return HANJI_DEBUG's flag at import (off if unset or not a flag: the CLI
    and the notebook parse it again and report a bad value)."""
    try:
        return _config.debug()
    except ValueError:
        return False


# Read on every guarded call: keep it a plain module global (one flag test).
_debug = _initial_debug()


def set_debug(flag: bool) -> None:
    """Turn the thread checks (and tracebacks in 500 bodies) on or off; any thread.

    Requests and connections that already exist keep the guards they were given.
    """
    global _debug
    _debug = bool(flag)


def debug_enabled() -> bool:
    """Return whether Hanji runs in debug mode."""
    return _debug


def debug_from_env(default: bool) -> bool:
    """Return the debug flag ``HANJI_DEBUG`` asks for, or ``default`` if it is unset;
    raise ValueError for a value that is not a flag."""
    return _config.debug(default)


def in_reactor_thread() -> bool:
    """Return True if the caller runs on the reactor thread."""
    return bool(threadable.isInIOThread())


def wrong_thread(what: str, instead: str) -> HanjiThreadError:
    """Return the error for ``what`` called off the reactor thread, advising ``instead``."""
    name = threading.current_thread().name
    return HanjiThreadError(
        f"{what} called from thread {name}; it must run on the reactor thread: {instead}."
    )


def check_reactor_thread(what: str, instead: str) -> None:
    """Raise HanjiThreadError (saying to use ``instead``) unless called on the
    reactor thread, or before any reactor ran (no reactor thread yet). The caller
    tests the debug flag first."""
    if threadable.ioThread is not None and not threadable.isInIOThread():
        raise wrong_thread(what, instead)


def assert_reactor_thread(what: str) -> None:
    """In debug mode, raise HanjiThreadError unless called on the reactor thread."""
    if _debug and not in_reactor_thread():
        raise HanjiThreadError(
            f"{what} must run on the reactor thread (called from thread "
            f"{threading.current_thread().name}); use reactor.callFromThread() or crochet to get there."
        )


def assert_not_reactor_thread(what: str) -> None:
    """In debug mode, raise HanjiThreadError if called on the reactor thread."""
    if _debug and in_reactor_thread():
        raise HanjiThreadError(
            f"{what} blocks and must not run on the reactor thread; "
            "use deferToThread() or call it from a worker or cell thread."
        )
