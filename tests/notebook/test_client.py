"""Calling endpoints and showing applets from cells (issue 3, items 4-5)."""

from __future__ import annotations

import json
import re

from support.kernels import Kernel, open_url

ECHO_BACK = """
import json
from twisted.internet import defer, reactor
from hanji.core.applet import Applet, WebUI
from hanji.core.utils import TwAppletResource

class Mirror(TwAppletResource):
    path = "mirror"
    def render(self, request):
        request.setHeader(b"x-mirror", b"yes")
        return super().render(request)
    def render_GET(self, request):
        return {"method": "GET", "args": {k.decode(): [v.decode() for v in vs] for k, vs in request.args.items()}}
    def render_POST(self, request):
        body = request.content.read().decode()
        return {"method": "POST", "type": request.getHeader("content-type"), "body": body,
                "args": {k.decode(): [v.decode() for v in vs] for k, vs in request.args.items()}}
    render_PUT = render_POST
    def render_DELETE(self, request):
        return {"method": "DELETE"}

class Never(TwAppletResource):
    path = "never"
    def render_GET(self, request):
        return defer.Deferred()  # never fires: the caller's timeout must

class Slow(TwAppletResource):
    path = "slow"
    def render_GET(self, request):
        d = defer.Deferred()
        reactor.callLater(0.2, d.callback, "slow but fine")
        return d

class MirrorWeb(WebUI):
    twisted_dynamic_resources = [Mirror, Never, Slow]
    template = "<p>Mirror of {{ applet.id }}</p>"

hanji.activate(Applet(id="mirror", name="Mirror"), web=MirrorWeb)
"""


def test_get_with_params_headers_and_json(kernel: Kernel) -> None:
    """hanji.get sends params and returns a Response with status, headers, text, content and json()."""
    kernel.ok(ECHO_BACK)
    kernel.ok("r = hanji.get('/res/mirror/mirror', params={'a': '1', 'b': ['x', 'y']})")
    assert kernel.value("r.status, r.ok, r.headers['X-Mirror'], r.headers['content-type']") == (
        200, True, "yes", "application/json")
    assert kernel.value("r.json()") == {"method": "GET", "args": {"a": ["1"], "b": ["x", "y"]}}
    assert kernel.value("r.json() == __import__('json').loads(r.text) == __import__('json').loads(r.content)") is True


def test_post_form_json_text_and_generic_request(kernel: Kernel) -> None:
    """hanji.post sends a form (request.args sees it) or JSON, and hanji.request sends any method."""
    form = kernel.value("hanji.post(('mirror', 'mirror'), data={'is_good': 'yes'}).json()")
    assert form["args"] == {"is_good": ["yes"]} and form["type"] == "application/x-www-form-urlencoded"
    sent = kernel.value("hanji.post(('mirror', 'mirror'), json={'n': [1, 2]}).json()")
    assert sent["type"] == "application/json" and sent["body"] == '{"n": [1, 2]}'
    put = kernel.value("hanji.request('PUT', '/res/mirror/mirror', data='raw text').json()")
    assert put["method"] == "POST" and put["body"] == "raw text"  # render_PUT is render_POST
    assert kernel.value("hanji.request('delete', ('mirror', 'mirror')).json()") == {"method": "DELETE"}


def test_reference_resource_called_with_tuple_path(kernel: Kernel) -> None:
    """The reference's hello_world resource answers hanji.post with a (applet, path) tuple."""
    assert kernel.value("hanji.post(('hello_world', 'path_to_my_resource'), data={'is_good': 'yes'}).text") == "All right"
    assert kernel.value("hanji.post(('hello_world', 'path_to_my_resource'), data={'is_good': 'no'}).status") == 500


def test_site_paths_reach_django(kernel: Kernel) -> None:
    """Any site path works: Django's pages come back through the same client."""
    result = kernel.value("(lambda r: (r.status, 'Notes' in r.text))(hanji.get('/applets/notes/'))")
    assert result == (200, True)


def test_async_twins_work_under_autoawait(kernel: Kernel) -> None:
    """await hanji.aget/apost/arequest work in a cell under IPython's default asyncio autoawait."""
    kernel.ok("""
        import asyncio
        a, b, c = await asyncio.gather(
            hanji.aget(('mirror', 'mirror'), params={'q': 'async'}),
            hanji.apost(('mirror', 'mirror'), json={'x': 1}),
            hanji.arequest('GET', '/res/mirror/slow'),
        )
    """)
    assert kernel.value("a.json()['args'], b.json()['body'], c.text") == ({"q": ["async"]}, '{"x": 1}', "slow but fine")


def test_timeout_raises_and_the_reactor_keeps_serving(kernel: Kernel) -> None:
    """A call past its timeout raises TimeoutError in the cell (sync and async) while the reactor keeps serving."""
    result = kernel.run("hanji.get(('mirror', 'never'), timeout=0.3)")
    assert result.error["ename"] == "TimeoutError" and "GET /res/mirror/never" in result.error["evalue"]
    result = kernel.run("await hanji.aget(('mirror', 'never'), timeout=0.3)")
    assert result.error["ename"] == "TimeoutError"
    assert kernel.value("hanji.get(('mirror', 'slow')).text") == "slow but fine"


def test_paths_with_spaces_and_non_ascii_are_percent_encoded(kernel: Kernel) -> None:
    """Paths with spaces or non-ASCII characters reach the server percent-encoded (once), in every form."""
    kernel.ok("""
        @hanji.endpoint("a b")
        def spaced(request):
            return {"path": request.path.decode(),
                    "args": {k.decode(): [v.decode() for v in vs] for k, vs in request.args.items()}}
    """)
    seen = {"path": "/res/notebook/a%20b", "args": {}}
    assert kernel.value("hanji.get('/res/notebook/a b').json()") == seen
    assert kernel.value("hanji.get('/res/notebook/a%20b').json()") == seen  # not encoded twice
    assert kernel.value("hanji.get(('notebook', 'a b')).json()") == seen
    assert kernel.value("hanji.post(('notebook', '/a b'), data={'x': 'y'}).json()['args']") == {"x": ["y"]}
    assert kernel.value("hanji.request('GET', '/res/notebook/a b?n=Zoë&m=a%26b', params={'q': 'é'}).json()") == {
        "path": "/res/notebook/a%20b", "args": {"n": ["Zoë"], "m": ["a&b"], "q": ["é"]}}
    result = kernel.value("(lambda r: (r.status, r.text))(hanji.get('/res/notebook/Zoë y'))")
    assert result[0] == 404 and "applet 'notebook' has no resource at /res/notebook/Zo%C3%AB%20y" in result[1]
    assert kernel.value("hanji.get(('echo', 'x y/ü')).status") == 404
    url = kernel.value("hanji.url('notebook', 'a b')")
    assert url == kernel.value("hanji.url()") + "res/notebook/a%20b"
    with open_url(url, timeout=30) as resp:
        assert json.loads(resp.read()) == seen


def test_response_has_a_rich_display(kernel: Kernel) -> None:
    """A Response shows as HTML with its status, a link and the pretty-printed JSON body."""
    result = kernel.ok("hanji.get(('mirror', 'mirror'))")
    (html,) = result.data("text/html")
    assert "200 OK" in html and "/res/mirror/mirror</a>" in html and "&quot;method&quot;: &quot;GET&quot;" in html
    (plain,) = result.data("text/plain")
    assert plain.startswith("<Response [200 OK] GET /res/mirror/mirror (application/json")


def test_url_returns_absolute_urls(kernel: Kernel) -> None:
    """hanji.url gives the absolute URL of the site and of a resource."""
    base = kernel.value("hanji.url()")
    assert base.startswith("http://127.0.0.1:") and base.endswith("/")
    assert kernel.value("hanji.url('mirror', 'mirror')") == base + "res/mirror/mirror"


def test_show_displays_an_iframe_and_a_link(kernel: Kernel) -> None:
    """hanji.show displays the applet's web UI in an iframe with a link to open it, each with its own one-time ticket."""
    base = kernel.value("hanji.url()")
    result = kernel.ok("hanji.show('mirror')")
    (html,) = result.data("text/html")
    page = re.escape(f"{base}?applet=mirror&amp;ticket=") + r"[\w-]+" + re.escape("#applet-mirror")
    frame = re.search(f'<iframe data-hanji-url="({page})"', html)
    link = re.search(f'<a href="({page})" data-hanji-url="', html)
    assert frame and link and frame.group(1) != link.group(1), html
    assert kernel.value("'Mirror of mirror' in hanji.get('/').text") is True  # what the iframe shows


def test_public_base_url_for_remote_notebooks(kernel: Kernel) -> None:
    """HANJI_PUBLIC_URL, or a JupyterHub proxy prefix, is used for links and iframes, not for calls."""
    port = int(kernel.value("hanji.url()").rstrip("/").rsplit(":", 1)[1])
    kernel.ok("import os; os.environ['HANJI_PUBLIC_URL'] = 'https://lab.example.org/proxy/{port}/'")
    (html,) = kernel.ok("hanji.show('mirror')").data("text/html")
    token = kernel.value("__import__('hanji.notebook.session', fromlist=['_']).get_session().token")
    assert f'<iframe data-hanji-url="https://lab.example.org/proxy/{port}/?applet=mirror&amp;ticket=' in html
    # The browser's URL carries the token (the first visit sets the cookie); the local one does not.
    assert kernel.value("hanji.url('mirror', 'x', public=True)") == f"https://lab.example.org/proxy/{port}/res/mirror/x?token={token}"
    assert kernel.value("hanji.url(public=True)") == f"https://lab.example.org/proxy/{port}/?token={token}"
    assert "token" not in kernel.value("hanji.url('mirror', 'x')")
    assert kernel.value("hanji.get(('mirror', 'mirror')).status") == 200
    kernel.ok("del os.environ['HANJI_PUBLIC_URL']; os.environ['JUPYTERHUB_SERVICE_PREFIX'] = '/user/ada/'")
    (html,) = kernel.ok("hanji.show('mirror')").data("text/html")
    assert f'<iframe data-hanji-url="/user/ada/proxy/{port}/?applet=mirror&amp;ticket=' in html
    kernel.ok("del os.environ['JUPYTERHUB_SERVICE_PREFIX']")


def test_calls_before_load_say_what_to_do(new_kernel) -> None:  # type: ignore[no-untyped-def]
    """Calling hanji before %load_ext hanji is a one-line error telling to load it."""
    kernel = new_kernel(applets=None)
    result = kernel.run("import hanji\nhanji.get('/')")
    assert result.error["ename"] == "NotLoaded"
    assert "run %load_ext hanji first" in result.error["evalue"]
