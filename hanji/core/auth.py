"""Django's user in Twisted resources and websockets: :func:`django_user`,
:func:`login_required`.

A TwAppletResource's ``request.session`` is Twisted's session, not Django's; the
logged-in user is Django's, found from Django's session cookie. Resolving it reads
the session and user tables, so it runs in the Django pool and arrives as a Deferred
(the reactor never blocks). Importing this module loads nothing of Django or of the
server; Django is imported when a user is resolved.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote

from hanji.core.utils import defer_to_django

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
    from twisted.web.server import Request

__all__ = ["django_user", "login_required"]


def _user_of_session(session_key: str | None, permission: str | None) -> tuple[Any, bool]:
    """Return the Django user of ``session_key`` (AnonymousUser if none) and whether
    it has ``permission`` (True without one); Django worker thread."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import get_user
    from django.http import HttpRequest

    stand_in = HttpRequest()
    stand_in.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user(stand_in)  # type: ignore[arg-type]
    allowed = permission is None or (user.is_authenticated and user.has_perm(permission))
    return user, allowed


def _session_key(request: Request) -> str | None:
    from django.conf import settings

    value = request.getCookie(settings.SESSION_COOKIE_NAME.encode("latin-1"))
    return value.decode("latin-1") if value else None


def django_user(request: Request, permission: str | None = None) -> Deferred[Any]:
    """Return a Deferred of the Django user of ``request`` (``AnonymousUser`` when not
    logged in), from Django's session cookie; also set as ``request.django_user``.
    Call it on the reactor thread; the lookup runs in the Django pool."""
    d = defer_to_django(_user_of_session, _session_key(request), permission)

    def keep(result: tuple[Any, bool]) -> Any:
        request.django_user = result[0]  # type: ignore[attr-defined]
        return result[0]

    return d.addCallback(keep)


def login_required(render: Callable[..., Any] | None = None, *, permission: str | None = None,
                   login_url: str | None = None) -> Any:
    """Decorate a ``render_<METHOD>`` so that it runs only for a logged-in Django user
    (with ``permission``, e.g. ``"notes.change_note"``, if given), found in
    ``request.django_user``. Others get 403 with the reason, or, with ``login_url``
    (``"/admin/login/"``), an anonymous visitor is redirected there with ``?next=``.
    The render method may return anything the render contract accepts but
    ``NOT_DONE_YET``."""

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def checked(self: Any, request: Request) -> Any:
            import inspect

            from twisted.internet import defer

            d = defer_to_django(_user_of_session, _session_key(request), permission)

            def go(result: tuple[Any, bool]) -> Any:
                user, allowed = result
                request.django_user = user  # type: ignore[attr-defined]
                path = request.path.decode("utf-8", "replace")
                if not user.is_authenticated and login_url:
                    request.redirect(f"{login_url}?next={quote(path)}".encode("utf-8"))
                    return b""
                if not user.is_authenticated or not allowed:
                    request.setResponseCode(403)
                    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
                    need = f"the permission {permission!r}" if user.is_authenticated else "a logged-in user"
                    return (f"403 Forbidden: {path} needs {need} (applet "
                            f"'{getattr(getattr(self, 'applet', None), 'id', '?')}'); log in (the admin's "
                            "login page, /admin/login/, does) with a user who has it.\n")
                result = method(self, request)
                return defer.ensureDeferred(result) if inspect.iscoroutine(result) else result

            return d.addCallback(go)

        return checked

    return decorate(render) if render is not None else decorate
