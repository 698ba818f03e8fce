"""Run ``hanji serve`` with proposed fixes applied in memory, to measure their gain.

    python hanji_patched.py PATCH[,PATCH...] serve --port 0 ...

Nothing in hanji/ is edited: each patch replaces one function at start-up, the way the
fix described in RESULTS.md would change it. Used by ``bench/run.py --patches`` and
the "what a fix gains" figures; the plain figures always run the unpatched server.
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


@patch("no-access-log")
def _no_access_log() -> None:
    """Do not write a per-request access log line at all (HanjiSite.log is a no-op)."""
    from hanji.server.site import HanjiSite

    HanjiSite.log = lambda self, request: None  # type: ignore[method-assign]


@patch("access-log-file")
def _access_log_file() -> None:
    """Write the access log to <data>/access.log with a 64 kB buffer, instead of
    through Twisted's global log -> STDLibLogObserver -> two flushing handlers."""
    import os

    from hanji.server.site import HanjiSite

    def startFactory(self: Any) -> None:
        if self._logDateTimeCall is None:
            self._updateLogDateTime()
        path = os.path.join(os.environ.get("HANJI_DATA", "."), "access.log")
        self._logFile = open(path, "a", 65536, newline="\n")

    def stopFactory(self: Any) -> None:
        log_file = getattr(self, "_logFile", None)
        if log_file is not None and hasattr(log_file, "close"):
            log_file.close()
        self._logFile = None

    HanjiSite.startFactory = startFactory  # type: ignore[method-assign]
    HanjiSite.stopFactory = stopFactory  # type: ignore[method-assign]


@patch("no-in-flight")
def _no_in_flight() -> None:
    """Attribution only: drop HanjiRequest's in-flight set bookkeeping."""
    from twisted.web import server

    from hanji.server.site import HanjiSite

    HanjiSite.requestFactory = server.Request


@patch("untracked")
def _untracked() -> None:
    """Attribution only: leave the reactor's methods unwrapped (no applet tracking)."""
    from hanji.server import tracking

    tracking.install = lambda reactor: None


@patch("static-cache")
def _static_cache() -> None:
    """Build each applet's StaticFolder once (per directory) instead of once per
    request, and remember AppletRecord.static_dir instead of stat()ing it twice per
    request."""
    import functools

    from hanji.server import registry, static

    static.folder = functools.lru_cache(maxsize=256)(static.folder)
    original = registry.AppletRecord.static_dir.fget

    def static_dir(self: Any) -> Any:
        try:
            return self.__dict__["_bench_static_dir"]
        except KeyError:
            value = self.__dict__["_bench_static_dir"] = original(self)
            return value

    registry.AppletRecord.static_dir = property(static_dir)  # type: ignore[assignment]


@patch("switch-1ms")
def _switch_1ms() -> None:
    """Ask CPU-bound threads to hand over the GIL every 1 ms instead of 5 ms."""
    sys.setswitchinterval(0.001)


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
