"""The applet registry: which applets exist, in which state, and their routes.

States follow Django's AppConfig life (:class:`AppletState`): ``imported`` (package
loaded), ``activating``, ``active`` (routes mounted), ``failed`` (import or
``on_activate`` raised; the error is kept), ``deactivated``. A record changes state
only through :meth:`AppletRecord.move_to`, which refuses a transition the life cycle
does not have. The registry is mutated on the reactor thread only; readers on any
thread see consistent snapshots because every change replaces the whole mapping.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import inspect
import re
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any, Mapping

from hanji._errorlog import exception_line
from hanji._exceptions import AppletImportError, AppletNotFound
from hanji._threads import assert_reactor_thread
from hanji.core.applet import Applet, WebUI
from hanji.core._context import OpenedThings


class AppletState(enum.StrEnum):
    """Where an applet is in its life; compares equal to its lower-case name."""

    IMPORTED = "imported"
    ACTIVATING = "activating"
    ACTIVE = "active"
    FAILED = "failed"
    DEACTIVATED = "deactivated"


# The transitions an applet's life has (a swap or a re-activation builds a new record).
_TRANSITIONS: dict[AppletState, frozenset[AppletState]] = {
    AppletState.IMPORTED: frozenset({AppletState.ACTIVATING, AppletState.FAILED}),
    AppletState.ACTIVATING: frozenset({AppletState.ACTIVE, AppletState.FAILED}),
    AppletState.ACTIVE: frozenset({AppletState.DEACTIVATED}),
    AppletState.FAILED: frozenset(),
    AppletState.DEACTIVATED: frozenset(),
}


class AppletStateError(RuntimeError):
    """A state change the applet life cycle does not have (a bug in Hanji)."""


@dataclasses.dataclass
class AppletRecord:
    """One applet as the server knows it (attributes owned by the reactor thread)."""

    applet: Applet
    web: WebUI
    package: str | None = None  # importable package, None for a notebook applet
    path: Path | None = None  # package directory
    state: AppletState = AppletState.IMPORTED  # change it with move_to()
    version: int = 1
    error: str | None = None  # last error's traceback
    resources: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    websockets: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    urls_module: ModuleType | None = None
    # The error log's sequence number when the activation began: errors of an
    # active applet after it are faults of what it runs or scheduled (hanji._errorlog).
    activated_seq: int = 0

    @property
    def id(self) -> str:
        return str(self.applet.id)

    # Computed once per record (per activation): the site reads them per request.
    @functools.cached_property
    def static_dir(self) -> Path | None:
        if self.path is not None and (self.path / "static").is_dir():
            return self.path / "static"
        return None

    @functools.cached_property
    def static_folder(self) -> Any:
        """The twisted.web resource serving ``static_dir`` (None without one)."""
        from hanji.server.http.static import folder

        return folder(self.static_dir) if self.static_dir is not None else None

    @property
    def template_dir(self) -> Path | None:
        if self.path is not None and (self.path / "templates").is_dir():
            return self.path / "templates"
        return None

    @property
    def error_summary(self) -> str:
        """The exception line of the last error's traceback (its last line; '' if
        none), shown on the home page when tracebacks are hidden."""
        return exception_line(self.error)

    def move_to(self, state: AppletState, error: str | None = None) -> None:
        """Change state (keeping ``error``, a traceback, for FAILED); reactor thread.
        Raise AppletStateError for a transition the life cycle does not have."""
        if state not in _TRANSITIONS[self.state]:
            raise AppletStateError(f"Applet '{self.id}' cannot go from {self.state} to {state}.")
        self.state = state
        if error is not None:
            self.error = error

    @property
    def is_active(self) -> bool:
        """Whether the applet's routes are mounted; any thread."""
        return self.state is AppletState.ACTIVE

    @property
    def url_prefix(self) -> str:
        prefix = getattr(self.applet, "url_prefix", None)
        if prefix is None:
            return f"applets/{self.id}/"
        prefix = prefix.strip("/")
        return prefix + "/" if prefix else ""


def _snake(name: str) -> str:
    """Return ``name`` in snake_case (``HelloWorld`` -> ``hello_world``)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _instance(obj: Any, base: type, *args: Any) -> Any:
    if inspect.isclass(obj):
        if not issubclass(obj, base):
            raise TypeError(f"{obj.__name__} is not a subclass of {base.__module__}.{base.__name__}")
        return obj(*args)
    return obj


def prepare(
    applet: Any, web: Any = None, *, package: str | None = None, path: Path | None = None
) -> AppletRecord:
    """Build a record from an Applet (class or instance) and a WebUI (class,
    instance or None); resolve the id. Any thread; runs no applet hook."""
    applet = _instance(applet, Applet)
    if not isinstance(applet, Applet):
        raise TypeError(f"{applet!r} is not a hanji.core.applet.Applet (class or instance)")
    if not hasattr(applet, "_hanji_opened"):  # a subclass __init__ that skipped super()
        applet._hanji_opened = OpenedThings()
    if not getattr(applet, "id", None):
        applet.id = package or _snake(type(applet).__name__)
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", str(applet.id)) or str(applet.id) in (".", ".."):
        raise ValueError(
            f"Applet id {applet.id!r} cannot be used in URLs: use letters, digits, '_', '-' or '.'."
        )
    if not getattr(applet, "name", None):
        applet.name = str(applet.id).replace("_", " ").title()
    web = _instance(web if web is not None else WebUI, WebUI, applet)
    if getattr(web, "applet", None) is None:
        web.applet = applet
    record = AppletRecord(applet=applet, web=web, package=package, path=path)
    # Where WebUI.render() finds content.html (hanji.django.webui); a WebUI instance
    # shared by two records of one package keeps the folder it has.
    if record.template_dir is not None or getattr(web, "_hanji_template_dir", None) is None:
        web._hanji_template_dir = record.template_dir
    return record


def _pick(module: ModuleType, instance_name: str, class_name: str, base: type) -> Any:
    """Return ``module.<instance_name>`` if it is a ``base`` instance, else
    ``module.<class_name>`` if it is a subclass of ``base`` (the reference imports
    ``from hanji.core import applet``, so ``applet`` may be that module)."""
    obj = getattr(module, instance_name, None)
    if isinstance(obj, base):
        return obj
    cls = getattr(module, class_name, None)
    if inspect.isclass(cls) and issubclass(cls, base) and cls is not base:
        return cls
    return None


def load_package(package: str, path: Path | None = None) -> AppletRecord:
    """Import an applet package and build its record. Blocks (imports): call it off
    the reactor thread. Raise AppletImportError naming the package on failure."""
    try:
        module = importlib.import_module(package)
        applet = _pick(module, "applet", "Applet", Applet)
        web = _pick(module, "web", "WebUI", WebUI)
        if web is None:
            for sub in ("webUI", "webui", "web_ui"):
                try:
                    webmod = importlib.import_module(f"{package}.{sub}")
                except ModuleNotFoundError as exc:
                    if exc.name == f"{package}.{sub}":
                        continue
                    raise
                web = _pick(webmod, "web", "WebUI", WebUI)
                break
        if applet is None:
            raise AppletImportError(
                package,
                f"Applet package '{package}' ({path}) defines no 'applet' instance or "
                "'Applet' class in its __init__.py: add `applet = Applet()`.",
            )
        return prepare(applet, web, package=package, path=path)
    except AppletImportError:
        raise
    except Exception as exc:
        raise AppletImportError(package, f"Applet package '{package}' failed to load: {exc!r}") from exc


class Registry:
    """Applet records by id. Mutate on the reactor thread; read from any thread."""

    def __init__(self) -> None:
        self._records: Mapping[str, AppletRecord] = MappingProxyType({})

    def _replace(self, **changes: AppletRecord | None) -> None:
        records = dict(self._records)
        for key, value in changes.items():
            if value is None:
                records.pop(key, None)
            else:
                records[key] = value
        self._records = MappingProxyType(records)

    def put(self, record: AppletRecord) -> None:
        """Install or replace the record of ``record.id`` atomically; reactor thread."""
        assert_reactor_thread("Registry.put()")
        self._replace(**{record.id: record})

    def remove(self, applet_id: str) -> None:
        """Forget an applet; reactor thread."""
        assert_reactor_thread("Registry.remove()")
        self._replace(**{applet_id: None})

    def snapshot(self) -> Mapping[str, AppletRecord]:
        """Return the current records (an immutable mapping); any thread."""
        return self._records

    def active(self) -> list[AppletRecord]:
        """Return the active applets' records sorted by id; any thread."""
        return sorted((r for r in self._records.values() if r.is_active), key=lambda r: r.id)

    def failed(self) -> list[AppletRecord]:
        """Return the failed applets' records sorted by id; any thread."""
        return sorted((r for r in self._records.values() if r.state is AppletState.FAILED), key=lambda r: r.id)

    def get(self, applet_id: str) -> AppletRecord:
        """Return the record of ``applet_id`` or raise AppletNotFound; any thread."""
        try:
            return self._records[applet_id]
        except KeyError:
            raise AppletNotFound(applet_id, [r.id for r in self.active()]) from None
