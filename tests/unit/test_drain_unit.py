"""HanjiServer.drain on a stand-in server: a real HanjiSite, a fake pool and a Clock."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from twisted.internet.task import Clock
from twisted.web.resource import Resource
from twisted.web.test.requesthelper import DummyChannel

from hanji.server.http.site import HanjiRequest, HanjiSite
from hanji.server.runtime import HanjiServer


class FakePool:
    """The part of DjangoPool a drain uses: ``busy()`` and ``job_watchers``."""

    def __init__(self) -> None:
        self.jobs = 0
        self.job_watchers: list[tuple[Any, Callable[[], Any]]] = []

    def busy(self) -> int:
        return self.jobs

    def job_done(self) -> None:
        """End one job and tell the watcher through its reactor, as DjangoPool does."""
        self.jobs -= 1
        for reactor, done in tuple(self.job_watchers):
            reactor.callFromThread(done)


class Server:
    """A stand-in HanjiServer: the attributes drain() and in_flight() read."""

    def __init__(self, clock: Any) -> None:
        self.stand_in = types.SimpleNamespace(
            site=HanjiSite(Resource()), pool=FakePool(), applets=types.SimpleNamespace(abandoned=0),
            reactor=clock, drain_timeout=10.0, _hurry=[])
        self.stand_in.in_flight = types.MethodType(HanjiServer.in_flight, self.stand_in)
        self.clock = clock

    @property
    def site(self) -> HanjiSite:
        return self.stand_in.site  # type: ignore[no-any-return]

    @property
    def pool(self) -> FakePool:
        return self.stand_in.pool  # type: ignore[no-any-return]

    def drain(self, timeout: float | None = None) -> list[int]:
        """Start a drain; return the list its result lands in."""
        fired: list[int] = []
        HanjiServer.drain(self.stand_in, timeout).addCallback(fired.append)  # type: ignore[arg-type]
        return fired

    def request(self) -> HanjiRequest:
        """Return a request counted in flight, as HanjiRequest.process counts it."""
        request = HanjiRequest(DummyChannel())
        request._site = self.site
        self.site.in_flight.add(request)
        return request

    def watchers(self) -> tuple[Any, Any]:
        return self.site.request_watchers, self.pool.job_watchers


def test_idle_server_drains_at_once(clock: Clock) -> None:
    """With nothing in flight the drain fires at once with 0 and leaves no watcher or timer."""
    server = Server(clock)
    assert server.drain(5) == [0]
    assert server.watchers() == ([], [])
    assert clock.getDelayedCalls() == []


def test_drain_fires_when_the_last_request_is_done(clock: Clock) -> None:
    """The drain fires with 0 as the last request finishes, without the clock moving."""
    server = Server(clock)
    first, second = server.request(), server.request()
    fired = server.drain(5)
    assert fired == []
    first.done_in_flight()
    assert fired == []
    second.done_in_flight()
    assert fired == [0]
    assert clock.seconds() == 0
    assert server.watchers() == ([], [])
    assert clock.getDelayedCalls() == []


def test_drain_waits_for_django_jobs(clock: Clock) -> None:
    """A Django job still running holds the drain until the pool reports it done."""
    server = Server(clock)
    server.pool.jobs = 2
    fired = server.drain(5)
    server.pool.job_done()
    assert fired == []
    server.pool.job_done()
    assert fired == [0]
    assert server.watchers() == ([], [])


def test_drain_counts_the_larger_of_requests_and_jobs(clock: Clock) -> None:
    """A request answered while its Django job still runs leaves the drain waiting."""
    server = Server(clock)
    request = server.request()
    server.pool.jobs = 1
    fired = server.drain(5)
    request.done_in_flight()
    assert fired == []
    server.pool.job_done()
    assert fired == [0]


def test_abandoned_activations_do_not_hold_the_drain(clock: Clock) -> None:
    """Django workers stuck in abandoned on_activate calls are not waited for."""
    server = Server(clock)
    server.pool.jobs = 2
    server.stand_in.applets.abandoned = 1
    fired = server.drain(5)
    assert fired == []
    server.pool.job_done()
    assert fired == [0]


def test_drain_fires_with_the_count_left_at_the_deadline(clock: Clock) -> None:
    """At the timeout the drain fires with the number still in flight and unhooks itself."""
    server = Server(clock)
    requests = [server.request() for _ in range(3)]
    fired = server.drain(5)
    clock.advance(4.9)
    assert fired == []
    clock.advance(0.1)
    assert fired == [3]
    assert server.watchers() == ([], [])
    requests[0].done_in_flight()  # later news changes nothing
    assert fired == [3]


def test_drain_uses_the_server_timeout_by_default(clock: Clock) -> None:
    """Without a timeout the drain waits drain_timeout seconds."""
    server = Server(clock)
    server.request()
    fired = server.drain()
    clock.advance(9.9)
    assert fired == []
    clock.advance(0.1)
    assert fired == [1]


def test_request_done_after_a_drain_calls_nothing(clock: Clock) -> None:
    """Once a drain fired, a request finishing later finds no watcher to call."""
    server = Server(clock)
    request = server.request()
    server.drain(1)
    clock.advance(1)
    request.done_in_flight()
    assert server.site.in_flight == set()
    assert server.watchers() == ([], [])


def test_in_flight_counts_requests_or_jobs_whichever_is_more(clock: Clock) -> None:
    """in_flight is the larger of the requests in flight and the non-abandoned jobs."""
    server = Server(clock)
    server.request()
    server.request()
    server.pool.jobs = 5
    server.stand_in.applets.abandoned = 4
    assert server.stand_in.in_flight() == 2
    server.stand_in.applets.abandoned = 0
    assert server.stand_in.in_flight() == 5


def test_overlapping_drains_both_fire_when_the_work_ends(clock: Clock) -> None:
    """Two drains running at once both fire with 0 as soon as the last request is done."""
    server = Server(clock)
    request = server.request()
    first, second = server.drain(5), server.drain(5)
    request.done_in_flight()
    assert second == [0]
    assert first == [0]


def test_hurry_ends_a_drain_at_once_with_what_is_left(clock: Clock) -> None:
    """hurry() (SIGTERM during a kernel's exit) fires the drain now with the count left."""
    server = Server(clock)
    server.request()
    fired = server.drain(60)
    assert fired == []
    HanjiServer.hurry(server.stand_in)  # type: ignore[arg-type]
    assert fired == [1]
    assert server.watchers() == ([], []) and server.stand_in._hurry == []
