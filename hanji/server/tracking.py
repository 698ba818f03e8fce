"""Track what an applet opens on the reactor, so it can be closed for it; reactor thread.

While an applet's code runs (``on_activate``, a render method, or a callable that
such code handed to ``reactor.callFromThread``), the context variable ``current_applet``
names the applet (:mod:`hanji.core._context`). The reactor's ``listenTCP``, ``listenUDP``, ``connectTCP`` and
``callLater`` are wrapped once, at server start, so that what they return is recorded
on that applet. This is what makes the reference's
``reactor.callFromThread(lambda: reactor.listenTCP(1234, factory))`` close its port
when the applet is deactivated, without the applet doing anything.

In debug mode the same wrappers apply the wrong-thread guard (:mod:`hanji.server._guard`):
``callLater`` off the reactor thread raises HanjiThreadError, and the connections of
the factories given to ``listenTCP``/``connectTCP`` get guarded transports.
"""

from __future__ import annotations

import contextvars
import functools
import threading
import traceback
from typing import Any, Callable

from hanji import _errorlog as _errors
from hanji import _threads
from hanji.core._context import current_applet, on_build, opened_of
from hanji.server import _guard

_installed: set[int] = set()
_install_lock = threading.Lock()


def _factory(args: tuple[Any, ...], kwargs: dict[str, Any], at: int) -> Any:
    """Return the factory argument of a listenX/connectX call (positional or keyword)."""
    return args[at] if len(args) > at else kwargs.get("factory")


def _wrap(method: Callable[..., Any], kind: str) -> Callable[..., Any]:
    factory_at = {"port": 1, "connector": 2}.get(kind)

    @functools.wraps(method)
    def tracked(*args: Any, **kwargs: Any) -> Any:
        if _threads._debug:
            # Debug mode's wrong-thread guard (hanji.server._guard); one flag test otherwise.
            if kind == "call":
                _guard.check_call_later()
            elif factory_at is not None:
                on_build(_factory(args, kwargs, factory_at), "_hanji_guards", _guard.guard_protocol)
        opened = opened_of(current_applet.get())
        if opened is not None and kind == "port":
            opened.track_factory(_factory(args, kwargs, 1))
        if opened is not None and kind == "call" and len(args) > 1:
            # The call runs as the applet too, so what it schedules in turn (a
            # LoopingCall's next tick) is recorded and cancelled with it.
            args = (args[0], contextvars.copy_context().run, *args[1:])
        result = method(*args, **kwargs)
        if opened is not None:
            opened.record(kind, result)
        return result

    tracked._hanji_tracked = True  # type: ignore[attr-defined]
    return tracked


def _wrap_call_from_thread(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call_from_thread(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        applet = current_applet.get()
        if applet is not None:
            # Carry the applet's context to the reactor thread with the call, and
            # charge a failure of the call to the applet (Twisted would log it as
            # the reactor's own "Unhandled Error").
            ctx = contextvars.copy_context()
            return method(ctx.run, _charged_to(applet, f), *args, **kwargs)
        return method(f, *args, **kwargs)

    call_from_thread._hanji_tracked = True  # type: ignore[attr-defined]
    return call_from_thread


def _charged_to(applet: Any, f: Callable[..., Any]) -> Callable[..., Any]:
    """Return ``f`` reporting its exception as ``applet``'s (logged under
    ``hanji.applet.<id>``, kept in ``hanji.errors()``) instead of raising it into
    the reactor; reactor thread, when called."""

    @functools.wraps(f)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except Exception:
            name = getattr(f, "__qualname__", None) or repr(f)
            where = f"{name}(), run on the reactor by reactor.callFromThread"
            _errors.report_failure(str(getattr(applet, "id", "?")), where, traceback.format_exc(),
                                   f"Applet '{getattr(applet, 'id', '?')}': {where} failed")
            return None

    return call


def install(reactor: Any) -> None:
    """Wrap the reactor's opening methods once (idempotent, any thread)."""
    with _install_lock:
        if id(reactor) in _installed:
            return
        for name, kind in (
            ("listenTCP", "port"),
            ("listenUDP", "port"),
            ("listenUNIX", "port"),
            ("connectTCP", "connector"),
            ("callLater", "call"),
        ):
            method = getattr(reactor, name, None)
            if method is not None and not getattr(method, "_hanji_tracked", False):
                setattr(reactor, name, _wrap(method, kind))
        reactor.callFromThread = _wrap_call_from_thread(reactor.callFromThread)
        _installed.add(id(reactor))
