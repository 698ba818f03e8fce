"""``wait_until``: poll a condition until it holds or a hang guard runs out."""

from __future__ import annotations

import time
from typing import Callable, TypeVar, Union

T = TypeVar("T")
Message = Union[str, Callable[[], str]]


class WaitTimeout(AssertionError):
    """A condition did not hold within its hang guard (a test failure)."""


def wait_until(predicate: Callable[[], T], timeout: float, message: Message, interval: float = 0.05) -> T:
    """Call ``predicate`` every ``interval`` s and return its first truthy result; raise
    :class:`WaitTimeout` with ``message`` (a string, or a function called then) after ``timeout`` s.

    ``predicate`` may raise to stop waiting early (a process that exited, say).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise WaitTimeout(f"not within {timeout:g} s: {text}")
        time.sleep(interval)
