"""``hanji.export(NAME, DIR)`` and ``%hanji export NAME DIR``: export an applet from
this kernel; cell thread.

The applet's cells are those recorded by ``%%applet NAME`` (:mod:`hanji.notebook.cells`);
the other cells, where a missing name may be defined, are this kernel's input history.
The models come from the kernel's registry (the classes the cells defined), the
applet's classes from its active record when no cell calls ``hanji.activate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hanji.exporting.errors import ExportError, VerifyFailed
from hanji.exporting.layout import Hints
from hanji.exporting.package import ExportResult, export_cells
from hanji.exporting.sources import MAGIC, Cell


def _other_cells(shell: Any) -> list[Cell]:
    """Return this kernel's input history but the ``%%applet`` cells, as cells."""
    history = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None) or []
    return [Cell(f"In [{n}]", source) for n, source in enumerate(history)
            if n and source.strip() and not source.lstrip().startswith(MAGIC)]


def _hints(name: str) -> Hints:
    """Return what this kernel's record of applet ``name`` tells of its classes and
    attributes (nothing if it has none); cell thread."""
    from hanji.notebook.cells import applet_record

    record = applet_record(name)
    if record is None:
        return Hints()
    attrs = tuple((k, str(v)) for k, v in vars(record.applet).items()
                  if k in ("id", "name", "description") and v)
    return Hints(type(record.applet).__name__, attrs, type(record.web).__name__)


def _live_models(name: str, text: str, classes: list[str]) -> list[Any]:
    """Return the kernel's models of applet ``name`` that models.py defines."""
    from hanji.notebook.schema import live_models

    found = {m.__name__: m for m in live_models(name)}
    absent = [c for c in classes if c not in found]
    if absent:
        raise ExportError(f"hanji export {name}: the models {', '.join(absent)} are not defined in this "
                          f"kernel with app_label '{name}'; run their %%applet {name} --models cell, then "
                          f"export again.")
    return [found[c] for c in classes]


def export(name: str, directory: str | Path = "applets", *, verify: bool = False,
           static: str | Path | None = None, timeout: float = 60.0) -> ExportResult:
    """Write applet ``name``'s cells (those run with ``%%applet name``) as the package
    ``directory/name``, which ``hanji serve --applets directory`` runs unchanged; cell thread.

    Refuse (ExportError, nothing written) if the cells use names only other cells
    define, use IPython syntax, or a file to replace was not written by the export.
    ``static`` is a folder copied to the package's ``static/``. With ``verify=True``,
    serve the package on a free port with a fresh data dir and replay the requests
    this kernel made to the applet's current version with hanji.get/hanji.post;
    raise VerifyFailed (its ``report`` lists each difference) if an answer differs.
    """
    from IPython import get_ipython

    from hanji._threads import assert_not_reactor_thread
    from hanji.notebook import cells as applet_cells

    assert_not_reactor_thread("hanji.export()")
    shell = get_ipython()
    recorded = applet_cells.recorded(name)
    if not recorded:
        known = applet_cells.names()
        hint = f" Applets with %%applet cells: {', '.join(known)}." if known else ""
        raise ExportError(f"hanji.export('{name}'): no cell of this kernel ran with %%applet {name}.{hint} "
                          f"Start the applet's cells with %%applet {name}, run them, then export.")
    # JupyterLab tells the kernel its notebook's path in __session__.
    session_path = str((shell.user_ns if shell is not None else {}).get("__session__") or "")
    origin = f"notebook {Path(session_path).name}" if session_path.endswith(".ipynb") else "a notebook kernel"
    result = export_cells(name, recorded, _other_cells(shell) if shell is not None else [],
                          Path(directory), origin, _live_models, _hints(name),
                          Path(static).expanduser().resolve() if static is not None else None)
    if verify:
        _verify(result, timeout)
    return result


def _verify(result: ExportResult, timeout: float) -> None:
    """Replay the notebook's requests to the applet's current version against the
    written package (``result.verify`` gets the report); raise ExportError or
    VerifyFailed; cell thread (blocks on ``hanji serve``)."""
    from hanji.exporting.verify import replay
    from hanji.notebook import recorded as requests
    from hanji.notebook.cells import applet_record

    record = applet_record(result.applet)
    version = record.version if record is not None else None
    exchanges = requests.exchanges(result.applet, version) if version is not None else []
    try:
        report = replay(result.applet, result.package, exchanges, timeout)
    except RuntimeError as exc:
        raise ExportError(f"hanji.export('{result.applet}', verify=True): the package was written to "
                          f"{result.package}, but hanji serve could not serve it: {exc}") from None
    result.verify = report
    if not report.activated:
        raise VerifyFailed(f"hanji.export('{result.applet}', verify=True): the package was written to "
                           f"{result.package}, but {report!r}", report)
    if not report.ok:
        raise VerifyFailed(
            f"hanji.export('{result.applet}', verify=True): the package was written to {result.package}, "
            f"but it answers differently from the notebook:\n"
            + "\n".join(f"  {d}" for d in report.differences)
            + "\nThe exported code may depend on state of this kernel (a global set in a cell, rows "
              "created in cells: the package runs on a fresh database here). Fix the cells, run the "
              "requests again and export again; the exception's .report has the details.",
            report,
        )
