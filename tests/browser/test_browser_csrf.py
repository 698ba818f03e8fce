"""Access token and CSRF in a real browser: the ?token= cookie, hanji.callback's X-CSRFToken, a hostile page."""

from __future__ import annotations

import html
import http.server
import urllib.parse
import threading
from typing import Any, Callable, Iterator

import pytest
from playwright.sync_api import expect

HELLO = "/res/hello_world/path_to_my_resource"
TOKEN = "browser-test-token"


class _Blank(http.server.BaseHTTPRequestHandler):
    """Serve an empty page, another origin on the same host (a hostile site), or at
    /frame?src=URL a page framing URL (a notebook showing an applet)."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>elsewhere</title>"
        if self.path.startswith("/frame?src="):
            src = html.escape(urllib.parse.unquote(self.path[len("/frame?src="):]))
            body += f'<iframe src="{src}" width="1000" height="600"></iframe>'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def elsewhere() -> Iterator[str]:
    """Return the URL of a page served by another origin on loopback."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Blank)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_callback_sends_the_csrf_token_from_the_cookie(server: Any, open_page: Callable[..., Any]) -> None:
    """hanji.callback's POST carries X-CSRFToken equal to the csrftoken cookie the home page set."""
    watch = open_page("csrf-callback", server.url + "/")
    page = watch.page
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert "csrftoken" in cookies
    with page.expect_request(lambda r: r.url.endswith(HELLO)) as sent:
        page.locator("#hello-good").click()
    assert sent.value.headers.get("x-csrftoken") == cookies["csrftoken"]
    expect(page.locator("#hello-answer")).to_have_text("All right")
    watch.assert_clean()


def test_token_url_opens_the_site_and_a_hostile_page_cannot_post(
        start_server: Any, open_page: Callable[..., Any], elsewhere: str) -> None:
    """After opening the ?token= URL, the page, its icons, hanji.callback and the chat websocket work by
    cookie; a form posted from a page of another origin, with the same cookie, gets 403."""
    srv = start_server(env={"HANJI_TOKEN": TOKEN})
    watch = open_page("token-home", f"{srv.url}/?token={TOKEN}")
    page = watch.page
    expect(page.locator("#applet-hello_world")).to_be_visible()
    broken = page.eval_on_selector_all(
        "section.applet img", "imgs => imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
    )
    assert broken == []  # applet static files came through with the cookie
    page.locator("#hello-good").click()
    expect(page.locator("#hello-answer")).to_have_text("All right")
    assert page.evaluate(
        """() => new Promise((resolve) => {
             const c = hanji.connect('chat', 'room', {reconnect: false});
             c.onopen = () => { c.close(); resolve(true); };
             c.onclose = (e, again) => resolve(false);
           })""") is True
    watch.assert_clean()

    # A form on a page of another origin (the same site: the cookie goes along) posts to the resource.
    page.goto(elsewhere)
    page.evaluate(
        f"""() => {{ const f = document.createElement('form'); f.method = 'POST'; f.action = {srv.url + HELLO!r};
                   const i = document.createElement('input'); i.name = 'is_good'; i.value = 'yes';
                   f.appendChild(i); document.body.appendChild(f); f.submit(); }}""")
    page.wait_for_url(srv.url + HELLO)
    text = page.locator("body").inner_text()
    # The browser sent the access cookie, so the CSRF check is what refused it.
    assert "403 Forbidden" in text and "cross-origin request from " + elsewhere.rstrip("/") in text


def test_framed_page_in_another_site_works_with_the_token_in_its_url(
        start_server: Any, browser: Any, elsewhere: str) -> None:
    """A ?token= page framed by another site (a notebook on localhost framing 127.0.0.1) gets no cookie,
    yet its icons, hanji.callback and websockets work: they carry the token of the page's URL."""
    srv = start_server(env={"HANJI_TOKEN": TOKEN})
    framed = f"{srv.url}/?applet=hello_world&token={TOKEN}"
    host_page = elsewhere.replace("127.0.0.1", "localhost") + "frame?src=" + urllib.parse.quote(framed, safe="")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(host_page)
        frame = page.frame_locator("iframe")
        expect(frame.locator("#hello-good")).to_be_visible()
        page.wait_for_load_state("networkidle")
        assert frame.locator("section.applet img.icon").evaluate("i => i.complete && i.naturalWidth > 0")
        frame.locator("#hello-good").click()
        expect(frame.locator("#hello-answer")).to_have_text("All right")
        inner = next(f for f in page.frames if f.url.startswith(srv.url))
        assert inner.evaluate(
            """() => new Promise((resolve) => {
                 const c = hanji.connect('chat', 'room', {reconnect: false});
                 c.onopen = () => { c.close(); resolve(true); };
                 c.onclose = () => resolve(false);
               })""") is True
        assert not [c for c in context.cookies() if c["name"].startswith("hanji-token-")]  # really no cookie
    finally:
        context.close()
