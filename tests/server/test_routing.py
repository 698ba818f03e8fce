"""Routing of the one HTTP site: static, /res, /ws and Django, with Twisted first."""

from __future__ import annotations

import socket
import urllib.parse


def raw_request(server, data: bytes) -> bytes:
    """Send raw bytes to the server and return everything it answers."""
    host, port = urllib.parse.urlsplit(server.url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"Connection: close" not in data:
                break
    return b"".join(chunks)


def test_hanji_static_files(server):
    """/static/hanji/ serves hanji.js with hanji.callback in it."""
    answer = server.get("/static/hanji/hanji.js")
    assert answer.status == 200
    assert "javascript" in answer.headers["content-type"]
    assert "hanji.callback" in answer.text


def test_applet_static_files(server):
    """/static/<applet_id>/ serves the applet's static folder."""
    icon = server.get("/static/hello_world/icon.png")
    assert icon.status == 200 and icon.body.startswith(b"\x89PNG")
    assert "Hello World" in server.get("/static/hello_world/help.html").text


def test_static_directory_listing_is_refused(server):
    """A static folder has no directory listing."""
    assert server.get("/static/hello_world/").status == 404


def test_static_path_traversal_gives_404(server):
    """../ in any spelling under /static/<applet_id>/ gives 404 and never a file outside."""
    for path in (
        b"/static/hello_world/../../../../etc/passwd",
        b"/static/hello_world/..%2f..%2f__init__.py",
        b"/static/hello_world/%2e%2e/__init__.py",
        b"/static/hello_world/%2e%2e%2f%2e%2e%2fpyproject.toml",
    ):
        answer = raw_request(server, b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 404"), (path, answer[:200])
        assert b"root:" not in answer and b"hanji.core" not in answer


def test_unknown_applet_is_404_with_hint(server):
    """An unknown applet id under /res is a 404 naming the active applets."""
    answer = server.get("/res/hello_wrld/path_to_my_resource")
    assert answer.status == 404
    assert "Did you mean 'hello_world'?" in answer.text


def test_unknown_resource_is_404_listing_resources(server):
    """An unknown path of a known applet is a 404 listing that applet's resources."""
    answer = server.get("/res/hello_world/nothing_here")
    assert answer.status == 404
    assert "/res/hello_world/path_to_my_resource" in answer.text


def test_twisted_wins_over_django_and_overlap_is_logged(server):
    """A URL defined in both Twisted and Django is served by Twisted, and logged at start."""
    assert server.get("/res/rootmounted/both").text == "twisted"
    assert "URL /res/rootmounted/both is defined in both Twisted and Django; Twisted serves it." in server.log


def test_django_serves_what_twisted_does_not(server):
    """Under /res and /static, a URL only Django matches goes to Django."""
    assert server.get("/res/rootmounted/djonly").text == "django only"
    assert server.get("/res/rootmounted/dj%6Fnly").text == "django only"  # as Django decodes it
    assert server.get("/static/rootmounted-files/x").text == "django only"


def test_applet_urls_mounted_under_prefix(server):
    """An applet's urls.py is under /applets/<id>/, or at the root with url_prefix ''."""
    notes = server.get("/applets/notes/")
    assert notes.status == 200 and "Welcome to Hanji" in notes.text
    assert server.get("/rootmounted/slow?s=0").text == "slow done"
    assert server.get("/applets/no_such_applet/").status == 404


def test_home_page_lists_active_applets(server):
    """The home page shows every active applet with name, description, icon and content, and loads hanji.js."""
    page = server.get("/").text
    assert '<script src="/static/hanji/hanji.js">' in page
    for applet_id, name in (("hello_world", "Hello World"), ("echo", "Echo"), ("notes", "Notes")):
        assert f'id="applet-{applet_id}"' in page
        assert name in page
    assert "/static/hello_world/icon.png" in page
    assert "hanji.callback('hello_world', 'path_to_my_resource'" in page  # content.html with {{ applet.id }}
    assert "The reference example" in page  # description


def test_malformed_request_gets_4xx_and_server_survives(server):
    """Garbage on the wire gets a 400 and the reactor keeps serving."""
    answer = raw_request(server, b"THIS IS NOT HTTP\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    answer = raw_request(server, b"GET /res/contract/json HTTP/1.1\r\nHost: localhost\r\nContent-Length: nope\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    assert server.get("/res/contract/json").status == 200


def test_reference_example_resource(server):
    """hello_world's resource is the reference's render_POST, working as written."""
    assert server.post("/res/hello_world/path_to_my_resource", b"is_good=yes").text == "All right"
    bad = server.post("/res/hello_world/path_to_my_resource", b"is_good=no")
    assert bad.status == 500 and bad.text == "I'm sorry Dave, I'm afraid i can't do that"


def test_favicon(server):
    """/favicon.ico is Hanji's icon, so browsers log no 404 on any page."""
    answer = server.get("/favicon.ico")
    assert answer.status == 200 and answer.body.startswith(b"\x89PNG")


def test_home_page_under_a_proxy_prefix(server):
    """Behind a proxy that sends its path prefix, the page's links carry that prefix."""
    prefix = "/user/ada/proxy/8899"
    for header in ("X-Forwarded-Prefix", "X-ProxyContextPath"):
        page = server.get("/", headers={header: prefix}).text
        assert f'<script src="{prefix}/static/hanji/hanji.js">' in page
        assert f'src="{prefix}/static/hello_world/icon.png"' in page
        assert f'href="{prefix}/applets/notes/"' in page  # inside notes' content.html
    page = server.get("/", headers={"X-Forwarded-Prefix": '/x"><script>alert(1)</script>'}).text
    assert '<script src="/static/hanji/hanji.js">' in page  # a malformed prefix is ignored


def test_home_page_for_one_applet(server):
    """/?applet=<id> shows only that applet's card (what hanji.show frames)."""
    page = server.get("/?applet=hello_world").text
    assert 'id="applet-hello_world"' in page
    assert 'id="applet-notes"' not in page and 'id="applet-echo"' not in page


def test_applet_without_content_template_borrows_no_other(server):
    """An applet package with no templates/content.html shows no content, not the
    first other applet's content.html that Django's loaders would find."""
    assert server.get("/res/plain/ping").text == "pong"
    page = server.get("/?applet=plain").text
    assert 'id="applet-plain"' in page
    card = page.split('id="applet-plain"', 1)[1]
    assert "chat-log" not in card and '<div class="content"></div>' in card
