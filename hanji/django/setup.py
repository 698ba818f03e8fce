"""Configure Django for Hanji: find applet packages, populate the app registry, migrate.

Everything here blocks (imports, database) and must not run on the reactor thread.
:func:`setup` is thread-safe and idempotent, but not reentrant, like Django's
``Apps.populate()``.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import sys
import threading
import traceback
from pathlib import Path
from types import ModuleType

from hanji._threads import assert_not_reactor_thread
from hanji import _compat, _config
from hanji import _errorlog as _errors

log = logging.getLogger("hanji.server")

_lock = threading.Lock()
_result: SetupResult | None = None


@dataclasses.dataclass
class SetupResult:
    """What :func:`setup` found: applet packages installed and those that failed."""

    applet_dirs: list[Path]
    data_dir: Path
    packages: dict[str, Path]  # package name -> package dir, installed in Django
    failures: dict[str, str]  # package name -> traceback text
    # Top-level folders of the other apps' static files ("admin"...), served by the
    # reactor at /static/<name>/ (hanji.django.staticfiles).
    app_static: dict[str, Path] = dataclasses.field(default_factory=dict)


def resolve_data_dir(arg: Path | str | None = None) -> Path:
    """Return the data dir: ``arg`` (``--data``), else ``$HANJI_DATA``, else ``./.hanji``."""
    return _config.data_dir(arg)


def applet_dirs_from_env(extra: list[str] | None = None) -> list[Path]:
    """Return the applet directories: ``extra`` (``--applets``), else ``HANJI_APPLETS``
    (separated by ``os.pathsep``), else ``./applets`` if it exists."""
    dirs = list(extra or [])
    if not dirs:
        dirs = [str(d) for d in _config.applet_dirs()]
    if not dirs and Path("applets").is_dir():
        dirs = ["applets"]
    return [Path(d).expanduser().resolve() for d in dirs]


def discover(applet_dirs: list[Path]) -> dict[str, Path]:
    """Return ``{package name: dir}`` for the packages in ``applet_dirs``, putting
    each directory on ``sys.path`` so its packages import by name."""
    found: dict[str, Path] = {}
    for directory in applet_dirs:
        if not directory.is_dir():
            log.warning("Applet directory %s does not exist; skipping it.", directory)
            continue
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
        for child in sorted(directory.iterdir()):
            if child.name.startswith(("_", ".")) or not (child / "__init__.py").is_file():
                continue
            loaded = sys.modules.get(child.name)
            origin = getattr(loaded, "__file__", None) or ""
            if loaded is not None and not origin.startswith(str(child)):
                log.error(
                    "Applet package '%s' in %s is hidden by the module %s already imported; "
                    "rename the applet folder.", child.name, directory, origin or child.name,
                )
                continue
            if child.name in found:
                log.warning(
                    "Applet package '%s' in %s is shadowed by the one in %s; rename one.",
                    child.name, directory, found[child.name].parent,
                )
                continue
            found[child.name] = child
    return found


def _culprit(exc: BaseException, packages: dict[str, Path]) -> str | None:
    """Return the applet package whose code raised ``exc``, if any."""
    tb = exc.__traceback__
    culprit = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        for name, path in packages.items():
            if filename.startswith(str(path) + os.sep):
                culprit = name
        tb = tb.tb_next
    if culprit is None and isinstance(exc, ImportError) and exc.name:
        top = exc.name.split(".")[0]
        if top in packages:
            culprit = top
    return culprit


def _populate(packages: dict[str, Path]) -> dict[str, str]:
    """Populate Django's app registry, dropping applets that fail to import."""
    from django.apps import apps
    from django.conf import settings

    failures: dict[str, str] = {}
    installed = dict(packages)
    while True:
        base = [a for a in settings.INSTALLED_APPS if a not in packages]
        settings.INSTALLED_APPS = base + list(installed)
        try:
            apps.populate(settings.INSTALLED_APPS)
            return failures
        except Exception as exc:
            name = _culprit(exc, installed)
            if name is None:
                raise
            text = traceback.format_exc()
            failures[name] = text
            _errors.report_failure(name, f"import of applet package '{name}'", text,
                                   f"Applet '{name}' failed to import; the others go on")
            del installed[name]
            for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
                del sys.modules[mod]
            # Start the registry over without the culprit.
            _compat.reset_app_registry(apps, name)


def setup(
    applet_dirs: list[Path] | None = None,
    data_dir: Path | str | None = None,
    debug: bool = False,
) -> SetupResult:
    """Configure and populate Django with Hanji's settings and the applets found.

    Must not run on the reactor thread. Thread-safe and idempotent: a second call
    returns the first call's result.
    """
    global _result
    assert_not_reactor_thread("hanji.django.setup.setup()")
    with _lock:
        if _result is not None:
            return _result
        # Phase 1: environment the settings module reads.
        data = resolve_data_dir(data_dir)
        data.mkdir(parents=True, exist_ok=True)
        os.environ["HANJI_DATA"] = str(data)
        if debug:
            os.environ["HANJI_DEBUG"] = "1"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", _config.django_settings_module())
        if os.environ["DJANGO_SETTINGS_MODULE"] != _config.DJANGO_SETTINGS and "" not in sys.path \
                and os.getcwd() not in sys.path:
            # A project's settings module (HANJI_SETTINGS=mysite.settings) imports from
            # the current directory, as it does through Django's manage.py.
            sys.path.insert(0, os.getcwd())
        dirs = applet_dirs if applet_dirs is not None else applet_dirs_from_env()
        packages = discover(dirs)
        os.environ["HANJI_INSTALLED_APPLETS"] = ",".join(packages)
        # Phase 2: Django's app registry, without the applets that fail to import.
        from django.urls import set_script_prefix

        failures = _populate(packages)
        set_script_prefix("/")
        installed = {n: p for n, p in packages.items() if n not in failures}
        from hanji.django.staticfiles import app_static_folders

        # Hanji's URLconf imports every applet package's urls (hanji.django.urls): do it
        # here, off the reactor, rather than at the first route change, on it.
        importlib.import_module("hanji.django.urls")

        _result = SetupResult(dirs, data, installed, failures, app_static_folders())
        return _result


def migrate(verbosity: int = 0) -> dict[str, str]:
    """Apply migrations, creating tables for applets without migrations too; return
    the applet packages whose migrations failed, with the traceback and the fix.

    An applet's initial migration whose tables already exist (created before the
    applet had migrations) is recorded as applied, as Django's ``--fake-initial``
    does. A failing migration of an applet is logged and reported under the applet
    (marked failed in the setup result, so it is not activated); the other apps are
    migrated one by one and the server goes on. A failure outside applets raises.
    Blocks on the database: must not run on the reactor thread.
    """
    assert_not_reactor_thread("hanji.django.setup.migrate()")
    from django.core.management import call_command
    from django.db import connections

    failed: dict[str, str] = {}
    applets = set(_result.packages) if _result is not None else set()
    try:
        try:
            call_command("migrate", interactive=False, run_syncdb=True, fake_initial=True, verbosity=verbosity)
        except Exception as exc:
            label = _migrating_app(exc)
            if label not in applets:
                raise
            failed[label] = _migration_failure(label)
            for other in sorted(_migrated_labels() - {label}):
                try:
                    call_command("migrate", other, interactive=False, fake_initial=True, verbosity=verbosity)
                except Exception as again:
                    culprit = _migrating_app(again)
                    if culprit not in applets:
                        raise
                    failed.setdefault(culprit, _migration_failure(culprit))
    finally:
        # Under `hanji serve` this is the thread that becomes the reactor's: it must
        # not keep a database connection for the server's whole life.
        connections.close_all()
    if _result is not None:
        for package, text in failed.items():
            _result.packages.pop(package, None)
            _result.failures[package] = text
    return failed


def _migrating_app(exc: BaseException) -> str | None:
    """Return the app label of the migration being applied when ``exc`` was raised
    (a local of Django's migration executor), or None."""
    tb = exc.__traceback__
    label = None
    while tb is not None:
        app_label = getattr(tb.tb_frame.f_locals.get("migration"), "app_label", None)
        if app_label:
            label = str(app_label)
        tb = tb.tb_next
    return label


def _migration_failure(label: str) -> str:
    """Log and report a failed migration of applet ``label``; return the text kept."""
    text = traceback.format_exc() + (
        f"\nThe migrations of applet '{label}' failed; it is not activated, the other applets "
        f"serve. Fix its migrations (hanji manage showmigrations {label}, hanji manage migrate "
        f"{label}) and restart.")
    _errors.report_failure(label, f"migrating applet '{label}'", text,
                           f"Applet '{label}': its migrations failed; the others go on")
    return text


def _migrated_labels() -> set[str]:
    """Return the labels of the installed apps that have migrations."""
    from django.db.migrations.loader import MigrationLoader

    return set(MigrationLoader(None, ignore_no_migrations=True).migrated_apps)


def import_optional(module: str) -> ModuleType | None:
    """Import ``module`` if it exists (a missing module gives None; errors raise)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise
