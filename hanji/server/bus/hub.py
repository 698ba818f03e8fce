"""Local delivery of bus messages: the subscribers and websocket endpoints of this
process; deliveries on the reactor thread.

:class:`Hub` is process-wide (:data:`HUB`): subscriptions outlive a server restart
in a kernel, and a backend (in-process, relay, Redis) hands it what to deliver.
Delivery is in the order of :meth:`Hub.deliver` calls; a message published by a
subscriber while a delivery runs is queued behind it, so every subscriber of a
topic sees the same order.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections import deque
from typing import Any, Callable

from twisted.internet import defer
from twisted.python.failure import Failure

from hanji.core._context import open_websockets, run_as
from hanji.server.bus._codec import FrameError, decode

__all__ = ["HUB", "Hub", "WEBSOCKET_PREFIX", "APPLET_PREFIX", "websocket_topic"]

log = logging.getLogger("hanji.bus")

# Topic namespaces on the wire: a websocket endpoint class, or a name given to
# hanji.publish / hanji.subscribe.
WEBSOCKET_PREFIX = "ws:"
APPLET_PREFIX = "app:"


def websocket_topic(cls: type) -> str:
    """Return the bus topic of websocket endpoint class ``cls``: its module and
    qualified name, the same in every worker that loads the applet; any thread."""
    return f"{WEBSOCKET_PREFIX}{cls.__module__}.{cls.__qualname__}"


class Hub:
    """Who gets what in this process. Subscriptions may change on any thread (a
    lock guards them); :meth:`deliver` runs on the reactor thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, list[tuple[Callable[[Any], Any], Any]]] = {}
        self._queue: deque[tuple[str, bytes]] = deque()
        self._delivering = False
        self.delivered = 0  # messages delivered so far (reactor thread)

    def subscribe(self, topic: str, callback: Callable[[Any], Any], applet: Any = None) -> Callable[[], None]:
        """Call ``callback(message)`` on the reactor thread, as ``applet``, for each
        message on the wire topic ``topic``; return the function that stops it
        (idempotent). Any thread."""
        entry = (callback, applet)
        with self._lock:
            self._subscribers.setdefault(topic, []).append(entry)

        def unsubscribe() -> None:
            with self._lock:
                entries = self._subscribers.get(topic)
                if entries is None:
                    return
                try:
                    entries.remove(entry)
                except ValueError:
                    return
                if not entries:
                    del self._subscribers[topic]

        return unsubscribe

    def subscribers(self, topic: str) -> int:
        """Return how many callbacks are subscribed to ``topic``; any thread."""
        with self._lock:
            return len(self._subscribers.get(topic, ()))

    def deliver(self, topic: str, body: bytes) -> None:
        """Deliver one message to this process's websocket connections or
        subscribers of ``topic``; reactor thread. Re-entrant calls queue."""
        self._queue.append((topic, body))
        if self._delivering:
            return
        self._delivering = True
        try:
            while self._queue:
                self._deliver_one(*self._queue.popleft())
        finally:
            self._delivering = False

    def _deliver_one(self, topic: str, body: bytes) -> None:
        try:
            message = decode(body)
        except (FrameError, ValueError) as exc:
            log.warning("Bus: dropped a message on %s that does not decode (%s).", topic, exc)
            return
        self.delivered += 1
        if topic.startswith(WEBSOCKET_PREFIX):
            for cls in list(open_websockets):
                if websocket_topic(cls) == topic:
                    try:
                        cls._broadcast_now(message)  # type: ignore[attr-defined]
                    except Exception:
                        log.exception("Bus: broadcasting to %s failed.", cls.__qualname__)
        with self._lock:
            entries = list(self._subscribers.get(topic, ()))
        for callback, applet in entries:
            self._call(topic, callback, applet, message)

    def _call(self, topic: str, callback: Callable[[Any], Any], applet: Any, message: Any) -> None:
        """Call one subscriber as its applet; log what it raises (or its Deferred
        or coroutine fails with) and go on with the others."""
        def failed(failure: Failure) -> None:
            name = getattr(callback, "__qualname__", repr(callback))
            where = f"applet '{getattr(applet, 'id', '?')}'" if applet is not None else "no applet"
            log.error("Bus subscriber %s (%s) failed on topic %r:\n%s", name, where,
                      topic[len(APPLET_PREFIX):] if topic.startswith(APPLET_PREFIX) else topic,
                      failure.getTraceback())

        def call() -> Any:
            result = callback(message)
            if inspect.iscoroutine(result):
                result = defer.ensureDeferred(result)
            return result

        try:
            result = run_as(applet, call)
        except Exception:
            failed(Failure())
            return
        if isinstance(result, defer.Deferred):
            result.addErrback(failed)


HUB = Hub()
