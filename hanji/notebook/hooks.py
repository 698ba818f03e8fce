"""Cell events while Hanji is loaded: ORM in cells, and applet errors shown.

- ``pre_run_cell``: lift Django's async guard for a synchronous cell (the choice is
  explained in :mod:`hanji.notebook.orm`), and unregister the cell-defined models
  the cell defines again (see :func:`hanji.notebook.schema.forget_redefined`).
- ``post_run_cell``: restore the guard, then print every applet error recorded since
  the previous cell (an ``on_activate``, render method, errback or Django view that
  raised, on any thread) with its full traceback, so nothing fails silently. Errors
  already raised in the cell (a failed ``hanji.activate``) are not printed twice.

Both run on the cell thread.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from IPython.core.error import UsageError

from hanji.notebook import orm
from hanji import _compat
from hanji._exceptions import AppletActivationError
from hanji import _errorlog as _errors

_lock = threading.Lock()
_shown: set[int] = set()  # error numbers the user has already seen in a cell


def mark_shown(seqs: list[int]) -> None:
    """Record that these errors were already shown (raised in the cell); any thread."""
    with _lock:
        _shown.update(seqs)


def format_error(record: _errors.AppletErrorRecord) -> str:
    """Return the text printed in the notebook for one recorded error."""
    if record.where.startswith("reactor stall"):
        return (f"Hanji: applet '{record.applet_id}' {record.where} (hanji.errors() keeps it):\n"
                f"{record.traceback.rstrip()}\n")
    # The user's frames, as IPython shows a cell's error; the whole traceback (through
    # Twisted's and Hanji's frames) stays in hanji.errors().
    return (
        f"Hanji: applet '{record.applet_id}' failed in {record.where} "
        f"(hanji.errors() keeps the whole traceback):\n{_errors.user_frames(record.traceback)}\n"
    )


def _one_line(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> list[str]:
    """Show a UsageError (or a subclass of Hanji's) as one line; cell thread."""
    name = "UsageError" if etype is UsageError else etype.__name__
    stb = [f"{name}: {value}"]
    _compat.show_traceback(shell, etype, value, stb)  # IPython only returns a custom traceback
    return stb


class CellHooks:
    """The callbacks registered with IPython's events while Hanji is loaded."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.last_seq = _errors.last_seq()
        self._lifted = False
        self._owns_custom_exc = False

    def install(self) -> None:
        """Register the callbacks (idempotent); cell thread."""
        events = self.shell.events
        if self.pre_run_cell not in events.callbacks["pre_run_cell"]:
            events.register("pre_run_cell", self.pre_run_cell)
            events.register("post_run_cell", self.post_run_cell)
        if not getattr(self.shell, "custom_exceptions", ()):
            # One clear line for user mistakes, subclasses of UsageError included
            # (IPython only shortens UsageError itself). Left alone if the user set one.
            # Hanji's usage errors and failed activations: their message says it all
            # (an activation's carries the user's frames), no Hanji frames around it.
            self.shell.set_custom_exc((UsageError, AppletActivationError), _one_line)
            self._owns_custom_exc = True
        # The cell running %load_ext lifts the guard only from now on: restore in post.

    def uninstall(self) -> None:
        """Unregister the callbacks; cell thread."""
        events = self.shell.events
        for name, callback in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            if callback in events.callbacks[name]:
                events.unregister(name, callback)
        if self._owns_custom_exc:
            self.shell.set_custom_exc((), None)
            self._owns_custom_exc = False
        orm.restore_guard(self._lifted)
        self._lifted = False

    def _is_async(self, info: Any) -> bool:
        transformed = getattr(info, "transformed_cell", None)
        if transformed is None:
            return False
        try:
            return bool(self.shell.should_run_async(info.raw_cell, transformed_cell=transformed))
        except Exception:
            return False

    def pre_run_cell(self, info: Any) -> None:
        """Lift Django's async guard if the cell is synchronous, and forget the
        cell-defined models it defines again; cell thread."""
        if not self._is_async(info):
            self._lifted = orm.lift_guard() or self._lifted
        source = getattr(info, "transformed_cell", None) or getattr(info, "raw_cell", "") or ""
        if "app_label" in source:
            from hanji.notebook.schema import forget_redefined

            try:
                forget_redefined(source)
            except Exception:
                pass  # never block a cell; Django then warns about the re-registration

    def post_run_cell(self, result: Any) -> None:
        """Restore the guard and print the applet errors recorded since the last
        cell; cell thread."""
        orm.restore_guard(self._lifted)
        self._lifted = False
        self.show_new_errors()

    def show_new_errors(self) -> int:
        """Print errors recorded since the last call; return how many; cell thread."""
        fresh = _errors.since(self.last_seq)
        if fresh:
            self.last_seq = fresh[-1].seq
        with _lock:
            fresh = [r for r in fresh if r.seq not in _shown]
            _shown.update(r.seq for r in fresh)
        for record in fresh:
            print(format_error(record), file=sys.stderr, flush=True)
        return len(fresh)
