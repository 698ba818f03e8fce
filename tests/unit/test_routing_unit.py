"""Routing: ``match`` and HanjiRoot's dispatch, on DummyRequest and a stand-in server."""

from __future__ import annotations

import types
from typing import Any

import pytest
from twisted.web.resource import Resource, getChildForRequest
from twisted.web.test.requesthelper import DummyRequest

from hanji.core.applet import Applet, WebUI
from hanji.core.utils import TwAppletResource
from hanji.server.http.answers import Answer
from hanji.server.http.routing import HanjiRoot, match
from hanji.server.registry import (
    AppletRecord,
    AppletState,
    AppletStateError,
    Registry,
    prepare,
)


class Hello(TwAppletResource):
    path = "hello"

    def render_GET(self, request: Any) -> Any:
        return "hello"


class Tree(TwAppletResource):
    """A leaf: it also serves the URLs below its path."""

    isLeaf = True


class Sentinel(Resource):
    """Stands for the Django WSGI resource."""

    isLeaf = True


def active_record(applet_id: str, resources: dict[str, Any] | None = None,
                  websockets: dict[str, Any] | None = None) -> AppletRecord:
    """Return an ACTIVE record of a new applet ``applet_id`` with these routes."""
    record = prepare(Applet(id=applet_id), WebUI)
    record.resources = resources or {}
    record.websockets = websockets or {}
    record.move_to(AppletState.ACTIVATING)
    record.move_to(AppletState.ACTIVE)
    return record


class Routes:
    """A stand-in server with two active applets and one still importing."""

    def __init__(self, django_matches: Any = lambda path: False) -> None:
        self.hello = Hello(None)
        self.tree = Tree(None)
        self.registry = Registry()
        self.registry.put(active_record("app", {"hello": self.hello, "a/b": self.tree}))
        self.registry.put(active_record("other"))
        self.registry.put(prepare(Applet(id="sleepy"), WebUI))  # IMPORTED, not active
        self.django = Sentinel()
        self.server = types.SimpleNamespace(
            allowed_hosts=None, token=None, port=8899, registry=self.registry,
            django_resource=self.django, django_matches=django_matches)
        self.root = HanjiRoot(self.server)  # type: ignore[arg-type]


class CookieRequest(DummyRequest):
    """A DummyRequest that also reads cookies, as the access check does."""

    def __init__(self, postpath: list[bytes]) -> None:
        super().__init__(postpath)
        self.received_cookies: dict[bytes, bytes] = {}

    def getCookie(self, name: bytes) -> bytes | None:
        return self.received_cookies.get(name)


def request_for(path: bytes, method: bytes = b"GET") -> DummyRequest:
    """Return a DummyRequest for ``path`` as the site hands it to the root."""
    request = CookieRequest(path[1:].split(b"/"))
    request.path = request.uri = path
    request.method = method
    return request


def route(routes: Routes, path: bytes) -> tuple[Any, DummyRequest]:
    """Traverse from the root as twisted.web does; return the resource and the request."""
    request = request_for(path)
    return getChildForRequest(routes.root, request), request


# -- match -------------------------------------------------------------------------------


def test_match_exact_path() -> None:
    """A path in the table matches with all its segments consumed."""
    plain = Resource()
    assert match({"a/b": plain}, ["a", "b"]) == (plain, 2)


def test_match_prefers_the_longest_prefix() -> None:
    """Of two leaves that are prefixes, the longer one wins."""
    short, long = Tree(None), Tree(None)
    assert match({"a": short, "a/b": long}, ["a", "b", "c"]) == (long, 2)
    assert match({"a": short, "a/b": long}, ["a", "x"]) == (short, 1)


def test_match_prefix_needs_a_leaf_or_children() -> None:
    """A plain non-leaf matches only its exact path; one with children matches a prefix."""
    plain = Resource()
    assert match({"a": plain}, ["a", "b"]) is None
    parent = Resource()
    parent.putChild(b"b", Resource())
    assert match({"a": parent}, ["a", "b"]) == (parent, 1)


def test_match_falls_back_to_a_shorter_leaf() -> None:
    """A non-leaf that is the longer prefix is skipped for a shorter leaf."""
    leaf, plain = Tree(None), Resource()
    assert match({"": leaf, "a": plain}, ["a", "b"]) == (leaf, 0)


def test_match_custom_get_child_counts_as_children() -> None:
    """A resource with its own getChild matches a prefix (traversal goes on below it)."""

    class Dynamic(Resource):
        def getChild(self, path: bytes, request: Any) -> Any:
            return Resource()

    dynamic = Dynamic()
    assert match({"d": dynamic}, ["d", "x", "y"]) == (dynamic, 1)


def test_match_nothing() -> None:
    """No prefix of the segments in the table gives None."""
    assert match({"a": Tree(None)}, ["b"]) is None
    assert match({}, []) is None


# -- HanjiRoot -----------------------------------------------------------------------------


def test_res_path_reaches_the_resource() -> None:
    """/res/<id>/<path> reaches the applet's resource with the path consumed."""
    routes = Routes()
    found, request = route(routes, b"/res/app/hello")
    assert found is routes.hello
    assert request.prepath == [b"res", b"app", b"hello"] and request.postpath == []


def test_leaf_resource_gets_the_rest_of_the_path() -> None:
    """A leaf at a/b also receives /res/app/a/b/c/d, with c/d in postpath."""
    routes = Routes()
    found, request = route(routes, b"/res/app/a/b/c/d")
    assert found is routes.tree
    assert request.postpath == [b"c", b"d"]


def test_unknown_applet_is_404_naming_the_active_ones() -> None:
    """An unknown applet id is a 404 naming the active applets with a suggestion."""
    routes = Routes()
    found, request = route(routes, b"/res/ap/hello")
    assert isinstance(found, Answer) and found.status == 404
    assert found.message == "No active applet 'ap'. Did you mean 'app'? Active applets: app, other."
    body = found.render(request)
    assert request.responseCode == 404
    assert body.startswith(b"404 Not Found: No active applet 'ap'.")


def test_inactive_applet_is_not_routed() -> None:
    """An applet that is not active is not routed to, and not listed."""
    routes = Routes()
    found, _ = route(routes, b"/res/sleepy/x")
    assert isinstance(found, Answer) and found.status == 404
    assert "No active applet 'sleepy'" in found.message and "Active applets: app, other." in found.message


def test_unknown_path_of_a_known_applet_lists_its_paths() -> None:
    """An unknown path under a known applet is a 404 listing that applet's resources."""
    routes = Routes()
    found, _ = route(routes, b"/res/app/nope")
    assert isinstance(found, Answer) and found.status == 404
    assert found.message == ("applet 'app' has no resource at /res/app/nope. "
                             "Its resources: /res/app/a/b, /res/app/hello.")


def test_unknown_path_escapes_html() -> None:
    """The 404 for an unknown path escapes the path it repeats."""
    routes = Routes()
    found, _ = route(routes, b"/res/app/<script>")
    assert "&lt;script&gt;" in found.message and "<script>" not in found.message


def test_websocket_table_is_listed_for_ws() -> None:
    """Under /ws an unknown path lists the applet's websockets ("none" without any)."""
    routes = Routes()
    found, _ = route(routes, b"/ws/app/chat")
    assert isinstance(found, Answer) and found.status == 404
    assert found.message.endswith("Its websockets: none.")


def test_unknown_path_that_django_matches_goes_to_django() -> None:
    """Under /res, a path Twisted does not serve but Django matches goes to Django."""
    routes = Routes(django_matches=lambda path: path == b"/res/app/nope")
    found, request = route(routes, b"/res/app/nope")
    assert found is routes.django
    assert request.postpath == [b"res", b"app", b"nope"] and request.prepath == []


def test_other_paths_go_to_django() -> None:
    """A path outside /static, /res and /ws goes to the Django resource with its path intact."""
    routes = Routes()
    found, request = route(routes, b"/applets/app/")
    assert found is routes.django
    assert request.prepath == [] and request.postpath == [b"applets", b"app", b""]


def test_bare_res_goes_to_django() -> None:
    """/res/ with no applet id goes to Django."""
    routes = Routes()
    found, _ = route(routes, b"/res/")
    assert found is routes.django


def test_static_of_an_applet_without_a_folder_is_404() -> None:
    """/static/<id>/... of an active applet without a static/ folder is a 404 saying so."""
    routes = Routes()
    found, _ = route(routes, b"/static/app/logo.png")
    assert isinstance(found, Answer) and found.status == 404
    assert found.message == "applet 'app' has no static/ folder."


def test_static_of_an_unknown_applet_names_the_active_ones() -> None:
    """/static/<id>/... of an unknown applet is the 404 naming the active applets."""
    routes = Routes()
    found, _ = route(routes, b"/static/nobody/logo.png")
    assert isinstance(found, Answer) and found.status == 404
    assert found.message.startswith("No active applet 'nobody'.")


def test_hanji_assets_are_served_from_the_package() -> None:
    """/static/hanji/<file> reaches Hanji's own asset file, even with a token set."""
    routes = Routes()
    routes.server.token = "s3cret"
    found, request = route(routes, b"/static/hanji/hanji.js")
    assert found.path.endswith("hanji.js")
    assert request.prepath == [b"static", b"hanji", b"hanji.js"]


def test_missing_token_is_403() -> None:
    """With a token set, a request without it is refused with a 403 before routing."""
    routes = Routes()
    routes.server.token = "s3cret"
    found, _ = route(routes, b"/res/app/hello")
    assert isinstance(found, Answer) and found.status == 403
    assert "token" in found.message


def test_token_in_header_is_let_through() -> None:
    """With a token set, a request presenting it in Authorization reaches the resource."""
    routes = Routes()
    routes.server.token = "s3cret"
    request = request_for(b"/res/app/hello")
    request.requestHeaders.setRawHeaders(b"authorization", [b"token s3cret"])
    assert getChildForRequest(routes.root, request) is routes.hello


def test_foreign_host_is_403() -> None:
    """A Host outside allowed_hosts is refused with a 403 naming it."""
    routes = Routes()
    routes.server.allowed_hosts = frozenset({"localhost"})
    request = request_for(b"/res/app/hello")
    request.requestHeaders.setRawHeaders(b"host", [b"evil.example:8899"])
    found = getChildForRequest(routes.root, request)
    assert isinstance(found, Answer) and found.status == 403
    assert "'evil.example:8899'" in found.message


def test_peek_finds_the_resource_without_changing_the_request() -> None:
    """peek names the resource and applet a URI reaches; (None, None) for other routes."""
    routes = Routes()
    assert routes.root.peek(b"/res/app/hello?x=1") == (routes.hello, "app")
    assert routes.root.peek(b"/res/app/a/b/c") == (routes.tree, "app")
    assert routes.root.peek(b"/res/app/nope") == (None, "app")
    assert routes.root.peek(b"/res/sleepy/x") == (None, None)
    assert routes.root.peek(b"/applets/app/") == (None, None)


# -- the applet state machine ---------------------------------------------------------------


def test_record_life_goes_through_activating() -> None:
    """A record goes IMPORTED -> ACTIVATING -> ACTIVE -> DEACTIVATED; only ACTIVE is active."""
    record = prepare(Applet(id="life"), WebUI)
    assert record.state is AppletState.IMPORTED and not record.is_active
    record.move_to(AppletState.ACTIVATING)
    assert not record.is_active
    record.move_to(AppletState.ACTIVE)
    assert record.is_active
    record.move_to(AppletState.DEACTIVATED)
    assert not record.is_active


@pytest.mark.parametrize("start, target", [
    ([AppletState.ACTIVATING, AppletState.ACTIVE], AppletState.ACTIVATING),
    ([], AppletState.ACTIVE),
    ([AppletState.FAILED], AppletState.ACTIVATING),
    ([AppletState.ACTIVATING, AppletState.ACTIVE, AppletState.DEACTIVATED], AppletState.ACTIVE),
])
def test_record_refuses_transitions_it_lacks(start: list[AppletState], target: AppletState) -> None:
    """move_to raises AppletStateError naming both states for a transition that does not exist."""
    record = prepare(Applet(id="life"), WebUI)
    for state in start:
        record.move_to(state)
    before = record.state
    with pytest.raises(AppletStateError, match=f"Applet 'life' cannot go from {before} to {target}"):
        record.move_to(target)
    assert record.state is before


def test_failed_keeps_the_error() -> None:
    """Moving to FAILED keeps the traceback and its exception line."""
    record = prepare(Applet(id="life"), WebUI)
    record.move_to(AppletState.FAILED, "Traceback ...\nValueError: bad\n")
    assert record.error_summary == "ValueError: bad"
