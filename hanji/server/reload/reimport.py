"""Import an applet package again from disk; Django worker thread (it blocks on imports).

:func:`reimport_package` drops the package and its submodules from ``sys.modules``,
except those Django registers once per process (models, migrations, admin, apps),
imports again every module that was loaded, and builds the new applet record; the
caller swaps it in (:meth:`hanji.server.lifecycle.AppletLifecycle.activate_record`).
If any import fails, the old modules are put back, so the old version goes on
serving, and :class:`ReloadFailed` names the file and line at fault.

:func:`reset_template_loaders` empties the caches of Django's template loaders.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Iterable

from hanji._exceptions import AppletError
from hanji._threads import assert_not_reactor_thread
from hanji.server.registry import AppletRecord, load_package

# Submodules that stay loaded: Django's app registry, migration loader and admin
# site have them registered, and a second registration raises or warns.
KEPT = ("models", "migrations", "admin", "apps")


class ReloadFailed(AppletError):
    """An applet package failed to import again; the old version keeps serving.

    ``filename`` and ``lineno`` point at the code at fault (the applet's own frame
    nearest to the error), ``text`` is the traceback.
    """

    def __init__(self, applet_id: str, filename: str, lineno: int, summary: str, text: str) -> None:
        super().__init__(applet_id, (
            f"Applet '{applet_id}' was not reloaded: {filename}, line {lineno}: {summary}; "
            "the previous version keeps serving; fix the file and save it again"))
        self.filename = filename
        self.lineno = lineno
        self.text = text


def _kept(package: str, module: str) -> bool:
    """Return True if ``module`` of ``package`` must stay loaded (see KEPT)."""
    rest = module[len(package) + 1:]
    return rest.split(".", 1)[0] in KEPT


def _owned(package: str) -> list[str]:
    """Return the names of the loaded modules of ``package`` (itself first)."""
    return sorted((m for m in list(sys.modules) if m == package or m.startswith(package + ".")),
                  key=lambda m: (m.count("."), m))


def _module_name(package: str, root: Path, path: Path) -> str | None:
    """Return the module name of ``path``, a ``.py`` file in ``package``'s folder."""
    try:
        rel = path.relative_to(root).with_suffix("")
    except ValueError:
        return None
    parts = [package, *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) if all(p.isidentifier() for p in parts) else None


def _forget_bytecode(paths: Iterable[Path]) -> None:
    """Remove the cached bytecode of ``paths``: a file rewritten within the same
    second with the same size would otherwise be imported from its stale ``.pyc``
    (the cache is checked by whole-second mtime and size)."""
    for path in paths:
        try:
            os.unlink(importlib.util.cache_from_source(str(path)))
        except (OSError, NotImplementedError, ValueError):
            pass


def _fault(exc: BaseException, root: Path) -> tuple[str, int, str]:
    """Return ``(file, line, summary)`` of ``exc``: a SyntaxError's own position,
    else the deepest frame in the applet's folder (else the deepest frame)."""
    seen: set[int] = set()
    while isinstance(exc.__cause__, BaseException) and id(exc) not in seen and isinstance(exc, AppletError):
        seen.add(id(exc))
        exc = exc.__cause__  # load_package wraps what the applet raised
    summary = traceback.format_exception_only(type(exc), exc)[-1].strip()
    if isinstance(exc, SyntaxError) and exc.filename:
        return exc.filename, int(exc.lineno or 0), summary
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if f.filename.startswith(str(root) + os.sep)]
    if not (mine or frames):
        return str(root), 0, summary
    frame = (mine or frames)[-1]
    return frame.filename, int(frame.lineno or 0), summary


def _import_traceback(exc: BaseException) -> str:
    """Return ``exc``'s traceback without the import machinery's frames (importlib's
    and this module's), which say nothing about the applet's fault."""
    if isinstance(exc, AppletError) and isinstance(exc.__cause__, Exception):
        exc = exc.__cause__  # load_package wraps what the applet raised
    tb = traceback.TracebackException.from_exception(exc)
    from hanji.server import registry

    machinery = (os.path.dirname(importlib.__file__), __file__, str(registry.__file__))

    def strip(t: traceback.TracebackException) -> None:
        frames = [f for f in t.stack if not f.filename.startswith("<frozen ")
                  and not f.filename.startswith(machinery)]
        t.stack = traceback.StackSummary.from_list(frames)
        for nested in (t.__cause__, t.__context__):
            if nested is not None:
                strip(nested)

    strip(tb)
    return "".join(tb.format())


def reimport_package(package: str, root: Path, changed: Iterable[Path] = ()) -> AppletRecord:
    """Import ``package`` (folder ``root``) again and return its new record, not yet
    activated; Django worker thread. Raise :class:`ReloadFailed` (old modules put
    back) if an import fails."""
    assert_not_reactor_thread("reimport_package()")
    changed = list(changed)
    _forget_bytecode(changed)
    importlib.invalidate_caches()
    before = _owned(package)
    dropped: dict[str, ModuleType] = {m: sys.modules.pop(m) for m in before if m == package
                                      or not _kept(package, m)}
    wanted = [m for m in before if m in dropped]
    for path in changed:
        name = _module_name(package, root, path)
        if name and name not in wanted and path.is_file() and not _kept(package, name):
            wanted.append(name)
    try:
        for name in wanted:
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name != name or name == package:
                    raise  # a module that was loaded and is gone is simply not loaded again
        record = load_package(package, root)
    except Exception as exc:
        text = _import_traceback(exc)
        for name in _owned(package):
            if name in dropped or not _kept(package, name):
                sys.modules.pop(name, None)
        sys.modules.update(dropped)
        filename, lineno, summary = _fault(exc, root)
        raise ReloadFailed(package, filename, lineno, summary, text) from exc
    new = sys.modules[package]
    for name in _owned(package):
        # A kept submodule stays an attribute of the new package module.
        if name.count(".") == 1 and _kept(package, name):
            setattr(new, name.rsplit(".", 1)[1], sys.modules[name])
    _update_app_config(package, new)
    return record


def _update_app_config(package: str, module: ModuleType) -> None:
    """Point Django's AppConfig of ``package`` at its new root module (its public
    ``module`` attribute), as a restart would have."""
    from django.apps import apps

    for config in apps.get_app_configs():
        if config.name == package:
            config.module = module


def reset_template_loaders() -> int:
    """Empty the caches of every Django template engine's loaders (the cached
    loader's ``reset()``) and return how many were reset; Django worker thread (a
    request may be rendering: Django's own autoreloader does the same between
    requests)."""
    from django.template import engines
    from django.template.backends.django import DjangoTemplates

    assert_not_reactor_thread("reset_template_loaders()")
    count = 0
    for backend in engines.all():
        if isinstance(backend, DjangoTemplates):
            for loader in backend.engine.template_loaders:
                reset = getattr(loader, "reset", None)
                if reset is not None:
                    reset()
                    count += 1
    return count
