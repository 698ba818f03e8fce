"""The Redis backend of the bus (``--bus redis://host:port/db`` or ``HANJI_BUS``).

Redis pub/sub on one channel per topic (``hanji:<db>:bus:<topic>``; pub/sub
channels are shared by every database of a server, hence the number in the name):
Redis sends a channel's messages to every subscriber in the order it received
them, which is the one order of that endpoint everywhere. Each process publishes
and delivers only what Redis sends back, as with the relay.

redis-py (maintained by Redis) is used without blocking the reactor, on two
threads of its own:

- ``HanjiBusRedisSub`` holds the subscriber connection (a pattern subscription to
  ``hanji:<db>:bus:*``) and hands each message to the reactor with
  ``callFromThread``; when the connection fails it retries with back-off (0.1 s
  doubling up to 2 s) and resubscribes;
- ``HanjiBusRedisPub`` publishes, in the order the reactor queued the messages.

While Redis cannot be reached (the subscription is not confirmed, or a publish
failed) what this process publishes is delivered to its own connections only:
one log line when Redis goes, one when it is back; messages are not kept for
later, and a message in flight when the connection broke may miss this process.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twisted.internet import defer

from hanji.server.bus._outage import Outage
from hanji.server.bus.hub import Hub

__all__ = ["RedisBackend", "redacted"]

log = logging.getLogger("hanji.bus")

_POLL = 0.5  # seconds the subscriber waits for a message before checking for stop
_MIN_DELAY, _MAX_DELAY = 0.1, 2.0
_FAIL_FAST = 0.5  # seconds after a failed publish during which queued ones are not tried


def redacted(url: str) -> str:
    """Return ``url`` without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _db_of(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    try:
        return int(path) if path else 0
    except ValueError:
        return 0


class RedisBackend:
    """Publish through Redis at ``url``. ``publish`` and the deliveries run on the
    reactor thread; the Redis connections live on the two threads above."""

    def __init__(self, reactor: Any, hub: Hub, url: str) -> None:
        import redis  # the dependency is needed only by this backend
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._redis = redis
        # One immediate retry (a connection left broken by a Redis restart), not
        # redis-py's default back-off: a message waiting on it is delivered late.
        self._retry = Retry(NoBackoff(), 1)
        self.reactor = reactor
        self.hub = hub
        self.url = url
        self.name = redacted(url)
        self.prefix = f"hanji:{_db_of(url)}:bus:"
        self.outage = Outage(self.name)
        self.subscribed = False  # reactor thread: deliveries come back from Redis
        self._stopping = threading.Event()
        self._recheck = threading.Event()  # a publish failed: the subscriber reconnects
        self._outbox: queue.SimpleQueue[tuple[str, bytes] | None] = queue.SimpleQueue()
        self._ready: defer.Deferred[None] | None = None
        self._threads: list[threading.Thread] = []

    # -- reactor thread -----------------------------------------------------------

    def start(self) -> defer.Deferred[None]:
        """Start both threads; fire once subscribed, or once the first attempt
        failed (local delivery meanwhile)."""
        self._ready = defer.Deferred()
        for name, target in (("HanjiBusRedisSub", self._subscriber), ("HanjiBusRedisPub", self._publisher)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(thread)
            thread.start()
        return self._ready

    def _first_attempt_done(self) -> None:
        ready, self._ready = self._ready, None
        if ready is not None:
            ready.callback(None)

    def publish(self, topic: str, body: bytes) -> None:
        """Queue for Redis while subscribed; otherwise deliver here at once."""
        if self.subscribed and not self._stopping.is_set():
            self._outbox.put((topic, body))
        else:
            self.hub.deliver(topic, body)

    def _up(self) -> None:
        if self._stopping.is_set():
            return
        self.subscribed = True
        self.outage.recovered()
        self._first_attempt_done()

    def _down(self, reason: str) -> None:
        self.subscribed = False
        if not self._stopping.is_set():
            self.outage.failed(reason)
        self._first_attempt_done()

    def _publish_failed(self, topic: str, body: bytes, reason: str) -> None:
        """A publish did not reach Redis: deliver it here, and have the subscriber
        check its connection (it may not have noticed yet)."""
        if self.subscribed:
            self._recheck.set()
        self._down(reason)
        self.hub.deliver(topic, body)

    def _received(self, channel: bytes, body: bytes) -> None:
        if self._stopping.is_set():
            return
        self.hub.deliver(channel[len(self.prefix):].decode("utf-8", "replace"), body)

    def stop(self) -> defer.Deferred[None]:
        """Stop both threads (they end within half a second; daemon threads)."""
        self._stopping.set()
        self.subscribed = False
        self._outbox.put(None)
        self._first_attempt_done()
        return defer.succeed(None)

    # -- HanjiBusRedisSub ----------------------------------------------------------------

    def _subscriber(self) -> None:
        delay = _MIN_DELAY
        call = self.reactor.callFromThread
        while not self._stopping.is_set():
            pubsub: Any = None
            client: Any = None
            try:
                client = self._redis.Redis.from_url(self.url, socket_connect_timeout=2.0, retry=self._retry)
                pubsub = client.pubsub()
                pubsub.psubscribe(self.prefix + "*")
                self._recheck.clear()
                while not self._stopping.is_set():
                    if self._recheck.is_set():
                        self._recheck.clear()
                        pubsub.ping()  # raises if the connection is gone, else a pong comes
                    message = pubsub.get_message(timeout=_POLL)
                    if message is None:
                        continue
                    kind = message["type"]
                    if kind == "pmessage":
                        call(self._received, message["channel"], message["data"])
                    elif kind in ("psubscribe", "pong"):  # subscribed, or still after a failed publish
                        delay = _MIN_DELAY
                        call(self._up)
            except Exception as exc:  # redis.ConnectionError, TimeoutError, an OSError...
                if not self._stopping.is_set():
                    call(self._down, f"{type(exc).__name__}: {exc}")
            finally:
                for thing in (pubsub, client):
                    try:
                        if thing is not None:
                            thing.close()
                    except Exception:
                        pass
            if self._stopping.wait(delay):
                break
            delay = min(delay * 2, _MAX_DELAY)

    # -- HanjiBusRedisPub ----------------------------------------------------------------

    def _publisher(self) -> None:
        client: Any = None
        call = self.reactor.callFromThread
        failed_at = -_FAIL_FAST
        try:
            client = self._redis.Redis.from_url(self.url, socket_connect_timeout=2.0, socket_timeout=5.0,
                                                retry=self._retry)
            while True:
                item = self._outbox.get()
                if item is None or self._stopping.is_set():
                    return
                topic, body = item
                if time.monotonic() - failed_at < _FAIL_FAST:
                    call(self._publish_failed, topic, body, "Redis failed just before")
                    continue
                try:
                    client.publish(self.prefix + topic, body)
                except Exception as exc:
                    failed_at = time.monotonic()
                    call(self._publish_failed, topic, body, f"{type(exc).__name__}: {exc}")
        finally:
            if client is not None:
                try:
                    client.close()
                except Exception:
                    pass
