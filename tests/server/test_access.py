"""The access token: required off loopback or with HANJI_TOKEN, by header, ?token= or cookie."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from support.polling import wait_until

HELLO = "/res/hello_world/path_to_my_resource"
# One route of each kind: a Twisted resource, an applet's static file, a Django view
# (the home page and an applet's urls.py), and Hanji's own assets (always open).
GUARDED = ["/res/echo/info", "/static/hello_world/help.html", "/", "/applets/notes/"]
OPEN = ["/static/hanji/hanji.js", "/favicon.ico"]


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server bound to 0.0.0.0, which must therefore generate a token."""
    from support.paths import APPLETS, TEST_APPLETS
    from support.server import ServerProcess

    proc = ServerProcess(tmp_path_factory.mktemp("public-server"), [APPLETS, TEST_APPLETS], ["--host", "0.0.0.0"])
    yield proc
    proc.stop()


def _ws_url(server: Any, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def _ws_status(server: Any, path: str, headers: dict[str, str]) -> int:
    """Open a websocket with ``headers``; return 101 if it opened, else the HTTP status."""
    try:
        with connect(_ws_url(server, path), additional_headers=headers, open_timeout=30):
            return 101
    except InvalidStatus as exc:
        return int(exc.response.status_code)


def _token_cookie(answer: Any, port: int) -> SimpleCookie:
    cookies = SimpleCookie()
    for value in answer.headers.get_all("Set-Cookie") or []:
        cookies.load(value)
    return cookies


def test_public_bind_prints_a_token_url_and_keeps_the_banner(public: Any) -> None:
    """Off loopback the banner line stays as it was and the next line gives the URL with ?token=."""
    assert re.search(r"Hanji serves http://127\.0\.0\.1:\d+/  \(Ctrl-C to stop\)", public.log)
    assert public.token and re.fullmatch(r"[0-9a-f]{48}", public.token)
    assert f"{public.url}/?token={public.token}" in public.log
    assert public.token not in (public.data / "hanji.log").read_text()  # printed, not logged


def test_routes_refuse_requests_without_the_token(public: Any) -> None:
    """/res, applet static files and Django views answer 403 saying how to get in; Hanji's assets stay open."""
    for path in GUARDED:
        answer = public.get(path, headers={})
        assert answer.status == 403, path
        assert "?token=" in answer.text and "X-Hanji-Token" in answer.text, answer.text
        assert path.rstrip("/") in answer.text or path == "/"
    for path in OPEN:
        assert public.get(path, headers={}).status == 200, path


def test_a_body_without_the_token_is_refused_before_it_is_read(public: Any) -> None:
    """A request announcing a body but no token gets its 403 as soon as its head has
    arrived: the server neither reads nor buffers the body first. With the token in
    the header, the same head is read on (here a 413 from the resource's own limit)."""
    from support.http import connect, read_answer, read_to_eof

    for path in ("/res/echo/info", "/applets/notes/"):
        with connect(public) as sock:
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 9000000\r\n\r\n".encode())
            answer, _ = read_answer(sock)
            assert answer.status == 403, answer
            assert "X-Hanji-Token" in answer.text and path in answer.text
            read_to_eof(sock)
    with connect(public) as sock:
        sock.sendall(f"POST /res/echo/info?token={public.token} HTTP/1.1\r\nHost: localhost\r\n"
                     f"Content-Length: 99000000\r\n\r\n".encode())
        answer, _ = read_answer(sock)
        assert answer.status == 413, answer


def test_websockets_refuse_connections_without_the_token(public: Any) -> None:
    """A websocket handshake without the token gets 403; with the header it opens."""
    assert _ws_status(public, "/ws/echo/echo", {}) == 403
    assert _ws_status(public, "/ws/echo/echo", {"Authorization": "token wrong"}) == 403
    assert _ws_status(public, "/ws/echo/echo", {"Authorization": f"token {public.token}"}) == 101


def test_wrong_tokens_are_refused(public: Any) -> None:
    """A wrong token in the header, the query or the cookie gets 403."""
    port = int(public.url.rsplit(":", 1)[1])
    assert public.get("/res/echo/info", headers={"Authorization": "token nope"}).status == 403
    assert public.get("/res/echo/info", headers={"Authorization": f"Bearer {public.token}"}).status == 403
    assert public.get("/res/echo/info?token=nope", headers={}).status == 403
    assert public.get("/res/echo/info", headers={"Cookie": f"hanji-token-{port}={public.token}"}).status == 403


def test_header_token_opens_every_route(public: Any) -> None:
    """'Authorization: token <token>' is accepted on every guarded route."""
    for path in GUARDED:
        assert public.get(path, headers={"Authorization": f"token {public.token}"}).status == 200, path


def test_query_token_sets_a_cookie_that_opens_the_site(public: Any) -> None:
    """A ?token= visit sets an HttpOnly, SameSite=Lax cookie; the cookie alone then opens every route and the websocket."""
    port = int(public.url.rsplit(":", 1)[1])
    first = public.get(f"/?token={public.token}", headers={})
    assert first.status == 200
    raw = " ".join(first.headers.get_all("Set-Cookie") or [])
    assert f"hanji-token-{port}=" in raw and "HttpOnly" in raw and re.search("SameSite=lax", raw, re.I)
    cookie = _token_cookie(first, port)[f"hanji-token-{port}"]
    assert cookie["path"] == "/" and public.token not in cookie.value  # a digest, not the token
    assert first.headers["Referrer-Policy"] == "same-origin"  # the token URL is not leaked to other sites
    assert "csrftoken=" in raw  # Django's own cookies are kept beside the access cookie
    sent = {"Cookie": f"hanji-token-{port}={cookie.value}"}
    for path in GUARDED:
        assert public.get(path, headers=sent).status == 200, path
    assert _ws_status(public, "/ws/echo/echo", sent) == 101


def test_garbled_query_tokens_get_403_not_500(public: Any) -> None:
    """A ?token= that is not even text (%ff, or non-ASCII) is a wrong token: 403 with
    the reason, also when a body follows (refused before it), never a 500 or a drop."""
    from support.http import connect, read_answer

    for query in ("token=%ff", "token=%C3%A9", "token=%ff%fe&token=x", "a=%ff&token="):
        for path in ("/res/echo/info", "/"):
            answer = public.get(f"{path}?{query}", headers={})
            assert answer.status == 403, (path, query, answer.status)
        with connect(public) as sock:
            sock.sendall(f"POST /res/echo/info?{query} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n".encode())
            answer, _ = read_answer(sock)
            assert answer.status == 403, (query, answer)
    assert "unhandled error" not in public.log.lower()


def test_fixed_token_is_required_even_on_loopback(start_server: Any) -> None:
    """HANJI_TOKEN sets the token, and a loopback server then requires it too."""
    srv = start_server(env={"HANJI_TOKEN": "s3cret-fixed"})
    assert srv.token == "s3cret-fixed"
    assert srv.get("/res/echo/info", headers={}).status == 403
    assert srv.get("/res/echo/info", headers={"Authorization": "token s3cret-fixed"}).status == 200
    assert srv.get("/res/echo/info?token=s3cret-fixed", headers={}).status == 200


def test_loopback_default_needs_no_token(server: Any) -> None:
    """The default loopback server needs no token and prints none."""
    assert server.token is None and "?token=" not in server.log
    assert server.get("/res/echo/info", headers={}).status == 200


def test_no_token_opens_a_public_bind_with_a_loud_warning(start_server: Any) -> None:
    """--no-token serves 0.0.0.0 without a token, warning in the log and on stderr."""
    srv = start_server(args=["--host", "0.0.0.0", "--no-token"])
    assert srv.token is None
    assert srv.get("/res/echo/info", headers={}).status == 200
    assert re.search(r"WARNING hanji \[.*\] --no-token: .*NO access token", srv.log)
    assert re.search(r"^WARNING: --no-token: ", srv.log, re.M)
    assert "NO access token" in (srv.data / "hanji.log").read_text()


def test_the_token_in_a_url_stays_out_of_error_reports(public: Any) -> None:
    """A render failure reached with ?token= is reported by path only: the token
    does not end up in the log (or hanji.errors())."""
    printed = public.log.count(public.token)  # the banner shows it, as Jupyter's does
    answer = public.get(f"/res/contract/boom?token={public.token}&x=1", headers={})
    assert answer.status == 500
    wait_until(lambda: "boom in render" in public.log, 20, "the render failure in the log")
    assert "/res/contract/boom" in public.log and "boom in render" in public.log
    assert public.log.count(public.token) == printed


def test_loopback_without_token_refuses_foreign_host_names(server: Any, start_server: Any) -> None:
    """DNS rebinding: a page at http://evil.example:PORT resolving to 127.0.0.1 would be
    same-origin with a token-less loopback server. Such a server answers only to
    loopback names (and --allow-host ones), on every route, bodies included."""
    from support.http import connect, read_answer

    evil = server.url.replace("127.0.0.1", "evil.example")
    for path in ("/", "/res/echo/info", "/static/hello_world/help.html"):
        answer = server.get(path, headers={"Host": evil.split("//")[1]})
        assert answer.status == 403 and "DNS rebinding" in answer.text and "--allow-host" in answer.text, path
    handshake = (b"GET /ws/echo/echo HTTP/1.1\r\nHost: evil.example\r\nOrigin: http://evil.example\r\n"
                 b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    with connect(server) as sock:  # one Host header (websockets' client would add its own)
        sock.sendall(handshake)
        assert read_answer(sock)[0].status == 403
    with connect(server) as sock:
        sock.sendall(b"POST /res/echo/info HTTP/1.1\r\nHost: evil.example\r\nOrigin: http://evil.example\r\n"
                     b"Content-Length: 5\r\n\r\n")
        assert read_answer(sock)[0].status == 403
    for host in ("localhost", "127.0.0.1", "[::1]", "app.localhost"):
        port = server.url.rsplit(":", 1)[1]
        assert server.get("/res/echo/info", headers={"Host": f"{host}:{port}"}).status == 200, host
    allowed = start_server(args=["--allow-host", "myhost.lan"])
    assert allowed.get("/res/echo/info", headers={"Host": "myhost.lan"}).status == 200
    assert allowed.get("/res/echo/info", headers={"Host": "other.lan"}).status == 403


def test_access_log_hides_the_token_of_a_url(start_server: Any, tmp_path: Any) -> None:
    """With --access-log, a ?token= visit is logged with the token blanked out."""
    log_file = tmp_path / "access.log"
    srv = start_server(args=["--access-log", str(log_file)], env={"HANJI_TOKEN": "tok-in-log-42"})
    assert srv.get("/res/echo/info?a=1&token=tok-in-log-42&b=2", headers={}).status == 200
    wait_until(lambda: log_file.exists() and "/res/echo/info" in log_file.read_text(), 20, "the access log line")
    line = log_file.read_text()
    assert "/res/echo/info?a=1&token=(hidden)&b=2" in line and "tok-in-log-42" not in line
