"""``%%applet NAME [--models]``: cells that belong to an applet; cell thread.

The cell runs as any cell (through ``shell.run_cell``, so Hanji's cell hooks, the
ORM in cells and the display of its last value work as usual), then, if it ran
without an error, its source is recorded as part of applet NAME, which
``hanji.export`` writes as a package. Re-running a cell replaces its recorded source
in place (the applet keeps the notebook's order of first runs). A cell is known by
the id JupyterLab sends with it (``cellId`` in the request's metadata); a client that
sends none (nbclient, the console) has each cell known by the names it defines (a
cell that defines a name another of the applet's cells defined replaces it); a cell
that defines none (``hanji.activate(...)``) is known by its first line. Two cells
that merely start with the same import are two cells.

When the applet is active and the cell did not activate it itself, it is activated
again with the latest definitions of its classes and views: a live swap, as a
re-run of the ``hanji.activate`` cell would do.
"""

from __future__ import annotations

import ast
import dataclasses
import threading
from typing import Any

from IPython.core.magic import Magics, cell_magic, magics_class

from hanji.exporting.checks import bound_names
from hanji.exporting.sources import USAGE, Cell, parse_line
from hanji.notebook._usage import UsageError

_lock = threading.Lock()


@dataclasses.dataclass
class _Recorded:
    key: str
    cell: Cell
    defines: frozenset[str]


_applets: dict[str, list[_Recorded]] = {}  # applet name -> its cells, in order of first run


def _cell_id(shell: Any) -> str | None:
    """Return the id of the running cell that the front end sent (JupyterLab), or None;
    cell thread (the kernel's parent header is the running request's)."""
    parents = []
    kernel = getattr(shell, "kernel", None)
    if kernel is not None and hasattr(kernel, "get_parent"):
        try:
            parents.append(kernel.get_parent("shell"))
        except Exception:
            pass
    parents.append(getattr(shell, "parent_header", None))
    for parent in parents:
        if isinstance(parent, dict):
            cell_id = (parent.get("metadata") or {}).get("cellId")
            if cell_id:
                return str(cell_id)
    return None


def _defines(source: str) -> frozenset[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return frozenset()
    names: set[str] = set()
    for node in tree.body:
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= bound_names(node)
    return frozenset(names)


def record(name: str, cell: Cell, cell_id: str | None) -> None:
    """Record ``cell`` as part of applet ``name``, replacing the cell it is a re-run
    of; any thread."""
    defines = _defines(cell.source)
    key = f"id:{cell_id}" if cell_id else f"line:{cell.first_line}"
    with _lock:
        cells = _applets.setdefault(name, [])
        for i, old in enumerate(cells):
            if cell_id:
                same = old.key == key
            elif defines or old.defines:
                same = bool(old.defines & defines)
            else:
                same = old.key == key
            if same:
                cells[i] = _Recorded(key, cell, defines)
                return
        cells.append(_Recorded(key, cell, defines))


def recorded(name: str) -> list[Cell]:
    """Return the cells recorded for applet ``name``, in order; any thread."""
    with _lock:
        return [r.cell for r in _applets.get(name, [])]


def names() -> list[str]:
    """Return the applets that have recorded cells; any thread."""
    with _lock:
        return sorted(_applets)


def forget(name: str | None = None) -> None:
    """Forget the recorded cells (of one applet); any thread."""
    with _lock:
        if name is None:
            _applets.clear()
        else:
            _applets.pop(name, None)


def applet_record(name: str) -> Any:
    """Return this kernel's record of applet ``name`` (an AppletRecord), or None if
    Hanji does not run or knows no such applet; cell thread (a registry snapshot)."""
    from hanji.notebook.session import get_session

    session = get_session()
    if not session.running or session.server is None:
        return None
    return session.server.registry.snapshot().get(name)


def _version(name: str) -> int | None:
    """Return the version of applet ``name`` if it is active, else None; cell thread."""
    found = applet_record(name)
    return found.version if found is not None and found.is_active else None


def _latest(obj_class: type, namespace: dict[str, Any]) -> type:
    """Return the notebook's latest class of the same name as ``obj_class`` (itself
    if it was not defined in the notebook)."""
    latest = namespace.get(obj_class.__name__)
    if obj_class.__module__ == "__main__" and isinstance(latest, type) and issubclass(latest, obj_class.__mro__[-2]):
        return latest
    return obj_class


def _fresh_urls(urls_module: Any, namespace: dict[str, Any]) -> list[Any]:
    """Return the URL patterns with each view defined in the notebook replaced by its
    latest definition."""
    from django.urls import URLPattern

    fresh = []
    for pattern in getattr(urls_module, "urlpatterns", []):
        callback = getattr(pattern, "callback", None)
        latest = namespace.get(getattr(callback, "__name__", ""))
        if (isinstance(pattern, URLPattern) and getattr(callback, "__module__", None) == "__main__"
                and callable(latest) and latest is not callback):
            pattern = URLPattern(pattern.pattern, latest, pattern.default_args, pattern.name)
        fresh.append(pattern)
    return fresh


def reactivate(name: str, shell: Any) -> Any:
    """Activate applet ``name`` again with the notebook's latest classes and views
    (a live swap); cell thread. Return the Activation."""
    from hanji.notebook import live
    from hanji.notebook.session import running_session

    record = running_session().server.registry.snapshot()[name]
    namespace = shell.user_ns
    old = record.applet
    applet = _latest(type(old), namespace)()
    for attribute in ("id", "name", "description"):
        if attribute in vars(old):
            setattr(applet, attribute, vars(old)[attribute])
    web = _latest(type(record.web), namespace)
    urls = _fresh_urls(record.urls_module, namespace) if record.urls_module is not None else None
    return live.activate(applet, web, urls=urls)


def _awaits(shell: Any, cell: str) -> bool:
    """Return True if ``cell`` awaits at its top level (IPython would run it as a coroutine)."""
    try:
        return bool(shell.should_run_async(cell, transformed_cell=shell.transform_cell(cell)))
    except Exception:
        return False  # not even valid: run_cell shows the error


@magics_class
class AppletCellMagics(Magics):
    """The ``%%applet`` cell magic."""

    @cell_magic
    def applet(self, line: str, cell: str) -> Any:
        """%%applet NAME [--models]: run the cell and record it as part of applet NAME
        (hanji.export writes the applet's cells as a package); --models marks a cell of
        Django models. Re-running the cell replaces its recorded source and swaps the
        active applet in place."""
        try:
            args = parse_line(line)
        except ValueError as exc:
            raise UsageError(f"%%applet {line.strip()}: {exc}") from None
        shell: Any = self.shell
        if _awaits(shell, cell):
            raise UsageError(f"%%applet {args.name}: a cell of an applet cannot await at its top level "
                             f"(a package could not run it); move the await to a cell without %%applet.")
        before = _version(args.name)
        # The running cell is the last one in the input history (stored before it runs).
        count = len(shell.history_manager.input_hist_raw) - 1
        result = shell.run_cell(cell, store_history=False)
        if not result.success:
            # The traceback is shown above; fail this cell too, so "run all" stops here.
            raise UsageError(f"%%applet {args.name}: the cell raised (see above); it is not recorded "
                             f"(its previous run, if any, stays part of applet '{args.name}').")
        record(args.name, Cell(f"In [{count}]", cell, args.models), _cell_id(shell))
        after = _version(args.name)
        if before is not None and after == before:
            activation = reactivate(args.name, shell)
            print(repr(activation))
        return None


def register(shell: Any) -> None:
    """Register ``%%applet`` with ``shell`` (idempotent); cell thread."""
    shell.register_magics(AppletCellMagics)


def unregister(shell: Any) -> None:
    """Remove ``%%applet`` from ``shell``; cell thread."""
    shell.magics_manager.magics["cell"].pop("applet", None)


__all__ = ["USAGE", "AppletCellMagics", "applet_record", "forget", "names", "reactivate", "record", "recorded", "register"]
