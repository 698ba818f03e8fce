"""Hanji's Django views; they run in the Django pool."""

from __future__ import annotations

import traceback
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import get_script_prefix
from django.views.decorators.csrf import ensure_csrf_cookie

from hanji._threads import debug_enabled
from hanji import _errorlog as _errors
from hanji.django.bridge import ENVIRON_KEY


def _card(record: Any, request: HttpRequest) -> dict[str, Any]:
    try:
        content = record.web.render(request)
        error = None
    except Exception:
        _errors.report_failure(record.id, "WebUI.render()", traceback.format_exc())
        content, error = "", f"This applet's web UI failed to render; see logger hanji.applet.{record.id}."
    icon = None
    if record.static_dir is not None and (record.static_dir / record.applet.icon).is_file():
        icon = f"{get_script_prefix()}static/{record.id}/{record.applet.icon}{_token_query(request)}"
    return {"applet": record.applet, "content": content, "icon": icon, "error": error,
            "has_help": record.static_dir is not None and (record.static_dir / "help.html").is_file(),
            "where": _where(record, request)}


def _where(record: Any, request: HttpRequest) -> str:
    """Return where the applet's ``on_activate`` runs ("every worker", "this process
    (lease held)", ...; see hanji.server.placement), '' without a server."""
    placements = getattr(hanji_server(request), "placements", None)
    return str(placements.where(record)) if placements is not None else ""


def page_token(request: HttpRequest) -> str | None:
    """Return the access token a page opened with ``?token=`` or with a notebook's
    ``?ticket=`` passes on to its links and scripts, else None.

    A page framed in another site's page (``hanji.show`` in a notebook on a name
    other than the server's) gets no SameSite cookie, so its own links carry the
    token. A ticket stands for the token (see hanji.server.security.access); the
    request got here, so it was valid or the browser has the cookie."""
    token = request.GET.get("token")
    if token:
        return token
    if request.GET.get("ticket"):
        return getattr(hanji_server(request), "token", None)
    return None


def _token_query(request: HttpRequest) -> str:
    """Return ``?token=…`` for :func:`page_token`'s token, else ''."""
    token = page_token(request)
    return f"?{urlencode({'token': token})}" if token else ""


def hanji_server(request: HttpRequest) -> Any:
    """Return the Hanji server that handed ``request`` to Django (the WSGI bridge
    puts it in the environ as ``hanji.server``), or None (Django's test client)."""
    return request.META.get(ENVIRON_KEY)


def base_path(request: HttpRequest) -> dict[str, str]:
    """Context processor: ``hanji_base``, the site's path prefix behind a proxy
    (``''`` when served at the root); prefix site URLs in templates with it."""
    return {"hanji_base": get_script_prefix().rstrip("/")}


@ensure_csrf_cookie
def home(request: HttpRequest) -> HttpResponse:
    """Render the home page: every active applet with its web UI, or only the one
    named by ``?applet=<id>`` (what ``hanji.show`` frames). It sets the csrftoken
    cookie that ``hanji.callback`` sends back as X-CSRFToken."""
    server = hanji_server(request)
    records = server.registry.active() if server is not None else []
    only = request.GET.get("applet")
    if only:
        records = [r for r in records if r.id == only]
    failed = server.registry.failed() if server and not only else []
    cards = [_card(r, request) for r in records]
    return render(request, "hanji/home.html",
                  {"cards": cards, "failed": failed, "debug_tracebacks": debug_enabled(),
                   "token_query": _token_query(request), "page_token": page_token(request) or "",
                   # Django's admin, for a user who may use it (staff, logged in).
                   "show_admin": bool(getattr(request.user, "is_active", False)
                                      and getattr(request.user, "is_staff", False))})
