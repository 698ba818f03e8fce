"""Applets defined in cells: activation, hot swap, endpoints, namespace (issue 3, items 2-3)."""

from __future__ import annotations

import collections
import socket
import textwrap
import threading
import urllib.error

import pytest

from support.kernels import Kernel, open_url
from support.net import free_port, port_is_free
from support.polling import wait_until

COUNTER = """
from hanji.core.applet import Applet, WebUI
from hanji.core.utils import TwAppletResource

class Counter(Applet):
    description = "Counts hits"
    def on_activate(self):
        self.hits = 0

class Hits(TwAppletResource):
    path = "hits"
    def render_GET(self, request):
        self.applet.hits += 1
        return {"hits": self.applet.hits, "flavour": FLAVOUR}

class CounterWeb(WebUI):
    twisted_dynamic_resources = [Hits]
"""


def _fetch(url: str) -> tuple[int, str]:
    try:
        with open_url(url, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_activate_class_defined_in_cell_and_call_it(kernel: Kernel) -> None:
    """An Applet, a TwAppletResource and a WebUI written in a cell are served after hanji.activate."""
    result = kernel.ok(COUNTER + "FLAVOUR = 'plain'\nhanji.activate(Counter, web=CounterWeb)")
    assert "Applet 'counter' v1 active" in result.text
    assert "/res/counter/hits" in result.text
    assert kernel.value("hanji.get('/res/counter/hits').json()") == {"hits": 1, "flavour": "plain"}
    assert kernel.value("hanji.get(('counter', 'hits')).json()['hits']") == 2


def test_activate_accepts_instances(kernel: Kernel) -> None:
    """hanji.activate also takes an Applet instance and a WebUI instance."""
    result = kernel.ok(COUNTER + "FLAVOUR = 'inst'\nhanji.activate(Counter(id='counter2'), web=CounterWeb())")
    assert "Applet 'counter2' v1 active" in result.text
    assert kernel.value("hanji.get(('counter2', 'hits')).json()") == {"hits": 1, "flavour": "inst"}


def test_rerun_swaps_same_url_and_bumps_version(kernel: Kernel) -> None:
    """Re-running an applet's cell with changed code swaps it at the same URL with a new version."""
    result = kernel.ok(COUNTER + "FLAVOUR = 'changed'\nhanji.activate(Counter, web=CounterWeb)")
    assert "Applet 'counter' v2 active" in result.text
    assert kernel.value("hanji.get(('counter', 'hits')).json()") == {"hits": 1, "flavour": "changed"}
    assert "counter      active  v2" in kernel.ok("%hanji applets").text


def test_module_imported_in_earlier_cell_works_in_render(kernel: Kernel) -> None:
    """A module imported in an earlier cell is usable inside a render method (notebook globals)."""
    kernel.ok("import statistics as stats_from_an_earlier_cell")
    kernel.ok("""
        class Mean(TwAppletResource):
            path = "mean"
            def render_GET(self, request):
                values = [float(v) for v in request.args["v"]]
                return {"mean": stats_from_an_earlier_cell.mean(values)}

        class MeanWeb(WebUI):
            twisted_dynamic_resources = [Mean]

        hanji.activate(Applet(id="stats"), web=MeanWeb)
    """)
    assert kernel.value("hanji.get(('stats', 'mean'), params={'v': [1, 2, 6]}).json()") == {"mean": 3.0}


def test_endpoint_decorator_serves_a_function(kernel: Kernel) -> None:
    """@hanji.endpoint serves a plain function at /res/<applet>/<path> and re-decorating swaps it."""
    kernel.ok("""
        @hanji.endpoint("hello")
        def hello(request):
            return {"hello": request.args.get("name", ["world"])[0]}

        @hanji.endpoint("time", methods=["GET"])
        def now():
            return "twelve o'clock"
    """)
    assert kernel.value("hanji.get(('notebook', 'hello'), params={'name': 'Ada'}).json()") == {"hello": "Ada"}
    assert kernel.value("hanji.get('/res/notebook/time').text") == "twelve o'clock"
    assert kernel.value("hanji.post('/res/notebook/time').status") == 405
    kernel.ok("""
        @hanji.endpoint("hello")
        def hello(request):
            return {"hello": "again"}
    """)
    assert kernel.value("hanji.get(('notebook', 'hello')).json()") == {"hello": "again"}
    assert kernel.value("hanji.get('/res/notebook/time').status") == 200


def test_swap_runs_old_on_deactivate_and_closes_its_port(kernel: Kernel) -> None:
    """A re-run runs the old instance's on_deactivate and closes the port it opened, so the new one can reuse it."""
    port = free_port()
    cell = f"""
        from twisted.internet import reactor
        from twisted.internet.protocol import Factory, Protocol

        class Greeter(Protocol):
            def connectionMade(self):
                self.transport.write(GREETING)
                self.transport.loseConnection()

        class Listener(Applet):
            id = "listener"
            def on_activate(self):
                factory = Factory.forProtocol(Greeter)
                reactor.callFromThread(lambda: reactor.listenTCP({port}, factory, interface="127.0.0.1"))
            def on_deactivate(self):
                LIFECYCLE.append("deactivated " + GREETING.decode())

        hanji.activate(Listener)
    """
    cell = textwrap.dedent(cell)
    kernel.ok("LIFECYCLE = []\nGREETING = b'one'\n" + cell)
    assert _read_greeting(port) == b"one"
    kernel.ok("GREETING = b'two'\n" + cell)
    assert _read_greeting(port) == b"two"
    assert kernel.value("LIFECYCLE") == ["deactivated two"]  # the old instance's hook ran once
    kernel.ok("hanji.deactivate('listener')")
    assert port_is_free(port)


def _read_greeting(port: int) -> bytes:
    """Return what the listener on ``port`` sends first, retrying while nothing listens
    (callFromThread has not run listenTCP yet); fail after 5 s."""

    def greeting() -> tuple[bytes] | None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                return (conn.recv(100),)
        except ConnectionRefusedError:
            return None

    return wait_until(greeting, 5, f"nothing listens on {port}")[0]


def test_hot_swap_under_concurrent_load_never_404_or_5xx(kernel: Kernel) -> None:
    """Requests in flight during 20 re-runs, synchronous, deferred and Django ones, get the old or the new answer, never a 404 or a 5xx."""
    cell = """
        import time
        from django.http import HttpResponse
        from django.urls import path as django_path
        from twisted.internet import reactor, task

        class Swapper(Applet):
            id = "swapper"
            def on_activate(self):
                time.sleep(0.02)  # widen the window in which both versions exist

        class Version(TwAppletResource):
            path = "v"
            def render_GET(self, request):
                return b"{n}"

        class LateVersion(TwAppletResource):
            path = "late"
            def render_GET(self, request):
                # Answers after a timer made during the render: a swap meanwhile must not cancel it.
                return task.deferLater(reactor, 0.05, lambda: b"{n}")

        class SwapperWeb(WebUI):
            twisted_dynamic_resources = [Version, LateVersion]

        hanji.activate(Swapper, web=SwapperWeb, urls=[django_path("", lambda request: HttpResponse(b"{n}"))])
    """
    kernel.ok(cell.format(n=0))
    base = kernel.value("hanji.url()")
    urls = {"sync": base + "res/swapper/v", "deferred": base + "res/swapper/late", "django": base + "applets/swapper/"}
    # Versions whose cell has finished (the old answer) and whose cell has begun (the new one).
    finished, begun = [0], [0]
    answers: collections.Counter[tuple[str, int, str]] = collections.Counter()
    misplaced: list[tuple[str, str, int, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def hammer(kind: str) -> None:
        while not stop.is_set():
            oldest = finished[0]
            try:
                status, body = _fetch(urls[kind])
            except OSError as exc:  # a request that hangs past urlopen's timeout
                status, body = 0, f"no answer: {exc!r}"
            newest = begun[0]
            with lock:
                answers[(kind, status, body)] += 1
                if status == 200 and not (body.isdigit() and oldest <= int(body) <= newest):
                    misplaced.append((kind, body, oldest, newest))

    workers = [threading.Thread(target=hammer, args=(kind,)) for kind in urls for _ in range(3)]
    for w in workers:
        w.start()
    try:
        for n in range(1, 21):
            begun[0] = n
            result = kernel.ok(cell.format(n=n))
            finished[0] = n
            assert f"v{n + 1} active" in result.text
    finally:
        stop.set()
        for w in workers:
            w.join()
    statuses = {status for _, status, _ in answers}
    assert statuses == {200}, [a for a in answers.most_common() if a[0][1] != 200][:5]
    assert not misplaced, misplaced[:5]  # each answer came from the version before or after the swap
    for kind in urls:
        bodies = {body for (k, _, body) in answers if k == kind}
        assert len(bodies) > 2, (kind, bodies)  # requests of each kind really overlapped the re-runs
    assert [_fetch(url) for url in urls.values()] == [(200, "20")] * 3


def test_deactivate_removes_applet_and_names_unknown_ids(kernel: Kernel) -> None:
    """hanji.deactivate removes an applet (its URL 404s) and an unknown id is a one-line UsageError."""
    kernel.ok("hanji.deactivate('counter2')")
    assert kernel.value("hanji.get(('counter2', 'hits')).status") == 404
    result = kernel.run("hanji.deactivate('countr')")
    assert not result.ok
    assert result.error["ename"] == "UnknownApplet"
    assert "Did you mean 'counter'?" in result.error_text
    assert len(result.error["traceback"]) == 1


@pytest.mark.parametrize("bad", ["hanji.activate(42)", "hanji.activate(Applet(id='no spaces'))"])
def test_activate_rejects_bad_arguments_in_one_line(kernel: Kernel, bad: str) -> None:
    """hanji.activate with something that is not an applet raises a one-line UsageError."""
    result = kernel.run(bad)
    assert result.error["ename"] == "UsageError"
    assert len(result.error["traceback"]) == 1


def test_a_resource_redefined_after_its_webui_is_served_with_a_warning(kernel: Kernel) -> None:
    """Re-running a resource cell and then only the hanji.activate cell serves the new
    class (the WebUI still lists the old one) and says so on stderr."""
    kernel.ok(textwrap.dedent("""
        from hanji.core.applet import Applet, WebUI
        from hanji.core.utils import TwAppletResource

        class Version(TwAppletResource):
            path = "version"
            def render_GET(self, request):
                return "v1"

        class VersionWeb(WebUI):
            twisted_dynamic_resources = [Version]

        hanji.activate(Applet(id="stale"), web=VersionWeb)
    """))
    assert kernel.ok("print(hanji.get(('stale', 'version')).text)").stdout.strip() == "v1"
    kernel.ok(textwrap.dedent("""
        class Version(TwAppletResource):
            path = "version"
            def render_GET(self, request):
                return "v2"
    """))
    result = kernel.ok("hanji.activate(Applet(id='stale'), web=VersionWeb)")
    assert "Version was redefined after VersionWeb listed it; serving the new definition" in result.stderr
    assert kernel.ok("print(hanji.get(('stale', 'version')).text)").stdout.strip() == "v2"
