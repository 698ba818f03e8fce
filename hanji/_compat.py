"""The one seam for private internals of Twisted, wsproto, Django and IPython.

Hanji uses public APIs wherever one exists. The few private attributes it still
needs are reached here, and only here, each with the version it was checked
against and why no public API does the job. :func:`missing` lists any that an
upgrade removed; ``tests/server/test_architecture.py`` fails naming them, so an upgrade
breaks one test with a clear message instead of a server at run time.

Checked against Twisted 26.10.0, wsproto 1.3.2, Django 5.2.19 and IPython 9.18.1.
"""

from __future__ import annotations

from typing import Any, Callable

# -- Twisted: twisted.web.http.HTTPChannel (and its base, LineReceiver) -------------
# HanjiChannel (hanji.server.http.limits) enforces request limits inside twisted.web's
# parser, which has no hooks for them: it reads the parser's state and words the
# answers Twisted gives to malformed requests.


def channel_handling_request(channel: Any) -> bool:
    """Return True while ``channel`` answers a request and holds the next one back
    (HTTPChannel._handlingRequest, Twisted 26.10)."""
    return bool(channel._handlingRequest)


def channel_unparsed(channel: Any) -> bytes:
    """Return the bytes ``channel`` received but has not parsed into lines yet
    (LineReceiver._buffer, Twisted 26.10)."""
    return bytes(channel._buffer)


def channel_request_line(channel: Any) -> tuple[bytes, bytes, bytes]:
    """Return the method, URI and version of the request whose head ``channel`` is
    reading (HTTPChannel._command, _path, _version, Twisted 26.10)."""
    return channel._command, channel._path, channel._version


def channel_header_counts(channel: Any) -> tuple[int, int]:
    """Return how many header fields and header bytes ``channel`` has read of the
    current head (HTTPChannel._receivedHeaderCount, _receivedHeaderSize, Twisted 26.10)."""
    return channel._receivedHeaderCount, channel._receivedHeaderSize


def set_channel_handling_request(channel: Any, handling: bool) -> None:
    """Tell ``channel``'s HTTPChannel methods whether a request is being answered
    (HTTPChannel._handlingRequest, Twisted 26.10: its pause/resume of the network
    producer reads it); the httptools channel parses requests itself."""
    channel._handlingRequest = handling


def request_disconnected(request: Any) -> bool:
    """Return True once ``request``'s connection was lost (Request._disconnected,
    Twisted 26.10; the httptools channel's lean request checks it as Twisted's
    ``write`` does)."""
    return bool(request._disconnected)


def channel_stop_producing(channel: Any) -> None:
    """Detach ``channel``'s transport from the producer that pauses it, before a
    half-close (HTTPChannel._networkProducer, Twisted 26.10)."""
    channel._networkProducer.unregisterProducer()


_BAD_REQUEST = "_respondToBadRequestAndDisconnect"


def override_bad_request(cls: type, method: Callable[[Any], None]) -> None:
    """Make ``method`` answer the malformed requests twisted.web refuses by itself,
    on channel class ``cls`` (HTTPChannel._respondToBadRequestAndDisconnect, Twisted
    26.10: it answers a bare 400 with no reason)."""
    setattr(cls, _BAD_REQUEST, method)


def respond_bad_request(channel: Any) -> None:
    """Answer 400 on ``channel`` and close it, as twisted.web does for a malformed
    request (HTTPChannel._respondToBadRequestAndDisconnect, Twisted 26.10)."""
    getattr(channel, _BAD_REQUEST)()


_UPGRADE = "_protocolUpgradeForWebsockets"
_base_upgrade: Any = None


def override_websocket_upgrade(cls: type, method: Callable[[Any, Any], None]) -> None:
    """Make ``method`` run when twisted.web.websocket upgrades a channel of class
    ``cls`` to a websocket (HTTPChannel._protocolUpgradeForWebsockets, Twisted 26.10,
    which WebSocketResource.render_GET calls: the one moment an upgrade is known,
    wherever the websocket is mounted). ``method`` must call :func:`upgrade_channel`."""
    global _base_upgrade
    from twisted.web.http import HTTPChannel

    _base_upgrade = getattr(HTTPChannel, _UPGRADE)
    setattr(cls, _UPGRADE, method)


def upgrade_channel(channel: Any, protocol: Any) -> None:
    """Do twisted.web's own upgrade of ``channel`` to ``protocol`` (see
    :func:`override_websocket_upgrade`)."""
    _base_upgrade(channel, protocol)


def discard_unsent(transport: Any) -> None:
    """Drop what a lost TCP connection never sent, so it is freed at once rather
    than with the reference cycles the connection's objects form (FileDescriptor
    .dataBuffer, ._tempDataBuffer, ._tempDataLen, Twisted 26.10: Twisted keeps them
    after connectionLost)."""
    if hasattr(transport, "_tempDataBuffer"):
        transport.dataBuffer = b""
        transport._tempDataBuffer = []
        transport._tempDataLen = 0


def raw_headers(headers: Any) -> dict[bytes, list[bytes]]:
    """Return the table of a ``twisted.web.http_headers.Headers``: canonical name
    (``Content-Type``) to values (Headers._rawHeaders, Twisted 26.10). The httptools
    channel's requests set their default headers there without re-encoding names
    whose form is known."""
    return headers._rawHeaders  # type: ignore[no-any-return]


def header_name_encoder() -> Callable[[bytes], bytes]:
    """Return twisted.web's canonicaliser of header names, ``b"content-type"`` to
    ``b"Content-Type"`` (http_headers._nameEncoder.encode, Twisted 26.10): the
    httptools channel files request headers with it straight into the table of
    :func:`raw_headers` (llhttp has checked the names and values already)."""
    from twisted.web import http_headers

    return http_headers._nameEncoder.encode  # type: ignore[no-any-return]


def transport_unsent(transport: Any) -> int:
    """Return how many bytes a TCP transport holds unsent (FileDescriptor.dataBuffer,
    .offset, ._tempDataLen, Twisted 26.10: no public count exists). The httptools
    channel sends an answer straight to the socket only when this is 0."""
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


# -- Twisted: twisted.internet.tcp.Port -------------------------------------------------
# Workers share one listening socket. Port.doRead accepts up to numberAccepts
# connections per wake-up (100, growing by 20 while it gets them all): the first
# worker awake takes a whole burst (wrk's 20 connections) and the others none.


def accept_one_per_wakeup(port: Any) -> None:
    """Make the listening ``port`` accept one connection each time the reactor finds
    it readable, so workers sharing its socket share a burst of connections
    (tcp.Port.numberAccepts, reset before each doRead; Twisted 26.10); reactor thread."""
    read = port.doRead

    def doRead() -> Any:
        port.numberAccepts = 1
        return read()

    port.doRead = doRead


# -- Twisted: the poll and epoll reactors --------------------------------------------
# The stall watchdog (hanji.server.watchdog) stamps each return from the I/O wait;
# Twisted has no public hook for "a loop iteration starts".


def reactor_poller(reactor: Any) -> Any:
    """Return the poll/epoll object of ``reactor``, or None for other reactors
    (EPollReactor._poller and PollReactor._poller, Twisted 26.10)."""
    return getattr(reactor, "_poller", None)


def set_reactor_poller(reactor: Any, poller: Any) -> None:
    """Replace ``reactor``'s poll/epoll object (see :func:`reactor_poller`)."""
    reactor._poller = poller


# -- wsproto inside twisted.web.websocket ------------------------------------------
# Twisted reports whole messages only, without close codes or sizes while a
# message arrives; Hanji watches wsproto's events through Twisted's transport.


def websocket_connection(transport: Any) -> Any:
    """Return the wsproto Connection inside a twisted.web.websocket transport, or
    None (_WebSocketWireProtocol._wsconn, twisted.web._websocket_impl, Twisted 26.10)."""
    return getattr(transport, "_wsconn", None)


def set_websocket_connection(transport: Any, conn: Any) -> None:
    """Replace the wsproto Connection of a twisted.web.websocket transport."""
    transport._wsconn = conn


# -- Django --------------------------------------------------------------------------


def check_csrf_token(request: Any) -> None:
    """Run Django's CSRF token comparison on ``request`` (cookie against header or
    form field); raise ``django.middleware.csrf.RejectRequest`` on a mismatch
    (CsrfViewMiddleware._check_token, Django 5.2: the public process_view also
    checks origins and referers the Twisted side checks itself)."""
    from django.middleware.csrf import CsrfViewMiddleware

    CsrfViewMiddleware(lambda r: None)._check_token(request)


def skip_csrf_checks(request: Any) -> None:
    """Make Django's CsrfViewMiddleware let ``request`` through (the flag Django's
    test client sets: HttpRequest._dont_enforce_csrf_checks, Django 5.2)."""
    request._dont_enforce_csrf_checks = True


def app_configs(apps: Any) -> dict[str, Any]:
    """Return the registry's app configs by label, to add a notebook's app or drop a
    broken one (Apps.app_configs, Django 5.2; Django has no public API to change the
    installed apps after setup outside its test utilities)."""
    return apps.app_configs  # type: ignore[no-any-return]


def reset_app_registry(apps: Any, label: str) -> None:
    """Return the app registry to its state before ``populate()`` and forget the
    models of app ``label``, so populate can run again without an applet that
    failed to import (Apps.app_configs, all_models, apps_ready, models_ready,
    loading, Django 5.2: populate() cannot be retried once it raised)."""
    apps.app_configs = {}
    apps.apps_ready = apps.models_ready = apps.ready = False
    apps.loading = False
    apps.all_models.pop(label, None)
    apps.clear_cache()


def all_models(apps: Any) -> dict[str, dict[str, Any]]:
    """Return every model class registered, by app label, including those of apps
    not installed (Apps.all_models, Django 5.2: get_models() skips the latter)."""
    return apps.all_models  # type: ignore[no-any-return]


# -- IPython -------------------------------------------------------------------------


def show_traceback(shell: Any, etype: type, value: BaseException, stb: list[str]) -> None:
    """Show ``stb`` as the cell's error and record it as the cell's exception
    (InteractiveShell._showtraceback, IPython 9.18: a custom exception handler can
    only print through it, and it is what marks the cell failed in the front end)."""
    shell._showtraceback(etype, value, stb)


# -- the check ---------------------------------------------------------------------------


def _samples() -> list[tuple[str, Any, str]]:
    """Return ``(name, owner, attribute)`` for every private attribute used above;
    ``owner`` is an object that has it, or a class or module whose code sets it
    (``self.<attribute> =``) when its instances get it only once connected."""
    from django.apps import apps as django_apps
    from django.middleware.csrf import CsrfViewMiddleware
    from IPython.core.interactiveshell import InteractiveShell
    from twisted.internet import abstract, epollreactor, tcp
    from twisted.python import components
    from twisted.web import _websocket_impl, http, http_headers, resource, server

    channel = http.HTTPChannel()
    samples: list[tuple[str, Any, str]] = [("HTTPChannel." + a, channel, a) for a in (
        "_handlingRequest", "_buffer", "_receivedHeaderCount", "_receivedHeaderSize", _BAD_REQUEST,
        _UPGRADE)]
    samples += [("HTTPChannel." + a, http.HTTPChannel, a)
                for a in ("_command", "_path", "_version", "_networkProducer")]
    samples += [
        ("EPollReactor._poller", epollreactor.EPollReactor, "_poller"),
        ("Port.numberAccepts", tcp.Port, "numberAccepts"),
        ("FileDescriptor._tempDataBuffer", abstract.FileDescriptor, "_tempDataBuffer"),
        ("FileDescriptor._tempDataLen", abstract.FileDescriptor, "_tempDataLen"),
        ("Headers._rawHeaders", http.Headers(), "_rawHeaders"),
        ("http_headers._nameEncoder", http_headers, "_nameEncoder"),
        # What the httptools channel's lean request (hanji.server.http._fast_request)
        # mirrors of twisted.web's Request, and its channel of HTTPChannel.
        ("Request._inFakeHead", server.Request, "_inFakeHead"),
        ("Request._encoder", server.Request, "_encoder"),
        ("Request._handleStar", server.Request, "_handleStar"),
        ("Request._parsePOSTFormSubmission", http.Request, "_parsePOSTFormSubmission"),
        ("Componentized._adapterCache", components.Componentized, "_adapterCache"),
        ("resource._IEncodingResource", resource, "_IEncodingResource"),
        ("HTTPChannel._optimisticEagerReadSize", http.HTTPChannel, "_optimisticEagerReadSize"),
        ("_WebSocketWireProtocol._wsconn", _websocket_impl._WebSocketWireProtocol, "_wsconn"),
        ("CsrfViewMiddleware._check_token", CsrfViewMiddleware, "_check_token"),
        ("Apps.app_configs", django_apps, "app_configs"),
        ("Apps.all_models", django_apps, "all_models"),
        ("Apps.apps_ready", django_apps, "apps_ready"),
        ("Apps.models_ready", django_apps, "models_ready"),
        ("Apps.loading", django_apps, "loading"),
        ("InteractiveShell._showtraceback", InteractiveShell, "_showtraceback"),
    ]
    return samples


def missing() -> list[str]:
    """Return the private attributes above that this installation lacks, by name."""
    import inspect

    gone = []
    for name, owner, attribute in _samples():
        if hasattr(owner, attribute) or attribute in getattr(owner, "__annotations__", {}):
            continue
        if (inspect.isclass(owner) or inspect.ismodule(owner)) and \
                f"self.{attribute} = " in inspect.getsource(owner):
            continue
        gone.append(name)
    return gone
