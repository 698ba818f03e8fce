"""The TwAppletResource render contract, over real HTTP against a real server."""

from __future__ import annotations

import json
import socket
import time
import urllib.parse

import pytest
from support.polling import wait_until
from support.server import NO_DEBUG


@pytest.mark.parametrize(
    "path, ctype, body",
    [
        ("/res/contract/bytes", "application/octet-stream", b"\x00raw"),
        ("/res/contract/text", "text/html; charset=utf-8", "héllo".encode()),
        ("/res/contract/plain", "text/plain; charset=utf-8", b"plain"),
        ("/res/contract/json", "application/json", b'{"a": 1, "list": [1, 2]}'),
        ("/res/contract/jsonlist", "application/json", b'[1, "two"]'),
        ("/res/contract/deferred", "application/json", b'{"later": true}'),
        ("/res/contract/coroutine", "text/html; charset=utf-8", b"from a coroutine"),
        ("/res/contract/notdoneyet", "text/html", b"finished by hand"),
    ],
)
def test_return_types(server, path, ctype, body):
    """Each return type of a render method becomes the documented body and type."""
    answer = server.get(path)
    assert answer.status == 200, answer.text
    assert answer.headers["content-type"] == ctype
    assert answer.body == body


def test_exception_gives_500_and_others_keep_serving(server):
    """An exception in a render method is a 500 naming the applet; other applets still serve."""
    answer = server.get("/res/contract/boom")
    assert answer.status == 500
    assert "applet 'contract'" in answer.text
    assert "RuntimeError: boom in render" in answer.text  # debug server: traceback in body
    assert server.post("/res/hello_world/path_to_my_resource", b"is_good=yes").text == "All right"
    assert server.get("/res/contract/json").status == 200
    assert "boom in render" in server.log  # logged under the applet's logger
    assert "hanji.applet.contract" in server.log


def test_failed_deferred_and_bad_type_give_500(server):
    """A failed Deferred and an unsupported return type both give a 500 with a reason."""
    failed = server.get("/res/contract/failed")
    assert failed.status == 500 and "ZeroDivisionError" in failed.text
    bad = server.get("/res/contract/badtype")
    assert bad.status == 500 and "returned int" in bad.text


def test_traceback_hidden_without_debug(start_server):
    """Without --debug the 500 body names the applet but not the traceback."""
    srv = start_server(env=NO_DEBUG)
    answer = srv.get("/res/contract/boom")
    assert answer.status == 500
    assert "applet 'contract'" in answer.text
    assert "Traceback" not in answer.text
    assert "RuntimeError: boom in render" in srv.log


def test_args_accept_str_and_bytes_keys(server):
    """request.args answers str keys with str values and bytes keys with bytes values."""
    body = b"name=caf%C3%A9&x=1"
    data = json.loads(server.post("/res/contract/args", body).text)
    assert data == {"str": "café", "bytes_hex": "café".encode().hex(), "has_str": True,
                    "missing": None, "body_len": len(body)}


def test_leaf_receives_the_rest_of_the_path(server):
    """A leaf resource at a/b also answers a/b/c/d, with the rest in request.postpath."""
    assert json.loads(server.get("/res/contract/a/b").text) == {"postpath": []}
    assert json.loads(server.get("/res/contract/a/b/c/d").text) == {"postpath": ["c", "d"]}


def test_unsupported_method_is_405(server):
    """A method the resource has no render_ method for gives 405 with Allow, as in Twisted."""
    answer = server.post("/res/contract/json")
    assert answer.status == 405
    assert "GET" in answer.headers["allow"]


def test_client_disconnect_cancels_pending_deferred(server):
    """A client that goes away cancels the resource's pending Deferred."""
    tag = f"t{time.monotonic_ns()}"
    host, port = urllib.parse.urlsplit(server.url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET /res/contract/pending?tag={tag} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        time.sleep(0.3)  # let the server start rendering before we leave
    wait_until(lambda: tag in json.loads(server.get("/res/contract/cancelled").text)["cancelled"], 15,
               f"the pending Deferred of {tag} cancelled")


def test_threads(server):
    """Render methods run on the reactor thread; on_activate runs in a HanjiDjango worker."""
    data = json.loads(server.get("/res/contract/threads").text)
    assert data["reactor_thread_is_main"] is True  # hanji serve runs the reactor in the main thread
    assert data["activate"].startswith("HanjiDjango-")


def test_missing_argument_is_400_naming_it(server):
    """Reading a request argument the client did not send gives a 400 that names it, not a 500."""
    answer = server.post("/res/hello_world/path_to_my_resource", b"")
    assert answer.status == 400
    assert "missing argument 'is_good'" in answer.text and "hello_world" in answer.text


def test_plain_twisted_resource_is_mounted(server):
    """A plain twisted.web Resource class in twisted_dynamic_resources works unchanged."""
    answer = server.get("/res/contract/plain_twisted/below")
    assert answer.status == 200 and answer.text == "plain twisted.web"
