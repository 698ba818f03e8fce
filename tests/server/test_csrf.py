"""CSRF: unsafe methods on /res need the server's own Origin/Referer, Django's CSRF token or the token header."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

HELLO = "/res/hello_world/path_to_my_resource"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _post(server: Any, headers: dict[str, str], body: bytes = b"is_good=yes", method: str = "POST") -> Any:
    return server.request(method, HELLO, data=body, headers={**FORM, **headers})


def _csrf_cookie(server: Any) -> str:
    """Return the csrftoken cookie the home page sets."""
    answer = server.get("/")
    cookies = SimpleCookie()
    for value in answer.headers.get_all("Set-Cookie") or []:
        cookies.load(value)
    assert "csrftoken" in cookies, "the home page must set Django's csrftoken cookie"
    return cookies["csrftoken"].value


def test_same_origin_post_is_served(server: Any) -> None:
    """A POST whose Origin is the server's own reaches the resource."""
    answer = _post(server, {"Origin": server.url})
    assert answer.status == 200 and answer.text == "All right"


def test_cross_origin_post_is_refused(server: Any) -> None:
    """A POST from another origin gets 403 naming the origin and the ways in."""
    answer = _post(server, {"Origin": "http://evil.example"})
    assert answer.status == 403
    assert "cross-origin" in answer.text and "http://evil.example" in answer.text
    assert "X-CSRFToken" in answer.text and "X-Hanji-Token" in answer.text
    other_port = server.url.rsplit(":", 1)[0] + ":1"
    assert _post(server, {"Origin": other_port}).status == 403  # same host, another port
    assert _post(server, {"Origin": "null"}).status == 403  # sandboxed frames, file:// pages


def test_unsafe_methods_are_all_checked_and_safe_ones_are_not(server: Any) -> None:
    """PUT, PATCH and DELETE are checked like POST; GET from another origin is not."""
    for method in ("PUT", "PATCH", "DELETE"):
        assert _post(server, {"Origin": "http://evil.example"}, method=method).status == 403, method
        assert _post(server, {}, method=method).status == 403, method
        assert _post(server, {"Origin": server.url}, method=method).status == 405, method  # passed on; no render_PUT
    assert server.get("/res/echo/info", headers={"Origin": "http://evil.example"}).status == 200


def test_referer_is_used_when_origin_is_absent(server: Any) -> None:
    """Without Origin, the Referer's origin decides."""
    assert _post(server, {"Referer": server.url + "/?applet=hello_world"}).text == "All right"
    answer = _post(server, {"Referer": "http://evil.example/page"})
    assert answer.status == 403 and "Referer from http://evil.example" in answer.text


def test_post_without_origin_referer_or_token_is_refused(server: Any) -> None:
    """With neither header nor a CSRF token, a POST gets 403 with the reason."""
    answer = _post(server, {})
    assert answer.status == 403
    assert "no Origin or Referer header" in answer.text and "CSRF cookie not set" in answer.text


def test_django_csrf_token_is_accepted(server: Any) -> None:
    """The csrftoken cookie echoed in X-CSRFToken (or the csrfmiddlewaretoken field) lets a POST in without Origin."""
    token = _csrf_cookie(server)
    cookie = {"Cookie": f"csrftoken={token}"}
    assert _post(server, {**cookie, "X-CSRFToken": token}).text == "All right"
    field = f"is_good=yes&csrfmiddlewaretoken={token}".encode()
    assert _post(server, cookie, body=field).text == "All right"
    wrong = _post(server, {**cookie, "X-CSRFToken": "x" * 32})
    assert wrong.status == 403 and "incorrect" in wrong.text
    # A valid token from another origin's page is still only a token: the cookie must match.
    assert _post(server, {"X-CSRFToken": token, "Origin": "http://evil.example"}).status == 403


def test_planted_csrf_cookie_and_form_field_from_another_origin_is_refused(server: Any) -> None:
    """A page on another port of this host can plant a csrftoken cookie (cookies ignore
    ports) and post a plain form with the matching field: from a foreign Origin only
    the X-CSRFToken header counts, which such a page cannot add without a preflight."""
    planted = "a" * 32
    other_port = server.url.rsplit(":", 1)[0] + ":3000"
    field = f"is_good=yes&csrfmiddlewaretoken={planted}".encode()
    answer = _post(server, {"Cookie": f"csrftoken={planted}", "Origin": other_port}, body=field)
    assert answer.status == 403 and "cross-origin" in answer.text
    assert _post(server, {"Cookie": f"csrftoken={planted}", "Origin": "null"}, body=field).status == 403
    # Without an Origin (old clients), the form field still counts, as in Django.
    assert _post(server, {"Cookie": f"csrftoken={planted}"}, body=field).text == "All right"


def test_custom_methods_are_checked_too(server: Any) -> None:
    """Every method but GET, HEAD, OPTIONS and TRACE is checked, custom ones included."""
    for method in ("PURGE", "PROPFIND"):
        answer = _post(server, {"Origin": "http://evil.example"}, method=method)
        assert answer.status == 403, (method, answer.status)
    assert server.request("OPTIONS", "/res/echo/info", headers={"Origin": "http://evil.example"}).status != 403


def test_origin_behind_a_tls_proxy(server: Any) -> None:
    """Behind a TLS proxy the server's origin is X-Forwarded-Host with the port of X-Forwarded-Proto."""
    proxied = {"X-Forwarded-Host": "lab.example.org", "X-Forwarded-Proto": "https"}
    assert _post(server, {**proxied, "Origin": "https://lab.example.org"}).text == "All right"
    assert _post(server, {**proxied, "Origin": "https://evil.example"}).status == 403


def test_token_header_is_exempt_but_the_cookie_is_not(start_server: Any) -> None:
    """With a token server, 'Authorization: token' POSTs need no Origin; cookie-authenticated ones do."""
    srv = start_server(env={"HANJI_TOKEN": "csrf-test-token"})
    assert _post(srv, {"Authorization": "token csrf-test-token"}).text == "All right"
    first = srv.get("/?token=csrf-test-token", headers={})
    cookies = SimpleCookie()
    for value in first.headers.get_all("Set-Cookie") or []:
        cookies.load(value)
    port = srv.url.rsplit(":", 1)[1]
    access = {"Cookie": f"hanji-token-{port}={cookies[f'hanji-token-{port}'].value}"}
    refused = _post(srv, access)
    assert refused.status == 403 and "no Origin or Referer header" in refused.text
    assert _post(srv, {**access, "Origin": "http://evil.example"}).status == 403
    assert _post(srv, {**access, "Origin": srv.url}).text == "All right"
    # A POST without the token is refused by the access check first.
    assert "needs the Hanji access token" in _post(srv, {"Origin": srv.url}).text


def test_token_header_also_skips_django_csrf_on_views(start_server: Any) -> None:
    """A Django view's POST with the token header passes Django's CSRF check; with the access cookie it does not."""
    srv = start_server(env={"HANJI_TOKEN": "csrf-test-token"})
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    answer = srv.request("POST", "/applets/notes/", data=b"title=From+a+script&body=x",
                         headers={**form, "Authorization": "token csrf-test-token"})
    assert answer.status == 200 and "From a script" in answer.text  # saved, then redirected to the list
    first = srv.get("/?token=csrf-test-token", headers={})
    cookies = SimpleCookie()
    for value in first.headers.get_all("Set-Cookie") or []:
        cookies.load(value)
    port = srv.url.rsplit(":", 1)[1]
    access = {"Cookie": f"hanji-token-{port}={cookies[f'hanji-token-{port}'].value}"}
    refused = srv.request("POST", "/applets/notes/", data=b"title=Forged&body=x",
                          headers={**form, **access, "Origin": srv.url})
    assert refused.status == 403 and "CSRF" in refused.text


def test_garbled_origin_referer_and_tokens_get_403_not_500(server: Any) -> None:
    """Broken Origin, Referer, cookie and token values are refused with 403, never a server error."""
    for headers in ({"Origin": "http://[::1"}, {"Origin": "http://x:port"}, {"Origin": ""},
                    {"Referer": "http://[::1/x"}, {"Referer": "::::"},
                    {"Cookie": "csrftoken=\x80\xff; a", "X-CSRFToken": "é" * 32},
                    {"Cookie": "csrftoken=" + "a" * 32, "X-CSRFToken": "b" * 32}):
        assert _post(server, headers).status == 403, headers
    assert server.get("/res/echo/info?token=%ff%fe&token=x", headers={}).status == 200


def test_control_characters_in_a_header_value_get_400_with_a_reason(server: Any) -> None:
    """A header value with control characters (not valid HTTP) is refused by the HTTP front with 400 and a reason, never a server error."""
    answer = _post(server, {"Cookie": "csrftoken=\x7f\x01; a", "X-CSRFToken": "é" * 32})
    assert answer.status == 400 and "Invalid header value char" in answer.text, answer
