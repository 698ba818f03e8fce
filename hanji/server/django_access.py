"""The access token on the Django side: a middleware; runs in the Django pool.

The reactor has already refused Django requests without the token
(:mod:`hanji.server.access`). This middleware only carries over the CSRF rule of
:mod:`hanji.server.csrf` to Django views: a request that carries the token in an
``Authorization: token …`` header (the notebook client, a script) is not a browser
acting on a user's behalf, so Django's CsrfViewMiddleware lets it through. Cookie
and ``?token=`` requests get Django's CSRF check as usual.
"""

from __future__ import annotations

from typing import Any, Callable

from hanji.server import access


class TokenHeaderCsrfExemption:
    """Exempt requests authenticated by the token header from Django's CSRF check;
    list it before ``CsrfViewMiddleware``. Django worker thread."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        from hanji.server.runtime import current

        server = current()
        token = getattr(server, "token", None)
        if token and access.header_has_token(request.META.get("HTTP_AUTHORIZATION"), token):
            # Django's own switch (its test client uses it) to skip the CSRF check.
            request._dont_enforce_csrf_checks = True
        return self.get_response(request)
