"""From notebook prototype to applet package: ``hanji.export`` in a kernel
(:mod:`hanji.exporting.kernel`) and ``hanji export NOTEBOOK.ipynb DIR`` without one
(:func:`export_notebook`).

| module | concept | thread |
|---|---|---|
| ``sources.py`` | the cells of an applet and the others, from a kernel's records or an ``.ipynb`` | any |
| ``checks.py`` | IPython syntax in applet cells; undefined names (pyflakes) and the cells defining them | any |
| ``layout.py`` | which statement goes to which file of the package | any |
| ``migration.py`` | the initial migration, by Django's migration writer | the one that set up Django |
| ``writer.py`` | the generated header and overwrite protection | cell / main thread |
| ``package.py`` | the steps put together, ``ExportResult`` | cell / main thread |
| ``verify.py`` | ``hanji serve`` on the package, the notebook's requests replayed | cell thread |
| ``kernel.py`` | ``hanji.export`` from a kernel | cell thread |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hanji.exporting.errors import ExportError, VerifyFailed
from hanji.exporting.package import ExportResult

__all__ = ["ExportError", "ExportResult", "VerifyFailed", "export_notebook"]


def _models_from_source(name: str, text: str, classes: list[str]) -> list[Any]:
    from hanji.exporting.migration import model_classes

    _setup_django()  # idempotent
    found = {m.__name__: m for m in model_classes(name, text)}
    return [found[c] for c in classes if c in found]


def export_notebook(notebook: Path, directory: Path, applet: str | None = None,
                    static: Path | None = None) -> list[ExportResult]:
    """Export the ``%%applet`` cells of the saved ``notebook`` (every applet, or one)
    to ``directory``, without a kernel; main thread of ``hanji export``.

    The models cells are run (in this process, to write their migration); nothing
    else of the notebook is. Raise ExportError if an applet cannot be exported (the
    applets before it are written), ValueError if the file is not a notebook.
    """
    from hanji.exporting.package import export_cells
    from hanji.exporting.sources import read_notebook

    cells = read_notebook(notebook)
    wanted = [applet] if applet else sorted(cells.applets)
    if not wanted:
        raise ExportError(f"hanji export: {notebook} has no %%applet cell; start the cells of an applet "
                          f"with %%applet NAME, save the notebook, then export.")
    if applet and applet not in cells.applets:
        known = ", ".join(sorted(cells.applets)) or "none"
        raise ExportError(f"hanji export: {notebook} has no %%applet {applet} cell (applets: {known}).")
    origin = f"notebook {notebook.name}"
    return [export_cells(name, cells.applets[name], cells.others, directory, origin, _models_from_source,
                         static=static if applet else None)
            for name in wanted]


def _setup_django() -> None:
    """Configure Django with no applets and a throwaway data dir (nothing is migrated,
    the folder is removed at exit): the migration writer needs the app registry;
    main thread of ``hanji export``."""
    import atexit
    import shutil
    import tempfile

    from hanji.django import setup as django_setup

    data = tempfile.mkdtemp(prefix="hanji-export-")
    atexit.register(shutil.rmtree, data, True)
    django_setup.setup([], Path(data))
