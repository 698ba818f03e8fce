"""Fixtures of the fast unit tests: Twisted's fakes, no process, socket or reactor.

Debug mode is turned off for each test (its thread checks compare with a reactor
thread that never runs here) and the process-wide error log is emptied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twisted.internet.task import Clock

from hanji import _errorlog, _threads
from hanji.core import _context


class SyncClock(Clock):
    """A Clock that also runs ``callFromThread`` calls at once (the test thread
    stands for the reactor thread)."""

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        f(*args, **kwargs)


@pytest.fixture(autouse=True)
def no_debug() -> Iterator[None]:
    """Turn debug mode off for the test and restore it after."""
    before = _threads.debug_enabled()
    _threads.set_debug(False)
    yield
    _threads.set_debug(before)


@pytest.fixture(autouse=True)
def clean_globals() -> Iterator[None]:
    """Start and end each test with an empty error log and no open websockets."""
    _errorlog.clear()
    _context.open_websockets.clear()
    yield
    _errorlog.clear()
    _context.open_websockets.clear()


@pytest.fixture
def clock() -> SyncClock:
    """Return a fresh fake reactor clock."""
    return SyncClock()
