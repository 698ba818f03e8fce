"""Hanji's Django middleware; runs in the Django pool.

- :class:`TokenHeaderCsrfExemption` carries the CSRF rule of
  :mod:`hanji.server.security.csrf` over to Django views. The reactor has already
  refused Django requests without the access token
  (:mod:`hanji.server.security.access`); a request that carried it in a header
  (``X-Hanji-Token``, the notebook client's; the WSGI bridge removes it before
  Django sees it) is not a
  browser acting on a user's behalf, so Django's CsrfViewMiddleware lets it
  through. Cookie and ``?token=`` requests get Django's CSRF check as usual.
- :class:`AppendSlashMiddleware` is Django's ``CommonMiddleware`` without its one
  500 for a client's mistake.
- :class:`ResourceExhaustionMiddleware` answers 503 with the reason when a view fails
  for want of disk space or file descriptors.
"""

from __future__ import annotations

from typing import Any, Callable

from django.http import HttpRequest, HttpResponse
from django.middleware.common import CommonMiddleware

from hanji import _compat, _exhaustion
from hanji.django.bridge import TOKEN_HEADER_KEY


class TokenHeaderCsrfExemption:
    """Exempt requests authenticated by the token header from Django's CSRF check;
    list it before ``CsrfViewMiddleware``. Django worker thread."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.META.get(TOKEN_HEADER_KEY):  # noted (and removed) by the WSGI bridge
            _compat.skip_csrf_checks(request)
        return self.get_response(request)


class ResourceExhaustionMiddleware:
    """Answer 503 with the reason, not Django's empty 500, when a view fails because
    the server ran out of disk space or file descriptors (:mod:`hanji._exhaustion`);
    the cause is logged once per burst. Django worker thread."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        """Return the 503 for resource exhaustion, None for any other error."""
        reason = _exhaustion.exhaustion(exc)
        if reason is None:
            return None
        _exhaustion.report(reason, f"Django view {request.method} {request.path}")
        answer = HttpResponse(f"503 Service Unavailable: {_exhaustion.retry_message(reason)}\n",
                              status=503, content_type="text/plain; charset=utf-8")
        answer["Retry-After"] = "10"
        return answer


class AppendSlashMiddleware(CommonMiddleware):
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
