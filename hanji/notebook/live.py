"""Applets defined in notebook cells: activate, re-activate (hot swap), deactivate,
and one-off endpoints.

A cell defines classes exactly as an applet package would; their methods keep the
notebook's globals, so a module imported in an earlier cell is usable in them.
``hanji.activate(MyApplet, web=MyWebUI)`` builds the record on the cell thread
(no applet hook runs there) and hands it to the reactor, which runs ``on_activate``
in the Django pool and swaps the routes in one step: re-running the cell with changed
code replaces the applet at the same URLs, after the old instance's ``on_deactivate``.
"""

from __future__ import annotations

import inspect
import types
from typing import Any, Callable, Iterable, TypeVar

from hanji._exceptions import AppletActivationError, AppletNotFound
from hanji.core.applet import Applet, WebUI
from hanji.core.utils import TwAppletResource
from hanji.notebook import hooks
from hanji.notebook._usage import UnknownApplet, UsageError
from hanji.notebook.display import public_base
from hanji.notebook.reports import Activation
from hanji.notebook.session import Session, running_session
from hanji import _errorlog as _errors
from hanji.server.registry import AppletRecord, prepare

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_ENDPOINT_APPLET = "notebook"
_endpoints: dict[str, dict[str, tuple[Callable[..., Any], tuple[str, ...]]]] = {}


def _urls_module(applet_id: str, urls: Any) -> types.ModuleType:
    """Wrap Django URL patterns given in a cell as a urls module."""
    module = types.ModuleType(f"hanji_live_{applet_id}_urls")
    module.urlpatterns = list(getattr(urls, "urlpatterns", urls))  # type: ignore[attr-defined]
    app_name = getattr(urls, "app_name", None)
    if app_name:
        module.app_name = app_name  # type: ignore[attr-defined]
    return module


def _activation(session: Session, record: AppletRecord) -> Activation:
    base = public_base(session.url, session.server.port)
    urls = [f"{base}/res/{record.id}/{p}" for p in record.resources]
    urls += [f"{base}/ws/{record.id}/{p}" for p in record.websockets]
    if record.urls_module is not None:
        urls.append(f"{base}/{record.url_prefix}")
    return Activation(record.id, record.version, record.state, urls)


def activate(applet: Any, web: Any = None, *, urls: Any = None, timeout: float = 60.0) -> Activation:
    """Activate an applet defined in the notebook, or replace the active one of the
    same id (hot swap); cell thread.

    ``applet`` and ``web`` are an Applet and a WebUI, each a class or an instance;
    ``urls`` optional Django URL patterns mounted at the applet's URL prefix. Return
    what was activated. Raise AppletActivationError, chained to the original error,
    if ``on_activate`` raised; the other applets are unaffected.
    """
    session = running_session()
    try:
        record = prepare(applet, web)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"hanji.activate(): {exc}") from None
    if urls is not None:
        record.urls_module = _urls_module(record.id, urls)
    _use_latest_definitions(record)
    before = _errors.last_seq()
    try:
        done = session.call(session.server.activate_record, record, timeout=timeout,
                            what=f"activating applet '{record.id}'")
    except TimeoutError:
        raise
    except Exception as exc:
        # The traceback is raised here; don't print it again after the cell.
        reported = [e for e in _errors.since(before) if e.applet_id == record.id]
        hooks.mark_shown([e.seq for e in reported])
        frames = _errors.user_frames(reported[-1].traceback) if reported else f"{type(exc).__name__}: {exc}"
        error = AppletActivationError(
            record.id,
            f"Applet '{record.id}' failed to activate.\n{frames}\n"
            f"Fix the code above and re-run the cell; the other applets are unaffected. "
            f"The whole traceback, through Hanji's and Twisted's frames: hanji.errors('{record.id}').",
        )
        error.__cause__ = exc  # kept for code that catches it, not shown by the notebook
        raise error from None
    return _activation(session, done)


def _use_latest_definitions(record: AppletRecord) -> None:
    """Serve the latest definition of each resource and websocket class that a cell
    redefined after the WebUI listed it (re-running only the ``hanji.activate`` cell
    would otherwise keep the old class, silently), and say so on stderr; cell thread."""
    import sys

    from IPython import get_ipython

    shell = get_ipython()
    namespace = shell.user_ns if shell is not None else vars(sys.modules["__main__"])
    web = record.web
    replaced = []
    for attribute in ("twisted_dynamic_resources", "websocket_resources"):
        listed = list(getattr(web, attribute, None) or [])
        fresh = []
        for cls in listed:
            latest = namespace.get(getattr(cls, "__name__", ""))
            if (isinstance(cls, type) and isinstance(latest, type) and latest is not cls
                    and cls.__module__ == latest.__module__ == "__main__"
                    and latest.__qualname__ == cls.__qualname__):
                replaced.append(cls.__name__)
                cls = latest
            fresh.append(cls)
        if fresh != listed:
            setattr(web, attribute, fresh)  # on the instance: the user's class is left as it is
    if replaced:
        names = ", ".join(replaced)
        print(f"hanji.activate('{record.id}'): {names} {'was' if len(replaced) == 1 else 'were'} redefined "
              f"after {type(web).__name__} listed {'it' if len(replaced) == 1 else 'them'}; serving the new "
              f"definition. Re-run the {type(web).__name__} cell to keep them in step.", file=sys.stderr)


def deactivate(applet_id: str, *, timeout: float = 30.0) -> None:
    """Unmount an applet, run its ``on_deactivate`` and close what it opened; cell thread.

    Raise UnknownApplet (a UsageError) for an id no applet has.
    """
    session = running_session()
    known = session.server.registry.snapshot()
    if applet_id not in known:
        raise UnknownApplet(applet_id, [r.id for r in session.server.registry.active()])
    try:
        session.call(session.server.deactivate, applet_id, timeout=timeout,
                     what=f"deactivating applet '{applet_id}'")
    except AppletNotFound as exc:
        raise UnknownApplet(applet_id, [r.id for r in session.server.registry.active()]) from exc
    _endpoints.pop(applet_id, None)


def _endpoint_resource(path: str, func: Callable[..., Any], methods: tuple[str, ...]) -> type:
    """Return a TwAppletResource class serving ``func`` at ``path``."""
    takes_request = bool(inspect.signature(func).parameters)

    def render(self: Any, request: Any) -> Any:
        # Reactor thread, under the render contract.
        return func(request) if takes_request else func()

    attrs: dict[str, Any] = {"path": path, "__doc__": func.__doc__, "__module__": func.__module__}
    for method in methods:
        attrs[f"render_{method}"] = render
    name = "".join(part.title() for part in getattr(func, "__name__", "endpoint").split("_")) or "Endpoint"
    return type(f"{name}Endpoint", (TwAppletResource,), attrs)


def endpoint(path: str, *, applet: str = DEFAULT_ENDPOINT_APPLET,
             methods: Iterable[str] = ("GET", "POST"), timeout: float = 60.0) -> Callable[[F], F]:
    """Serve the decorated function at ``/res/<applet>/<path>`` and return it unchanged.

    The function runs on the reactor thread under the render contract (return bytes,
    str, a dict or list, a Deferred or a coroutine; never block) and takes the request
    or nothing. Endpoints of one applet (default ``notebook``) are activated together;
    re-running the cell swaps the new version in.
    """
    if not isinstance(path, str) or not path.strip("/"):
        raise UsageError(f"hanji.endpoint(): path {path!r} must be a non-empty resource path such as 'hello'.")
    verbs = tuple(m.upper() for m in methods)
    if not verbs or not all(v.isalpha() for v in verbs):
        raise UsageError(f"hanji.endpoint(): methods {tuple(methods)!r} must be HTTP verbs such as 'GET'.")
    clean = path.strip("/")

    def decorate(func: F) -> F:
        if not callable(func):
            raise UsageError("@hanji.endpoint(...) decorates a function.")
        table = dict(_endpoints.get(applet, {}))
        table[clean] = (func, verbs)
        resources = [_endpoint_resource(p, f, m) for p, (f, m) in sorted(table.items())]
        web = type("EndpointsWebUI", (WebUI,), {"twisted_dynamic_resources": resources,
                                                "template": _endpoints_template(sorted(table))})
        owner = Applet(id=applet, name=f"{applet} endpoints",
                       description="Endpoints defined with @hanji.endpoint in the notebook.")
        activate(owner, web, timeout=timeout)
        _endpoints[applet] = table
        return func

    return decorate


def _endpoints_template(paths: list[str]) -> str:
    items = "".join(f'<li><a href="/res/{{{{ applet.id }}}}/{p}">/res/{{{{ applet.id }}}}/{p}</a></li>' for p in paths)
    return f"<ul>{items}</ul>"


def forget() -> None:
    """Forget the notebook's endpoints (after Hanji stopped); cell thread."""
    _endpoints.clear()
