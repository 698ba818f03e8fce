"""The notebook API, re-exported by :mod:`hanji` (``hanji.activate``, ``hanji.get``, ...).

Every function runs on the cell thread (or any thread but the reactor's) and needs
``%load_ext hanji`` first; a call before raises a one-line UsageError.
"""

from __future__ import annotations

from typing import Any

from hanji.notebook import live, schema
from hanji.notebook._usage import UnknownApplet, UsageError
from hanji.notebook.client import aget, apost, arequest, get, post, request, site_path
from hanji.notebook.display import applet_frame, applet_page, display_live, public_base, stopped_note, with_token
from hanji.notebook.reports import Errors, Routes, Status, applets_of, errors_view
from hanji.notebook.schema import MigrationReport
from hanji.notebook.session import get_session, running_session
from hanji import _errorlog as _errors

activate = live.activate
deactivate = live.deactivate
endpoint = live.endpoint

__all__ = [
    "activate",
    "aget",
    "apost",
    "applets",
    "arequest",
    "deactivate",
    "endpoint",
    "errors",
    "get",
    "migrate",
    "post",
    "request",
    "routes",
    "show",
    "status",
    "url",
    "ws",
]


def url(applet_id: str | None = None, path: str = "", *, public: bool = False) -> str:
    """Return the absolute URL of a resource (``url("counter", "hits")``), of an
    applet's resources root (``url("counter")``) or of the site (``url()``); the
    path is percent-encoded (spaces, non-ASCII), an encoded one kept as it is.

    The local URL by default (what Python code in the kernel can fetch; hanji.get
    sends the access token as a header); the browser's with ``public=True`` (see
    :mod:`hanji.notebook.display`), which carries ``?token=`` as hanji.show's links do.
    """
    session = running_session()
    base = public_base(session.url, session.server.port) if public else session.url
    if applet_id is None:
        if path:
            raise UsageError("hanji.url(): give the applet id before the path, e.g. hanji.url('counter', 'hits').")
        found = base + "/"
    else:
        found = base + site_path((applet_id, path))  # percent-encoded, as hanji.get sends it
    return with_token(found, session.token) if public else found


def _active_record(applet_id: str) -> Any:
    session = running_session()
    record = session.server.registry.snapshot().get(applet_id)
    if record is None or not record.is_active:
        raise UnknownApplet(applet_id, [r.id for r in session.server.registry.active()])
    return record


def show(applet_id: str, *, height: int = 360) -> None:
    """Show an applet's web UI inline (an iframe of its card on the home page) with
    a link to open it in a new tab.

    The frame and the link carry one-time tickets, not the access token, so that a
    saved notebook holds none; when Hanji stops, the output says so."""
    from hanji.server.security.access import issue_ticket

    session = running_session()
    record = _active_record(applet_id)
    base = public_base(session.url, session.server.port)
    token = session.token

    def page() -> str:
        return applet_page(base, record.id, ticket=issue_ticket(token) if token else None)

    frame = applet_frame(record.id, str(record.applet.name), page(), height, link_url=page())
    display_live(frame, stopped_note(f"the server that showed applet '{record.id}' at {base}/"),
                 session.on_stop)


def errors(applet_id: str | None = None, *, clear: bool = False) -> Errors:
    """Return the applet errors recorded in this kernel, oldest first, with full
    tracebacks (optionally of one applet); ``clear=True`` forgets them afterwards."""
    found = errors_view(_errors.all_errors(applet_id))
    if clear:
        _errors.clear()
    return found


def migrate(applet_id: str | None = None, *, reset: bool = False, timeout: float = 120.0) -> MigrationReport:
    """Create or update tables: of the models defined in cells with
    ``app_label = applet_id``, of an installed applet, or of everything (no id).

    Runs in the Django pool. ``reset=True`` drops and recreates a cell-defined
    applet's tables (their rows are lost).
    """
    session = running_session()
    what = f"hanji.migrate({applet_id!r})" if applet_id else "hanji.migrate()"
    return session.call(session.server.call_in_pool, schema.migrate, applet_id, reset,  # type: ignore[no-any-return]
                        timeout=timeout, what=what)


def routes() -> Routes:
    """Return the routing table (Twisted first, Django after, overlaps marked)."""
    session = running_session()
    return Routes(session.server.routes())


def applets() -> Any:
    """Return the applets the server knows: state, version, resources, last error."""
    return applets_of(running_session().server)


def status() -> Status:
    """Return Hanji's state in this kernel: reactor thread, URL, applets, errors."""
    from hanji.notebook.reports import Applets

    session = get_session()
    thread = session.reactor_thread()
    running = session.running and session.server is not None
    return Status(
        running=running,
        url=session.url if running else None,
        public_url=public_base(session.url, session.server.port) if running else None,
        reactor=thread.name if thread is not None else "HanjiReactor",
        reactor_alive=bool(thread is not None and thread.is_alive()),
        data_dir=str(session.data_dir) if session.data_dir else None,
        log_path=str(session.log_path) if session.log_path else None,
        applets=applets_of(session.server) if session.server is not None else Applets(),
        errors=len(_errors.all_errors()),
        stalls=session.server.watchdog.summary() if session.server is not None else "",
        token=session.token if running else None,
    )


def __getattr__(name: str) -> Any:
    # ws() lives in the websocket client module; import it only when used.
    if name == "ws":
        from hanji.notebook.ws_client import ws

        return ws
    raise AttributeError(f"module 'hanji.notebook.api' has no attribute {name!r}")

