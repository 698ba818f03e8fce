"""The stall watchdog and the wrong-thread guard in a real kernel (issue 6, points 5 and 6).

In a notebook debug mode is on unless ``HANJI_DEBUG=0``, the reactor runs in the
``HanjiReactor`` thread (which Twisted must know as its I/O thread), and stall
reports reach ``hanji.errors()`` and ``%hanji status``.
"""

from __future__ import annotations

from typing import Any

from support.kernels import Kernel

PRELUDE = """
import threading, time
from twisted.internet import reactor, threads
from hanji.core.applet import Applet, WebUI
from hanji.core.utils import TwAppletResource
"""

SLOW = PRELUDE + """
class Slow(TwAppletResource):
    path = "slow"
    def render_GET(self, request):
        time.sleep(0.2)  # blocks the reactor on purpose
        return "done"

class SlowWeb(WebUI):
    twisted_dynamic_resources = [Slow]

hanji.activate(Applet(id="slowpoke"), web=SlowWeb)
print(hanji.get(("slowpoke", "slow")).text)
"""

WRITER = PRELUDE + """
class Writer(TwAppletResource):
    path = "write"
    def render_GET(self, request):
        def work():
            request.write(b"from a thread ")
            return "written"
        return threads.deferToThread(work)

class WriterWeb(WebUI):
    twisted_dynamic_resources = [Writer]

hanji.activate(Applet(id="writer"), web=WriterWeb)
answer = hanji.get(("writer", "write"))
print(answer.status, answer.text)
"""


def test_stall_reaches_errors_and_status(kernel: Kernel) -> None:
    """A resource sleeping on the reactor is reported under the cell, in hanji.errors() and in %hanji status."""
    result = kernel.ok(SLOW)
    assert "done" in result.stdout
    printed = result.stderr + kernel.ok("import time; time.sleep(0.5)").stderr  # under this cell or the next
    assert "Hanji: applet 'slowpoke' reactor stall over 50 ms (GET /res/slowpoke/slow" in printed
    errors = kernel.ok("print(hanji.errors('slowpoke'))").stdout
    if "reactor stall" not in errors:  # the report may land just after the cell: wait for it
        errors = kernel.ok("import time; time.sleep(1); print(hanji.errors('slowpoke'))").stdout
    assert "reactor stall over 50 ms (GET /res/slowpoke/slow in Slow.render_GET())" in errors
    assert "time.sleep(0.2)  # blocks the reactor on purpose" in errors  # the cell's own line
    assert errors.count("Reactor stall:") == 1
    status = kernel.ok("%hanji status").text
    assert "reactor stalls over 50 ms: 1 (last: applet 'slowpoke', GET /res/slowpoke/slow in Slow.render_GET()" in status


def test_debug_is_on_by_default_and_the_reactor_thread_is_known(kernel: Kernel) -> None:
    """Debug mode is on in a notebook; Twisted's I/O thread is HanjiReactor; the watchdog thread runs."""
    assert kernel.value("__import__('hanji._threads')._threads.debug_enabled()") is True
    assert kernel.value(
        "[t.name for t in __import__('threading').enumerate() "
        "if t.ident == __import__('twisted.python.threadable').python.threadable.ioThread]"
    ) == ["HanjiReactor"]
    assert "HanjiWatchdog" in kernel.value("[t.name for t in __import__('threading').enumerate()]")


def test_request_write_from_a_thread_raises_in_a_notebook(kernel: Kernel) -> None:
    """In a notebook request.write from a worker thread is a 500 with HanjiThreadError and the fix."""
    result = kernel.ok(WRITER)
    assert "500 " in result.stdout
    assert "HanjiThreadError: request.write called from thread" in result.stdout
    assert "use reactor.callFromThread(request.write, data)" in result.stdout


def test_call_later_from_the_cell_thread_raises(kernel: Kernel) -> None:
    """reactor.callLater from a cell raises HanjiThreadError saying to use callFromThread."""
    result = kernel.run("from twisted.internet import reactor\nreactor.callLater(1, print, 'late')")
    assert result.error["ename"] == "HanjiThreadError"
    assert "reactor.callLater called from thread MainThread" in result.error_text
    assert "reactor.callFromThread(reactor.callLater, delay, f)" in result.error_text


def test_watchdog_stops_with_hanji_and_restarts(kernel: Kernel) -> None:
    """%hanji stop stops the watchdog thread and %hanji start starts it again."""
    names = "[t.name for t in __import__('threading').enumerate()]"
    kernel.ok("%hanji stop")
    kernel.ok("import time; time.sleep(0.3)")  # it exits at its next wake-up (within 50 ms)
    assert "HanjiWatchdog" not in kernel.value(names)
    kernel.ok("%hanji start")
    assert "HanjiWatchdog" in kernel.value(names)


def test_debug_off_and_threshold_from_the_environment(new_kernel: Any) -> None:
    """With HANJI_DEBUG=0 the wrong-thread call goes through; HANJI_STALL_MS=0 turns the watchdog off."""
    kernel = new_kernel(env={"HANJI_DEBUG": "0", "HANJI_STALL_MS": "0"}, applets=None)
    kernel.ok("%load_ext hanji\nimport hanji")
    result = kernel.ok(WRITER)
    assert "200 from a thread written" in result.stdout
    kernel.ok(SLOW)
    assert "reactor stall watchdog: off (HANJI_STALL_MS=0)" in kernel.ok("%hanji status").text
    assert "Reactor stall" not in kernel.ok("import time; time.sleep(0.3); print(hanji.errors())").stdout
