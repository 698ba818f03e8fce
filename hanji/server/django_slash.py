"""Django's CommonMiddleware, without its one 500 for a client's mistake; Django pool."""

from __future__ import annotations

from typing import Any

from django.middleware.common import CommonMiddleware as _DjangoCommonMiddleware


class CommonMiddleware(_DjangoCommonMiddleware):
    """Django's ``CommonMiddleware`` (``APPEND_SLASH``), except that a POST, PUT,
    PATCH or DELETE to a URL that lacks its trailing slash stays a 404.

    Django cannot redirect such a request without losing its body: in debug mode
    it raises a RuntimeError (a 500 for bad input), otherwise it redirects and the
    client re-sends it as a GET. A 404 names the URL that was not found instead.
    """

    def should_redirect_with_slash(self, request: Any) -> bool:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            return False
        return bool(super().should_redirect_with_slash(request))
