"""CSRF protection of unsafe methods on ``/res``; reactor thread (pure checks).

A request with an unsafe method (anything but GET, HEAD, OPTIONS and TRACE: POST,
PUT, PATCH, DELETE and custom methods alike) to a Twisted resource is served only if
one holds:

1. it carried the access token in a header (``X-Hanji-Token``, or the older
   ``Authorization: token …``; the
   notebook client's credential, which a browser never adds by itself);
2. it carries Django's CSRF token (``X-CSRFToken`` header or ``csrfmiddlewaretoken``
   form field) matching the ``csrftoken`` cookie, checked by Django's own
   ``CsrfViewMiddleware`` code (``hanji.callback`` sends it);
3. it is same-origin: its ``Origin`` (or, when absent, its ``Referer``'s origin) is
   the server's own, by the rule of the websocket origin check
   (:func:`hanji.server.security.origin.same_origin`: ``X-Forwarded-Host`` or ``Host``,
   the port told by ``X-Forwarded-Proto`` when the host names none).

Anything else gets a 403 with the reason. Requests authenticated by the access
cookie are not exempt: a cross-site page can make the browser send cookies.

When the ``Origin`` header names another origin, only the ``X-CSRFToken`` *header*
counts, not the form field: a page on another port of the same host can plant its
own ``csrftoken`` cookie (cookies ignore ports) and post a plain form with the
matching field, but it cannot add a custom header without a CORS preflight, which
Hanji never grants. (The header is what lets the site's own pages through a proxy
that rewrites ``Host``: their ``Origin`` is the proxy's.)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from hanji import _compat
from hanji.server.security import access
from hanji.server.security.origin import same_origin

# Django's list (RFC 9110 safe methods); every other method is checked.
SAFE_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE"})

_HOW = ("Send the X-CSRFToken header with the value of the csrftoken cookie (hanji.callback does), "
        "or call from a page of this server (same Origin), or authenticate with the header "
        "'X-Hanji-Token: <token>'.")


def _csrf_token_problem(request: Any, form_field: bool = True) -> str | None:
    """Return why the request's CSRF token (the header, or with ``form_field`` also
    the form field) is missing or wrong, None if it is valid; checked by Django's
    CsrfViewMiddleware on a stand-in HttpRequest."""
    from django.conf import settings
    from django.http import HttpRequest, QueryDict
    from django.middleware.csrf import RejectRequest

    stand_in = HttpRequest()
    stand_in.method = request.method.decode("ascii", "replace")
    cookie = request.getCookie(settings.CSRF_COOKIE_NAME.encode("latin-1"))
    if cookie is not None:
        stand_in.COOKIES[settings.CSRF_COOKIE_NAME] = cookie.decode("latin-1")
    # CSRF_HEADER_NAME is a WSGI name: HTTP_X_CSRFTOKEN is the X-CSRFToken header.
    header = settings.CSRF_HEADER_NAME.removeprefix("HTTP_").replace("_", "-").lower()
    value = request.getHeader(header.encode("latin-1"))
    if value is not None:
        stand_in.META[settings.CSRF_HEADER_NAME] = value.decode("latin-1")
    form = QueryDict(mutable=True)
    field = _form_field(request) if form_field else None
    if field is not None:
        form["csrfmiddlewaretoken"] = field
    stand_in.POST = form  # type: ignore[assignment]
    try:
        _compat.check_csrf_token(stand_in)
    except RejectRequest as exc:
        return str(exc.reason)
    return None


def _form_field(request: Any) -> str | None:
    content_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
    if content_type not in (b"application/x-www-form-urlencoded", b"multipart/form-data"):
        return None
    args = getattr(request, "args", None) or {}
    values = args.get(b"csrfmiddlewaretoken") if isinstance(args, dict) else None
    if not values:
        return None
    value = values[0]
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _referer_origin(request: Any) -> str | None:
    referer = request.getHeader(b"referer")
    if not referer:
        return None
    try:
        parts = urlsplit(referer.decode("latin-1").strip())
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def refusal(request: Any) -> str | None:
    """Return why an unsafe request must be refused (403), or None to serve it.
    Run after :func:`hanji.server.security.access.authenticate`; reactor thread."""
    if request.method in SAFE_METHODS:
        return None
    if getattr(request, "hanji_auth", None) == access.HEADER:
        return None
    # The cheap check first: most unsafe requests come from the site's own pages.
    origin_header = request.getHeader(b"origin")
    if origin_header is not None:
        origin: str | None = origin_header.decode("latin-1").strip()
        source = "Origin"
    else:
        origin, source = _referer_origin(request), "Referer"
    if origin is not None and same_origin(request, origin):
        return None
    problem = _csrf_token_problem(request, form_field=source != "Origin")
    if problem is None:
        return None
    if origin is None:
        return f"no Origin or Referer header, and no valid CSRF token ({problem}). {_HOW}"
    what = f"from {origin}" if source == "Origin" else f"(Referer from {origin})"
    return f"cross-origin request {what} refused (CSRF protection). {_HOW}"
