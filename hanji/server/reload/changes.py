"""What a batch of file changes asks for; pure functions, any thread.

A change to an applet package is classified by its path inside the package:

- ``models.py`` (or a ``models/`` package), ``migrations/``, ``admin.py``, ``apps.py``:
  Django's app registry, its migrations and its admin site must not see these
  registered twice, so the server process restarts (``restart``);
- ``templates/``: Django's cached template loaders are reset (``templates``);
- ``static/`` and other non-Python files: nothing, they are read at each request;
- any other ``.py`` file: the package is re-imported and swapped in place (``packages``).

A new package, a change to a package that failed at start-up (it is not in Django's
app list) and a change to the settings module also need a restart. Editor swap and
backup files, ``__pycache__`` and the data directory (SQLite's WAL writes) are
ignored before any of this (:func:`ignored`).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Iterable, Mapping

# Parts of a package that Django registers once per process.
_RESTART_FILES = frozenset({"models.py", "admin.py", "apps.py"})
_RESTART_DIRS = frozenset({"models", "migrations"})
# Folders no change in which matters (tool caches, version control).
_IGNORED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache",
                           ".ipynb_checkpoints", "node_modules"})
# Editor swap, backup and probe files: vim (.swp, .swx, 4913, ~), Emacs (.#x, #x#,
# ~), JetBrains' safe write (x.py___jb_tmp___), and compiled bytecode.
_IGNORED_NAMES = re.compile(r"(\.sw[a-z]|~|\.py[cod]|\.tmp|___jb_[a-z]+___)$|^(\.#|#.*#$|4913$|\.DS_Store$)")


def ignored(path: str | Path, data_dir: Path | None = None) -> bool:
    """Return True for a path no reload should follow: inside ``data_dir``, inside
    ``__pycache__`` (or another tool folder), or an editor's swap or backup file."""
    p = Path(path)
    if data_dir is not None and (p == data_dir or data_dir in p.parents):
        return True
    if any(part in _IGNORED_DIRS for part in p.parts):
        return True
    return bool(_IGNORED_NAMES.search(p.name))


@dataclasses.dataclass
class Plan:
    """What one batch of changes asks for (see the module docstring)."""

    packages: dict[str, list[Path]] = dataclasses.field(default_factory=dict)  # package -> changed .py
    roots: dict[str, Path] = dataclasses.field(default_factory=dict)  # package -> its folder, for ``packages``
    templates: list[Path] = dataclasses.field(default_factory=list)
    restart: list[str] = dataclasses.field(default_factory=list)  # one reason per change
    restart_applets: list[str] = dataclasses.field(default_factory=list)  # the package of each ('': none)
    nothing: list[Path] = dataclasses.field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.packages or self.templates or self.restart)


def _package_of(path: Path, packages: Mapping[str, Path]) -> tuple[str, Path] | None:
    """Return ``(package, path inside it)`` for a path in one of ``packages``."""
    for name, root in packages.items():
        if path == root or root in path.parents:
            return name, path.relative_to(root)
    return None


def classify(paths: Iterable[str | Path], packages: Mapping[str, Path], *,
             applet_dirs: Iterable[Path] = (), settings_files: Iterable[Path] = (),
             data_dir: Path | None = None) -> Plan:
    """Return the :class:`Plan` of the changed ``paths``.

    ``packages`` maps the applet packages installed in Django to their folders,
    ``applet_dirs`` are the watched applet directories (a new package in one asks
    for a restart), ``settings_files`` the files of a project's settings module.
    """
    plan = Plan()
    settings = {Path(s) for s in settings_files}
    dirs = [Path(d) for d in applet_dirs]
    for raw in sorted({Path(p) for p in paths}):
        if ignored(raw, data_dir):
            continue
        if raw in settings:
            plan.restart.append(f"{raw} (the settings) changed")
            plan.restart_applets.append("")
            continue
        found = _package_of(raw, packages)
        if found is None:
            _outside(raw, dirs, plan)
            continue
        name, rel = found
        parts = rel.parts
        if not parts:
            plan.restart.append(f"the applet package '{name}' ({raw}) was added or removed")
            plan.restart_applets.append(name)
        elif parts[0] in _RESTART_DIRS or (len(parts) == 1 and parts[0] in _RESTART_FILES):
            plan.restart.append(f"{raw} changed (applet '{name}'): {parts[0].removesuffix('.py')} "
                                "cannot be reloaded in place")
            plan.restart_applets.append(name)
        elif parts[0] == "templates":
            plan.templates.append(raw)
        elif parts[0] == "static" or raw.suffix != ".py":
            plan.nothing.append(raw)
        else:
            plan.packages.setdefault(name, []).append(raw)
            plan.roots[name] = packages[name]
    return plan


def _outside(path: Path, applet_dirs: list[Path], plan: Plan) -> None:
    """Classify a change outside the installed packages: a package folder new to
    this process (its ``__init__.py`` appeared) asks for a restart."""
    for directory in applet_dirs:
        if directory in path.parents:
            rel = path.relative_to(directory)
            top = rel.parts[0]
            if top.startswith(("_", ".")):
                break
            if len(rel.parts) == 2 and rel.parts[1] == "__init__.py":
                plan.restart.append(f"{path}: the applet package '{top}' is new (or failed at start-up); "
                                    "Django's app list changes")
                plan.restart_applets.append(top)
                return
            if len(rel.parts) >= 2 and (directory / top / "__init__.py").is_file() and path.suffix == ".py":
                plan.restart.append(f"{path}: the applet package '{top}' is not installed in this process "
                                    "(new, or it failed at start-up)")
                plan.restart_applets.append(top)
                return
            break
    plan.nothing.append(path)
