"""The render contract of TwAppletResource, on DummyRequest (no server, no reactor)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.web import error as web_error
from twisted.web.error import UnsupportedMethod
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from hanji import _errorlog, _threads
from hanji._exceptions import DjangoPoolFull, MissingArgument
from hanji.core.applet import Applet
from hanji.core.utils import TwAppletResource
from hanji.server.http.render import ArgsDict, render_with_contract, to_body

APPLET = Applet(id="demo")


def make_request(method: bytes = b"GET", path: bytes = b"/res/demo/x",
                 args: dict[bytes, list[bytes]] | None = None) -> DummyRequest:
    """Return a DummyRequest for ``method`` ``path`` with ``args``."""
    request = DummyRequest([])
    request.method = method
    request.path = path
    request.uri = path
    request.args = dict(args or {})
    return request


def render(resource: Any, request: DummyRequest) -> Any:
    """Render ``resource`` as twisted.web would: write and finish a direct result."""
    result = resource.render(request)
    if result is not NOT_DONE_YET:
        request.write(result)
        request.finish()
    return result


def header(request: DummyRequest, name: bytes) -> list[bytes] | None:
    return request.responseHeaders.getRawHeaders(name)


def written(request: DummyRequest) -> bytes:
    return b"".join(request.written)


class Returns(TwAppletResource):
    """A resource whose render_GET returns ``self.value``."""

    def __init__(self, value: Any, **attributes: Any) -> None:
        super().__init__(APPLET)
        self.value = value
        self.__dict__.update(attributes)

    def render_GET(self, request: Any) -> Any:
        return self.value


@pytest.mark.parametrize("value, body, ctype", [
    (b"\x00raw", b"\x00raw", None),
    ("h\u00e9llo", "h\u00e9llo".encode(), [b"text/html; charset=utf-8"]),
    ({"a": 1, "l": [1, 2]}, b'{"a": 1, "l": [1, 2]}', [b"application/json"]),
    ([1, "two"], b'[1, "two"]', [b"application/json"]),
    (None, b"", None),
])
def test_plain_results_become_body_and_type(value: Any, body: bytes, ctype: list[bytes] | None) -> None:
    """bytes, str, dict, list and None become the documented body and content type."""
    request = make_request()
    render(Returns(value), request)
    assert written(request) == body
    assert header(request, b"content-type") == ctype
    assert request.finished == 1
    assert request.responseCode is None  # 200: nothing set


def test_str_uses_the_class_content_type() -> None:
    """A str result takes the resource's content_type attribute."""
    request = make_request()
    render(Returns("plain", content_type="text/plain; charset=utf-8"), request)
    assert header(request, b"content-type") == [b"text/plain; charset=utf-8"]


def test_str_keeps_a_type_set_by_the_resource() -> None:
    """A content type set by the resource with setHeader is kept, not doubled."""

    class Typed(TwAppletResource):
        def render_GET(self, request: Any) -> Any:
            request.setHeader(b"content-type", b"text/csv")
            return {"not": "json type"}

    request = make_request()
    render(Typed(APPLET), request)
    assert header(request, b"content-type") == [b"text/csv"]
    assert json.loads(written(request)) == {"not": "json type"}


def test_to_body_refuses_other_types_naming_them() -> None:
    """to_body raises TypeError naming the method, the applet and the type returned."""
    with pytest.raises(TypeError, match=r"Returns.render_GET \(applet 'demo'\) returned int"):
        to_body(make_request(), 42, Returns(42))


def test_unsupported_return_type_is_500() -> None:
    """A render method returning an int gives a 500; the logged error says what it returned."""
    request = make_request()
    render(Returns(42), request)
    assert request.responseCode == 500
    assert written(request).startswith(b"500 Internal Server Error: applet 'demo' failed in Returns GET")
    [error] = _errorlog.all_errors("demo")
    assert "Returns.render_GET (applet 'demo') returned int" in error.traceback


def test_deferred_result_is_written_when_it_fires() -> None:
    """A Deferred is waited for, then its dict is written as JSON and the request finished."""
    d: defer.Deferred[Any] = defer.Deferred()
    request = make_request()
    assert render(Returns(d), request) is NOT_DONE_YET
    assert request.written == [] and request.finished == 0
    d.callback({"later": True})
    assert json.loads(written(request)) == {"later": True}
    assert header(request, b"content-type") == [b"application/json"]
    assert request.finished == 1


def test_failed_deferred_is_500_naming_the_applet() -> None:
    """A Deferred that fails later gives a 500 naming the applet and the path, and is recorded."""
    d: defer.Deferred[Any] = defer.Deferred()
    request = make_request(path=b"/res/demo/later")
    render(Returns(d), request)
    d.errback(ZeroDivisionError("late"))
    assert request.responseCode == 500
    text = written(request).decode()
    assert text.startswith("500 Internal Server Error: applet 'demo' failed in Returns GET /res/demo/later.")
    assert "logger hanji.applet.demo" in text
    assert "ZeroDivisionError" not in text  # the traceback only in debug mode
    assert request.finished == 1
    [error] = _errorlog.all_errors("demo")
    assert "ZeroDivisionError: late" in error.traceback


def test_client_leaving_cancels_the_deferred_and_writes_nothing() -> None:
    """A client that goes away cancels the pending Deferred; nothing is written or logged."""
    cancelled: list[bool] = []
    d: defer.Deferred[Any] = defer.Deferred(lambda _: cancelled.append(True))
    request = make_request()
    render(Returns(d), request)
    request.processingFailed(Failure(ConnectionDone("client left")))
    assert cancelled == [True]
    assert request.written == [] and request.finished == 0
    assert _errorlog.all_errors() == []


def test_result_after_the_client_left_is_dropped() -> None:
    """A Deferred whose canceller still gives a result writes nothing once the client left."""
    d: defer.Deferred[Any] = defer.Deferred(lambda self: self.callback("too late"))
    request = make_request()
    render(Returns(d), request)
    request.processingFailed(Failure(ConnectionDone("client left")))
    assert d.called
    assert request.written == [] and request.finished == 0


def test_coroutine_is_awaited_then_written() -> None:
    """An async render_GET is run and its str result written once what it awaits fires."""
    gate: defer.Deferred[str] = defer.Deferred()

    class Async(TwAppletResource):
        async def render_GET(self, request: Any) -> Any:
            name = await gate
            return f"hello {name}"

    request = make_request()
    assert render(Async(APPLET), request) is NOT_DONE_YET
    assert request.written == []
    gate.callback("you")
    assert written(request) == b"hello you"
    assert header(request, b"content-type") == [b"text/html; charset=utf-8"]
    assert request.finished == 1


def test_not_done_yet_leaves_the_request_to_the_resource() -> None:
    """NOT_DONE_YET is passed through and the resource finishes the request itself."""

    class ByHand(TwAppletResource):
        def render_GET(self, request: Any) -> Any:
            request.write(b"by hand")
            request.finish()
            return NOT_DONE_YET

    request = make_request()
    assert render(ByHand(APPLET), request) is NOT_DONE_YET
    assert request.written == [b"by hand"] and request.finished == 1


class Boom(TwAppletResource):
    """A resource whose render_GET raises."""

    def render_GET(self, request: Any) -> Any:
        raise RuntimeError("boom in render")


def test_exception_is_500_naming_the_applet() -> None:
    """An exception in a render method is a plain-text 500 naming the applet, logged under it."""
    request = make_request(path=b"/res/demo/boom")
    render(Boom(APPLET), request)
    assert request.responseCode == 500
    assert header(request, b"content-type") == [b"text/plain; charset=utf-8"]
    text = written(request).decode()
    assert text.startswith("500 Internal Server Error: applet 'demo' failed in Boom GET /res/demo/boom.")
    assert "Traceback" not in text
    [error] = _errorlog.all_errors()
    assert error.applet_id == "demo" and error.where == "Boom GET /res/demo/boom"
    assert "RuntimeError: boom in render" in error.traceback


def test_exception_body_has_the_traceback_in_debug_mode() -> None:
    """In debug mode the 500 body also holds the traceback."""
    _threads.set_debug(True)
    request = make_request(path=b"/res/demo/boom")
    render(Boom(APPLET), request)
    assert "RuntimeError: boom in render" in written(request).decode()


def test_error_path_hides_the_query_string() -> None:
    """The 500 names the path without its query, which may hold the access token."""
    request = make_request(path=b"/res/demo/boom")
    request.uri = b"/res/demo/boom?token=secret"
    render(Boom(APPLET), request)
    assert b"secret" not in written(request)


def test_missing_argument_is_400_naming_it() -> None:
    """Reading an argument the client did not send gives a 400 naming it and the applet."""

    class Needs(TwAppletResource):
        def render_POST(self, request: Any) -> Any:
            return request.args["is_good"][0]

    request = make_request(b"POST", b"/res/demo/needs")
    render(Needs(APPLET), request)
    assert request.responseCode == 400
    assert written(request).decode() == (
        "400 Bad Request: missing argument 'is_good' for Needs POST /res/demo/needs (applet 'demo'); "
        "send it in the query string or the form body.\n")
    assert _errorlog.all_errors() == []  # bad input, not an applet bug


@pytest.mark.parametrize("later", [False, True])
def test_full_django_pool_is_503_with_retry_after(later: bool) -> None:
    """DjangoPoolFull, raised or from a Deferred, is a 503 with Retry-After, not a 500."""
    full = DjangoPoolFull("the Django pool is full", retry_after=3)
    d: defer.Deferred[Any] = defer.Deferred()
    request = make_request(path=b"/res/demo/orm")
    render(Returns(d if later else defer.fail(full)), request)
    if later:
        d.errback(full)
    assert request.responseCode == 503
    assert header(request, b"retry-after") == [b"3"]
    assert written(request).decode() == ("503 Service Unavailable: Returns GET /res/demo/orm (applet "
                                         "'demo'): the Django pool is full\n")
    assert request.finished == 1
    assert _errorlog.all_errors() == []


def test_twisted_error_keeps_its_status() -> None:
    """A twisted.web.error.Error raised by a resource gives its own status and message."""

    class Teapot(TwAppletResource):
        def render_GET(self, request: Any) -> Any:
            raise web_error.Error(418, b"short and stout")

    request = make_request()
    render(Teapot(APPLET), request)
    assert request.responseCode == 418
    assert written(request) == b"short and stout"
    assert _errorlog.all_errors() == []


def test_missing_method_raises_unsupported_with_allowed_methods() -> None:
    """A method the resource lacks raises UnsupportedMethod listing GET and HEAD."""
    with pytest.raises(UnsupportedMethod) as raised:
        Returns(b"x").render(make_request(b"POST"))
    assert raised.value.allowedMethods == [b"GET", b"HEAD"]


def test_head_is_not_allowed_without_get() -> None:
    """A resource with only render_POST allows POST alone, not HEAD."""

    class PostOnly(TwAppletResource):
        def render_POST(self, request: Any) -> Any:
            return b"posted"

    with pytest.raises(UnsupportedMethod) as raised:
        PostOnly(APPLET).render(make_request(b"HEAD"))
    assert raised.value.allowedMethods == [b"POST"]


def test_head_renders_get() -> None:
    """HEAD on a resource with render_GET runs render_GET (Twisted drops the body)."""
    request = make_request(b"HEAD")
    render(Returns({"a": 1}), request)
    assert header(request, b"content-type") == [b"application/json"]


def test_args_accept_str_keys_with_str_values() -> None:
    """request.args answers str keys with str values and bytes keys with bytes values."""
    seen: dict[str, Any] = {}

    class Args(TwAppletResource):
        def render_GET(self, request: Any) -> Any:
            seen.update(str=request.args["name"], raw=request.args[b"name"],
                        has="name" in request.args, missing=request.args.get("nope"),
                        bad=request.args["bad"])
            return b""

    request = make_request(args={b"name": [b"caf\xc3\xa9"], b"bad": [b"\xff"]})
    render(Args(APPLET), request)
    assert isinstance(request.args, ArgsDict)
    assert seen == {"str": ["caf\u00e9"], "raw": [b"caf\xc3\xa9"], "has": True, "missing": None,
                    "bad": ["\ufffd"]}


def test_args_missing_key_is_missing_argument_and_key_error() -> None:
    """An absent key raises MissingArgument, which is also a KeyError, naming the key."""
    args = ArgsDict({b"a": [b"1"]})
    with pytest.raises(MissingArgument) as raised:
        args[b"zz"]
    assert isinstance(raised.value, KeyError)
    assert raised.value.name == "zz"
    assert args.get(b"zz", "default") == "default"


def test_render_with_contract_takes_any_handler() -> None:
    """render_with_contract applies the contract to any handler, naming the resource's applet."""
    request = make_request()
    body = render_with_contract(Returns(None), request, lambda r: ["ok"])
    assert body == b'["ok"]'
    assert header(request, b"content-type") == [b"application/json"]
