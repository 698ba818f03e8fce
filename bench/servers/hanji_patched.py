"""Run ``hanji serve`` with one behaviour changed in memory, to measure what it costs.

    python hanji_patched.py PATCH[,PATCH...] serve --port 0 ...

Nothing in hanji/ is edited: each patch replaces one function or attribute at
start-up. The ``before-*`` patches put back, in memory, what Hanji did before the
fixes of bench/FINDINGS.md (commit f40b50d), so that every run of bench/run.py
measures what each fix gains, side by side with the fixed server. The others remove
a piece of Hanji's work to attribute its cost (used with bench/profile.py).
"""

from __future__ import annotations

import sys
from typing import Any, Callable

PATCHES: dict[str, Callable[[], None]] = {}


def patch(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(f: Callable[[], None]) -> Callable[[], None]:
        PATCHES[name] = f
        return f

    return register


@patch("before-access-log")
def _before_access_log() -> None:
    """Before fix A: an access line per request through Twisted's global log, which
    ``hanji serve`` hands to Python logging (stderr and hanji.log, flushed per line)."""
    from twisted.web import server

    from hanji.server.http.site import HanjiSite

    HanjiSite.log = server.Site.log  # type: ignore[method-assign]


@patch("before-static")
def _before_static() -> None:
    """Before fix C: a new StaticFolder per request, and ``static_dir`` stat()ed on
    every read."""
    from hanji.server import registry
    from hanji.server.http import static

    cls = registry.AppletRecord
    compute = cls.__dict__["static_dir"]
    compute = getattr(compute, "func", None) or compute.fget

    def static_folder(self: Any) -> Any:
        directory = self.static_dir
        return static.folder(directory) if directory is not None else None

    cls.static_dir = property(compute)  # type: ignore[assignment]
    cls.static_folder = property(static_folder)  # type: ignore[assignment]


@patch("before-switch-interval")
def _before_switch_interval() -> None:
    """Before fix D: keep CPython's default GIL switch interval (5 ms); ``hanji serve``
    now sets 1 ms, so the call is made a no-op for this process."""
    sys.setswitchinterval = lambda interval: None  # type: ignore[assignment]


@patch("no-in-flight")
def _no_in_flight() -> None:
    """Attribution only: drop HanjiRequest's in-flight set bookkeeping."""
    from twisted.web import server

    from hanji.server.http.site import HanjiSite

    HanjiSite.requestFactory = server.Request


@patch("untracked")
def _untracked() -> None:
    """Attribution only: leave the reactor's methods unwrapped (no applet tracking)."""
    from hanji.server import tracking

    tracking.install = lambda reactor: None


@patch("before-gc-freeze")
def _before_gc_freeze() -> None:
    """Fix E taken back out: `hanji serve` no longer freezes its start-up heap
    (``gc.collect(); gc.freeze()`` once the applets are active)."""
    from hanji import cli

    cli._freeze_heap = lambda server: None


@patch("no-watchdog")
def _no_watchdog() -> None:
    """Attribution only: no stall watchdog (the reactor's poller stays unwrapped)."""
    from hanji.server.watchdog import StallWatchdog

    StallWatchdog.start = lambda self: None  # type: ignore[method-assign]


@patch("no-access-checks")
def _no_access_checks() -> None:
    """Attribution only: no Host, token or CSRF check before routing."""
    from hanji.server.http.routing import HanjiRoot

    HanjiRoot._refused = lambda self, name, request: None  # type: ignore[method-assign]


@patch("no-job-cleanup")
def _no_job_cleanup() -> None:
    """Attribution only: Django pool jobs without the close_old_connections() around
    them (Django's own request signals still close connections)."""
    from hanji.django import pool as django_pool

    django_pool._as_django_job = lambda func, *args, **kw: func(*args, **kw)


@patch("no-limits")
def _no_limits() -> None:
    """Attribution only: Twisted's own HTTPChannel instead of the limits channel."""
    from twisted.web import http

    from hanji.server.http import site

    site.HanjiChannel = http.HTTPChannel  # type: ignore[misc]


def main() -> int:
    names = [n for n in sys.argv[1].split(",") if n and n != "none"]
    for name in names:
        if name not in PATCHES:
            print(f"hanji_patched: unknown patch {name!r}; known: {', '.join(sorted(PATCHES))}", file=sys.stderr)
            return 2
        PATCHES[name]()
    print(f"hanji_patched: applied {', '.join(names) or 'nothing'}", file=sys.stderr, flush=True)
    from hanji.cli import main as hanji_main

    return hanji_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
