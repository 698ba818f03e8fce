"""Static files the Django way: every installed app's, applets' namespaced by applet id.

Django's ``AppDirectoriesFinder`` finds each app's ``static/`` folder, whose files are
namespaced by a folder of their own (``admin/css/base.css``). An applet's ``static/``
folder is not (its ``icon.png`` sits at the top), so applets are left to
:class:`AppletFinder`, which puts each applet's files under its id
(``hello_world/icon.png``): the layout Hanji serves at ``/static/<applet_id>/…`` and
the one ``hanji manage collectstatic`` writes, so a reverse proxy can serve it.

:func:`app_static_folders` lists, once at start-up (blocking: not on the reactor),
the top-level folders of the other apps' static files (``admin``,
``rest_framework``...), which the reactor serves at ``/static/<folder>/…``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.apps import apps
from django.contrib.staticfiles.finders import AppDirectoriesFinder, BaseFinder
from django.contrib.staticfiles.utils import get_files
from django.core.files.storage import FileSystemStorage


def _applet_labels() -> set[str]:
    """Return the app labels of the installed applet packages."""
    packages = {p for p in os.environ.get("HANJI_INSTALLED_APPLETS", "").split(",") if p}
    return {c.label for c in apps.get_app_configs() if c.name in packages}


class NonAppletAppDirectoriesFinder(AppDirectoriesFinder):
    """Django's ``AppDirectoriesFinder`` for every app but the applets."""

    def __init__(self, app_names: Any = None, *args: Any, **kwargs: Any) -> None:
        applets = _applet_labels()
        names = [c.name for c in apps.get_app_configs() if c.label not in applets]
        super().__init__(app_names=names if app_names is None else app_names, *args, **kwargs)


class AppletFinder(BaseFinder):
    """Find an applet's static files under its id: ``<applet_id>/<path>``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.storages: dict[str, FileSystemStorage] = {}
        applets = _applet_labels()
        for config in apps.get_app_configs():
            folder = Path(config.path) / "static"
            if config.label in applets and folder.is_dir():
                storage = FileSystemStorage(location=str(folder))
                storage.prefix = config.label  # type: ignore[attr-defined]  # collectstatic's namespace
                self.storages[config.label] = storage

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> Any:
        """Return the file of ``<applet_id>/<rest>`` (a list of it with ``find_all``)."""
        found = []
        applet_id, _, rest = path.partition("/")
        storage = self.storages.get(applet_id)
        if storage is not None and rest and storage.exists(rest):
            found.append(storage.path(rest))
        if find_all or kwargs.get("all"):
            return found
        return found[0] if found else []

    def list(self, ignore_patterns: Any) -> Any:
        """Yield ``(path, storage)`` of every applet file (the storage's prefix is the id)."""
        for storage in self.storages.values():
            for path in get_files(storage, ignore_patterns):
                yield path, storage


def app_static_folders() -> dict[str, Path]:
    """Return the top-level folders of the non-applet apps' static files by name
    (``{"admin": …/django/contrib/admin/static/admin}``); the first app wins, as in
    Django's finders. Blocking (file system): call it at start-up."""
    folders: dict[str, Path] = {}
    finder = NonAppletAppDirectoriesFinder()
    for storage in finder.storages.values():
        root = Path(storage.location)
        for child in sorted(root.iterdir()) if root.is_dir() else []:
            if child.is_dir():
                folders.setdefault(child.name, child)
    return folders
