"""Django's ORM in notebook cells.

ipykernel runs every cell while its asyncio loop is running, so Django's
``async_unsafe`` guard sees a running loop on the cell thread and raises
``SynchronousOnlyOperation`` for any ORM call, even in a cell with no ``await``.

Hanji's choice: lift the guard for the duration of *synchronous* cells only.

- The guard protects an event loop from being blocked by a hidden synchronous
  call inside a coroutine. A synchronous cell already blocks the kernel's loop
  from its first line to its last, whatever it does, so an ORM call there blocks
  nothing more: the check is a false positive. Its database connection is the
  cell thread's own, as in any script.
- Cells with a top-level ``await`` really are coroutines on that loop: there the
  guard stays, and Django's async API (``await Note.objects.acount()``,
  ``async for``) or ``asgiref.sync.sync_to_async`` is the right tool.
- The alternative, running each ORM call in a worker thread, would change what
  a cell means (querysets evaluated elsewhere, a different connection per call)
  and cannot be done for code the user writes directly.

The lift is Django's documented switch, ``DJANGO_ALLOW_ASYNC_UNSAFE``, set before
a synchronous cell and removed after it (:mod:`hanji.notebook.hooks` does it). It
is process-wide, but no other Hanji thread runs an event loop (the Django pool and
the reactor thread have none), so no other check can be affected. A value the user
set themselves is left alone. After each cell the cell thread's connections are
closed if obsolete, as Django does after a request.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

_FLAG = "DJANGO_ALLOW_ASYNC_UNSAFE"


def lift_guard() -> bool:
    """Lift Django's async guard; return True if this call set it (cell thread)."""
    if os.environ.get(_FLAG):
        return False
    os.environ[_FLAG] = "true"
    return True


def restore_guard(lifted: bool) -> None:
    """Close obsolete connections of this thread, then undo :func:`lift_guard` if it
    set the flag (cell thread)."""
    try:
        from django.db import close_old_connections

        close_old_connections()
    except Exception:
        pass  # Django not configured yet, or the database is gone: nothing to close.
    finally:
        if lifted:
            os.environ.pop(_FLAG, None)


@contextlib.contextmanager
def allow_sync_orm() -> Iterator[None]:
    """Let the enclosed synchronous code use the ORM on the cell thread.

    Use it only around code that does not run inside a coroutine (cell thread).
    """
    lifted = lift_guard()
    try:
        yield
    finally:
        restore_guard(lifted)
