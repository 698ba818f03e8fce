"""Applet errors reach the notebook with their tracebacks (issue 3, item 6)."""

from __future__ import annotations


import pytest

from support.kernels import Kernel, open_url
from support.paths import BROKEN_APPLETS

PRELUDE = """
from twisted.internet import defer, reactor
from hanji.core.applet import Applet, WebUI
from hanji.core.utils import TwAppletResource
"""


def test_on_activate_failure_raises_in_the_activating_cell(kernel: Kernel) -> None:
    """An on_activate that raises fails its cell with the original traceback and is kept in hanji.errors()."""
    result = kernel.run(PRELUDE + """
class Fragile(Applet):
    def on_activate(self):
        raise RuntimeError("the sensor is unplugged")

hanji.activate(Fragile)
""")
    assert result.error["ename"] == "AppletActivationError"
    text = result.error_text
    assert 'raise RuntimeError("the sensor is unplugged")' in text  # the cell's own line, from the worker
    assert "Applet 'fragile' failed to activate." in text and "RuntimeError: the sensor is unplugged" in text
    # The user's frames only (IPython-style), not crochet's, Twisted's or Hanji's:
    assert "crochet" not in text and "twisted" not in text and "/hanji/" not in text
    assert len(text.splitlines()) < 15 and "hanji.errors('fragile')" in text
    assert "Hanji: applet 'fragile'" not in result.stderr  # not printed a second time after the cell
    errors = kernel.ok("hanji.errors('fragile')").text
    assert "Fragile.on_activate()" in errors and "RuntimeError: the sensor is unplugged" in errors
    assert "fragile      failed  v1" in kernel.ok("%hanji status").text


def test_failed_applet_does_not_stop_the_others(kernel: Kernel) -> None:
    """A failing applet leaves the other applets serving, and fixing it activates the next version."""
    assert kernel.value("hanji.get('/res/echo/info').status") == 200
    result = kernel.ok(PRELUDE + """
class Fragile(Applet):
    def on_activate(self):
        self.ready = True

hanji.activate(Fragile)
""")
    assert "Applet 'fragile' v2 active" in result.text


def test_render_error_is_shown_after_the_cell_that_called_it(kernel: Kernel) -> None:
    """An exception in a render method gives a 500 and its full traceback is printed under the calling cell."""
    kernel.ok(PRELUDE + """
class Boom(TwAppletResource):
    path = "boom"
    def render_GET(self, request):
        return {"ratio": 1 / int(request.args.get("d", ["0"])[0])}

class LateFailure(TwAppletResource):
    path = "late"
    def render_GET(self, request):
        d = defer.Deferred()
        def fail_later():
            d.errback(ValueError("the device answered garbage"))
        reactor.callLater(0.05, fail_later)
        return d

class BoomWeb(WebUI):
    twisted_dynamic_resources = [Boom, LateFailure]

hanji.activate(Applet(id="boom"), web=BoomWeb)
""")
    result = kernel.ok("r = hanji.get(('boom', 'boom'))\nr.status")
    assert result.data() == ["500"]
    assert "Hanji: applet 'boom' failed in Boom GET /res/boom/boom" in result.stderr
    assert "ZeroDivisionError: division by zero" in result.stderr
    assert 'return {"ratio": 1 / int(request.args.get("d", ["0"])[0])}' in result.stderr
    assert kernel.value("hanji.get(('boom', 'boom'), params={'d': 4}).json()") == {"ratio": 0.25}


def test_errback_error_is_shown_and_kept(kernel: Kernel) -> None:
    """A Deferred that fails later (an errback) is reported like a render error and kept in %hanji errors."""
    result = kernel.ok("hanji.get(('boom', 'late')).status")
    assert result.data() == ["500"]
    assert "ValueError: the device answered garbage" in result.stderr
    errors = kernel.ok("%hanji errors boom").text
    assert "ZeroDivisionError" in errors and "ValueError: the device answered garbage" in errors


def test_error_between_cells_is_shown_in_the_next_cell(kernel: Kernel) -> None:
    """An error raised while no cell runs (a browser request, a timer) is printed after the next cell."""
    import urllib.error
    import urllib.request

    url = kernel.value("hanji.url('boom', 'boom')")
    with pytest.raises(urllib.error.HTTPError) as failed:
        open_url(url, timeout=30)
    assert failed.value.code == 500
    result = kernel.ok("1 + 1")
    assert "Hanji: applet 'boom' failed in Boom GET /res/boom/boom" in result.stderr
    assert "Hanji: applet" not in kernel.ok("2 + 2").stderr  # shown once


def test_unhandled_deferred_failure_and_django_view_errors_are_recorded(kernel: Kernel) -> None:
    """A failure Twisted logs as unhandled, and a Django view that raises, are not swallowed."""
    result = kernel.ok("""
import gc
def lose_a_failure():
    defer.fail(KeyError("nobody waited for this"))
    gc.collect()
from hanji.notebook.session import get_session
get_session().call(lose_a_failure)
""")
    assert "KeyError: 'nobody waited for this'" in result.stderr
    kernel.ok("""
from django.http import HttpResponse
from django.urls import path
def broken_view(request):
    raise LookupError("no such page in the database")
hanji.activate(Applet(id="viewfail"), urls=[path("", broken_view)])
""")
    result = kernel.ok("hanji.get('/applets/viewfail/').status")
    assert result.data() == ["500"]
    assert "Hanji: applet 'viewfail' failed in Django view GET /applets/viewfail/" in result.stderr
    assert "LookupError: no such page in the database" in result.stderr


def test_clear_forgets_recorded_errors(kernel: Kernel) -> None:
    """%hanji errors --clear shows the errors once and forgets them."""
    assert "Traceback" in kernel.ok("%hanji errors --clear").text
    assert kernel.ok("%hanji errors").text.strip() == "No error recorded."


def test_broken_packages_are_reported_at_load_and_healthy_ones_serve(new_kernel) -> None:  # type: ignore[no-untyped-def]
    """Applet packages that fail to import or activate are shown under %load_ext; the healthy one serves."""
    kernel = new_kernel(applets=BROKEN_APPLETS)
    result = kernel.ok("%load_ext hanji\nimport hanji")
    assert "1 applet active, 2 failed (see the errors below)" in result.text
    assert "ImportError: broken_import is broken on purpose" in result.stderr
    assert "ValueError: on_activate fails on purpose" in result.stderr
    assert kernel.value("hanji.get(('healthy', 'ping')).text") == "pong"
    status = kernel.ok("%hanji status").text
    assert "broken_activate  failed" in status and "ValueError: on_activate fails on purpose" in status


def test_on_deactivate_failure_on_swap_and_deactivate_is_isolated(kernel: Kernel) -> None:
    """An on_deactivate that raises is reported under the next cell and in hanji.errors(), yet the swap and the deactivation complete and the others serve."""
    cell = PRELUDE + """
class Clingy(Applet):
    id = "clingy"
    def on_deactivate(self):
        raise RuntimeError("cannot let go " + VERSION)

class Hello(TwAppletResource):
    path = "hello"
    def render_GET(self, request):
        return VERSION

class ClingyWeb(WebUI):
    twisted_dynamic_resources = [Hello]

hanji.activate(Clingy, web=ClingyWeb)
"""
    kernel.ok("VERSION = 'v1'\n" + cell)
    assert kernel.value("hanji.get(('clingy', 'hello')).text") == "v1"
    kernel.ok("VERSION = 'v2'\n" + cell)  # the swap runs v1's on_deactivate, which raises
    assert kernel.value("hanji.get(('clingy', 'hello')).text") == "v2"
    kernel.ok("hanji.deactivate('clingy')")
    assert kernel.value("hanji.get('/res/clingy/hello').status") == 404
    assert kernel.value("hanji.get('/res/echo/info').status") == 200
    errors = kernel.ok("print(hanji.errors('clingy'))").text
    assert errors.count("Clingy.on_deactivate()") == 2 and "RuntimeError: cannot let go v2" in errors


def test_a_failure_in_work_scheduled_on_the_reactor_is_charged_to_its_applet(kernel: Kernel) -> None:
    """A callable an applet hands to reactor.callFromThread that raises is reported as that
    applet's error (not the reactor's), shown under the next cell, and the applet is
    marked degraded in %hanji status."""
    activated = kernel.ok(PRELUDE + """
class Scheduler(Applet):
    def on_activate(self):
        reactor.callFromThread(lambda: 1 / 0)

hanji.activate(Scheduler(id="scheduler"))
""")
    shown = activated.stderr + kernel.run("import time; time.sleep(0.5)").stderr  # this cell or the next
    assert "Hanji: applet 'scheduler' failed in" in shown and "ZeroDivisionError" in shown
    assert "applet 'reactor'" not in shown
    assert kernel.value("[e.applet_id for e in hanji.errors() if 'ZeroDivisionError' in e.traceback]") == ["scheduler"]
    status = kernel.ok("%hanji status").text
    assert "active, degraded" in status and "ZeroDivisionError" in status


def test_a_failing_render_method_is_shown_once(kernel: Kernel) -> None:
    """A resource that raises is shown with its traceback under the cell, and the
    Response's own display does not show that traceback a second time."""
    result = kernel.ok(PRELUDE + """
class Faulty(TwAppletResource):
    path = "faulty"
    def render_GET(self, request):
        raise ValueError("shown once")

class FaultyWeb(WebUI):
    twisted_dynamic_resources = [Faulty]

hanji.activate(Applet(id="faultyonce"), web=FaultyWeb)
hanji.get(("faultyonce", "faulty"))
""")
    html_reprs = "".join(result.data("text/html"))
    assert "500" in html_reprs and "ValueError: shown once" not in html_reprs
    assert result.stderr.count('raise ValueError("shown once")') == 1
