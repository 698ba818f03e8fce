"""The render contract of TwAppletResource, on the reactor thread.

A ``render_<METHOD>`` may return bytes; str (UTF-8, ``text/html`` unless a type is
set); a dict or list (JSON); a Deferred or a coroutine (waited for, then written by the
same rules); or ``NOT_DONE_YET`` (the resource finishes the request itself). An
exception becomes a 500 logged under ``hanji.applet.<id>``; the traceback is in the
body only in debug mode. A client that goes away cancels a pending Deferred.
"""

from __future__ import annotations

import inspect
import json
from typing import Any, Callable

from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web import error as web_error
from twisted.web import http
from twisted.web.server import NOT_DONE_YET

from hanji import _threads
from hanji._exceptions import DjangoPoolFull, MissingArgument
from hanji import _errorlog as _errors
from hanji import _exhaustion
from hanji.server.http import answers


class ArgsDict(dict):  # type: ignore[type-arg]
    """``request.args`` that also answers str keys, with str values.

    ``args[b"k"]`` gives bytes values as in Twisted; ``args["k"]`` gives str values
    (UTF-8, undecodable bytes replaced), so Python 2 era code such as
    ``request.args['is_good'][0] == "yes"`` works as written.
    """

    def _str_key(self, key: str) -> bytes:
        return key.encode("utf-8")

    def __getitem__(self, key: Any) -> Any:
        try:
            if isinstance(key, str):
                values = dict.__getitem__(self, self._str_key(key))
                return [v.decode("utf-8", "replace") for v in values]
            return dict.__getitem__(self, key)
        except KeyError:
            raise MissingArgument(key) from None

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            key = self._str_key(key)
        return dict.__contains__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


def use_args_dict(request: Any) -> None:
    """Make ``request.args`` an :class:`ArgsDict` (reactor thread)."""
    if not isinstance(request.args, ArgsDict):
        request.args = ArgsDict(request.args)


def _applet_id(resource: Any) -> str:
    applet = getattr(resource, "applet", None)
    return str(getattr(applet, "id", None) or "?")


def _where(resource: Any, request: Any) -> str:
    # The path without the query, which may hold the access token (?token=).
    return f"{type(resource).__name__} {request.method.decode('ascii', 'replace')} {request.path.decode('utf-8', 'replace')}"


def to_body(request: Any, result: Any, resource: Any) -> bytes:
    """Turn a render result into body bytes, setting the content type; reactor thread."""
    if isinstance(result, bytes):
        return result
    has_type = request.responseHeaders.hasHeader(b"content-type")
    if isinstance(result, str):
        if not has_type:
            ctype = getattr(resource, "content_type", None) or "text/html; charset=utf-8"
            request.setHeader(b"content-type", ctype.encode("ascii"))
        return result.encode("utf-8")
    if isinstance(result, (dict, list)):
        if not has_type:
            request.setHeader(b"content-type", b"application/json")
        return json.dumps(result).encode("utf-8")
    if result is None:
        return b""
    raise TypeError(
        f"{type(resource).__name__}.render_{request.method.decode('ascii', 'replace')} "
        f"(applet '{_applet_id(resource)}') returned {type(result).__name__}; return "
        "bytes, str, a dict or list, a Deferred, a coroutine or NOT_DONE_YET."
    )


def _error_response(request: Any, resource: Any, failure: Failure) -> bytes:
    """Log ``failure`` for the applet and return the body of a 500 (or the status an
    explicit twisted.web.error.Error asks for); reactor thread."""
    exc = failure.value
    if isinstance(exc, MissingArgument):
        # Bad input, not a bug: the client left out an argument the resource reads.
        return answers.answer(request, http.BAD_REQUEST, (
            f"missing argument {exc.name!r} for {_where(resource, request)} (applet "
            f"'{_applet_id(resource)}'); send it in the query string or the form body."))
    if isinstance(exc, DjangoPoolFull):
        # Overload, not a bug: ask the client to come back.
        return answers.answer(request, http.SERVICE_UNAVAILABLE, (
            f"{_where(resource, request)} (applet '{_applet_id(resource)}'): {exc}"),
            {b"retry-after": str(exc.retry_after).encode("ascii")})
    exhausted = _exhaustion.exhaustion(exc)
    if exhausted is not None:
        # The machine ran out of something: not the applet's bug, and worth a retry.
        _exhaustion.report(exhausted, _where(resource, request))
        return answers.answer(request, http.SERVICE_UNAVAILABLE, _exhaustion.retry_message(exhausted),
                              {b"retry-after": b"10"})
    if isinstance(exc, web_error.Error) and exc.status is not None:
        # The resource chose its status and message (twisted.web's own error type).
        code = int(exc.status)
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        message = exc.message or http.RESPONSES.get(code, b"")
        return message if isinstance(message, bytes) else str(message).encode()
    applet_id = _applet_id(resource)
    where = _where(resource, request)
    text = failure.getTraceback()
    _errors.report_failure(applet_id, where, text, f"{where} failed")
    reason = (f"applet '{applet_id}' failed in {where}.\n"
              f"The traceback is in the server log (logger hanji.applet.{applet_id}).")
    if _threads.debug_enabled():
        reason += "\n\n" + text
    return answers.answer(request, http.INTERNAL_SERVER_ERROR, reason)


def deliver(request: Any, resource: Any, result: Any) -> Any:
    """Apply the contract to ``result``; return what twisted.web's render returns.

    Must run on the reactor thread.
    """
    if result is NOT_DONE_YET:
        return NOT_DONE_YET
    if inspect.iscoroutine(result):
        result = defer.ensureDeferred(result)
    if isinstance(result, defer.Deferred):
        _wait_and_write(request, resource, result)
        return NOT_DONE_YET
    try:
        return to_body(request, result, resource)
    except Exception:
        return _error_response(request, resource, Failure())


def _wait_and_write(request: Any, resource: Any, d: defer.Deferred[Any]) -> None:
    """Write the result of ``d`` when it fires, unless the client left first (then
    cancel ``d``); reactor thread."""
    gone = False

    def on_gone(reason: Failure) -> None:
        nonlocal gone
        gone = True
        if not d.called:
            d.cancel()

    # Fires (with an error) when the connection is lost before the answer is done.
    request.notifyFinish().addErrback(on_gone)

    def finish_with(body: bytes) -> None:
        request.write(body)
        request.finish()

    def write_result(result: Any) -> None:
        if gone or request.finished:
            return
        try:
            body = to_body(request, result, resource)
        except Exception:
            body = _error_response(request, resource, Failure())
        finish_with(body)

    def write_failure(failure: Failure) -> None:
        if gone or request.finished:
            if not failure.check(defer.CancelledError):
                _error_response(request, resource, failure)  # still logged
            return
        finish_with(_error_response(request, resource, failure))

    d.addCallbacks(write_result, write_failure)


def render_with_contract(
    resource: Any, request: Any, handler: Callable[[Any], Any]
) -> Any:
    """Call ``handler(request)`` and apply the contract; reactor thread.

    The handler does not run as the applet (see :mod:`hanji.server.tracking`): what
    a request schedules belongs to the request, and a hot swap must not cancel it.
    """
    use_args_dict(request)
    try:
        result = handler(request)
    except Exception:
        return _error_response(request, resource, Failure())
    return deliver(request, resource, result)
