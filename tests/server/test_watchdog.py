"""The reactor stall watchdog (issue 6, point 5), against real servers.

``/res/guardtest/block`` (tests/applets/common/guardtest) blocks the reactor thread with
``time.sleep(0.2)``; the watchdog (thread ``HanjiWatchdog``) must report it once, in
the log, naming the applet, the request and the blocking line.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from support.paths import TEST_APPLETS
from support.polling import wait_until

WAIT = 15  # seconds: a hang guard, nothing here is timed


def _wait_for(server: Any, text: str, count: int = 1) -> str:
    """Wait until ``text`` occurs ``count`` times in the server log; return the log."""

    def seen() -> str:
        log = server.log
        return log if log.count(text) >= count else ""

    return wait_until(seen, WAIT, lambda: f"{text!r} not seen {count} time(s) in the log:\n{server.log}")


def _reports(log: str) -> list[str]:
    """Return the full stall reports of the log (a WARNING line and the stack under it)."""
    return re.findall(r"WARNING hanji\.watchdog \[HanjiWatchdog\] Reactor stall: .*?(?=\n\S|\Z)", log, re.S)


def test_blocking_resource_is_reported_once_with_its_stack(start_server: Any) -> None:
    """A render method sleeping 0.2 s on the reactor is reported once, naming the applet, the request and the sleep line."""
    server = start_server([TEST_APPLETS])
    assert server.get("/res/guardtest/block").text == "slept"
    log = _wait_for(server, "GET /res/guardtest/block")
    time.sleep(0.5)  # would a second report of the same stall follow? (not a timed assertion)
    reports = [r for r in _reports(server.log) if "/res/guardtest/block" in r]
    assert len(reports) == 1, log
    report = reports[0]
    assert "blocked the reactor thread for over 50 ms (applet 'guardtest'; GET /res/guardtest/block in Block.render_GET())." in report
    assert "guardtest/__init__.py\", line" in report and "in render_GET\n    time.sleep(0.2)" in report
    assert "defer_to_django(f)" in report  # what to do instead


def test_repeated_stalls_at_one_place_are_counted_not_repeated(start_server: Any) -> None:
    """Three stalls at the same line give one full report and a one-line repeat at the 2nd only (2, 4, 8...)."""
    server = start_server([TEST_APPLETS])
    for _ in range(3):
        assert server.get("/res/guardtest/block").status == 200
        _wait_for(server, "GET /res/guardtest/block")  # the first report, before the next stall
    log = _wait_for(server, "Reactor stall #2 at the same place: applet 'guardtest'")
    time.sleep(0.5)
    log = server.log
    assert len([r for r in _reports(log) if "/res/guardtest/block" in r]) == 1, log
    assert "Reactor stall #3" not in log


def test_stall_threshold_option(start_server: Any) -> None:
    """With --stall-threshold 1000 a 0.2 s stall is not reported; a reactor that waits for I/O never is."""
    server = start_server([TEST_APPLETS], ["--stall-threshold", "1000"])
    assert server.get("/res/guardtest/block").text == "slept"
    assert server.get("/res/guardtest/tcp_port").status == 200  # the reactor answered after the stall
    time.sleep(0.5)
    assert "Reactor stall" not in server.log
    # At the default 50 ms: requests and a second of waiting for I/O are no stall.
    idle = start_server([TEST_APPLETS])
    for _ in range(3):
        assert idle.get("/res/guardtest/tcp_port").status == 200
    time.sleep(1.0)
    assert "Reactor stall" not in idle.log, idle.log


def test_concurrent_requests_are_served_after_a_stall(start_server: Any) -> None:
    """Requests queued behind a stall are all answered, and only the blocking resource is blamed."""
    server = start_server([TEST_APPLETS])
    answers: list[int] = []
    blocker = threading.Thread(target=lambda: answers.append(server.get("/res/guardtest/block").status))
    blocker.start()
    for _ in range(5):
        answers.append(server.get("/res/guardtest/tcp_port").status)
    blocker.join(WAIT)
    assert answers.count(200) == 6
    log = _wait_for(server, "GET /res/guardtest/block")
    blamed = _reports(log)
    assert blamed and all("tcp_port" not in r.splitlines()[0] for r in blamed), log


def test_heartbeat_fallback_on_a_reactor_without_a_poller() -> None:
    """On a reactor with no poller to watch, late heartbeats give one report with the blocking frame."""
    import queue

    from twisted.python import threadable

    from hanji.server.watchdog import StallWatchdog

    class QueueReactor:
        """A minimal reactor: callFromThread queues calls for its own thread."""

        running = True

        def __init__(self) -> None:
            self.calls: queue.Queue[Any] = queue.Queue()

        def callFromThread(self, f: Any, *args: Any) -> None:
            self.calls.put((f, args))

    def block() -> None:
        time.sleep(0.3)  # the blocking frame

    reactor = QueueReactor()
    saved = threadable.ioThread

    def loop() -> None:
        threadable.registerAsIOThread()
        while True:
            f, args = reactor.calls.get()
            if f is None:
                return
            f(*args)

    thread = threading.Thread(target=loop, name="FakeReactor")
    thread.start()
    watchdog = StallWatchdog(reactor, 50)
    try:
        watchdog.start()
        time.sleep(0.2)  # a few heartbeats first
        reactor.callFromThread(block)
        wait_until(lambda: watchdog.stalls() and watchdog.stalls()[0].longest_ms, WAIT, "a stall with its length")
    finally:
        watchdog.stop()
        reactor.calls.put((None, ()))
        thread.join(WAIT)
        threadable.ioThread = saved
    stalls = watchdog.stalls()
    assert len(stalls) == 1 and stalls[0].count == 1, stalls
    assert "time.sleep(0.3)  # the blocking frame" in stalls[0].stack
    assert stalls[0].longest_ms >= 50


def test_a_failing_attribute_does_not_kill_the_watchdog() -> None:
    """Blaming a stall reads attributes of the stalled code's ``self`` on the watchdog
    thread: no property or ``__getattr__`` of applet code runs there, and nothing it
    raises can stop the watchdog."""
    from hanji.server.watchdog import _plain_attr

    class Trap:
        calls = 0

        def __getattr__(self, name):
            Trap.calls += 1
            raise KeyError(name)

        @property
        def applet(self):
            Trap.calls += 1
            raise RuntimeError("property ran on the watchdog thread")

    trap = Trap()
    trap.__dict__["id"] = "plain"
    assert _plain_attr(trap, "applet") is None
    assert _plain_attr(trap, "missing") is None
    assert _plain_attr(trap, "id") == "plain"
    assert Trap.calls == 0


def test_an_error_in_the_watchdog_loop_is_logged_and_it_goes_on(caplog: Any) -> None:
    """An unexpected error on the watchdog thread is logged and the watching resumes,
    instead of the thread dying and no stall ever being reported again."""
    from hanji.server.watchdog import StallWatchdog

    runs: list[int] = []

    def loop(stop: threading.Event) -> None:
        runs.append(1)
        if len(runs) == 1:
            raise KeyError("boom in blame")
        stop.set()

    watchdog = StallWatchdog(object(), 50, lambda: None, lambda: {})
    watchdog._run(loop, threading.Event())
    assert len(runs) == 2
    assert "The stall watchdog failed" in caplog.text and "boom in blame" in caplog.text
