"""Hanji: applets on one Twisted reactor beside Django, live inside a Jupyter kernel.

``%load_ext hanji`` starts the server in a kernel; the functions below (imported
lazily from :mod:`hanji.notebook.api`) drive it from notebook cells. Applet authors
import :mod:`hanji.core.applet` and :mod:`hanji.core.utils`; ``publish`` and
``subscribe`` (from :mod:`hanji.server.bus`) carry messages to every process of a
set of servers.
"""

from __future__ import annotations

from typing import Any

from hanji._exceptions import (
    AppletActivationError,
    AppletNotFound,
    HanjiError,
    HanjiThreadError,
    HTTPStatusError,
    ServerNotRunning,
    WebSocketClosed,
    WebSocketHandshakeError,
)

__version__ = "0.1.0"

# The exceptions users catch (the tree is drawn in hanji._exceptions), then the
# notebook API, loaded lazily from hanji.notebook.api.
_EXCEPTIONS = [
    "AppletActivationError",
    "AppletNotFound",
    "HTTPStatusError",
    "HanjiError",
    "HanjiThreadError",
    "ServerNotRunning",
    "WebSocketClosed",
    "WebSocketHandshakeError",
]

__all__ = [
    *_EXCEPTIONS,  # capitalised: they sort first
    "activate",
    "aget",
    "apost",
    "applets",
    "arequest",
    "deactivate",
    "endpoint",
    "errors",
    "export",
    "get",
    "load_ipython_extension",
    "migrate",
    "post",
    "publish",
    "request",
    "routes",
    "show",
    "status",
    "subscribe",
    "unload_ipython_extension",
    "url",
    "ws",
]

# The broadcast bus's publish/subscribe, loaded lazily from hanji.server.bus.
_BUS = {"publish", "subscribe"}
# hanji.export, loaded lazily from hanji.exporting.kernel.
_EXPORT = {"export"}
_API = set(__all__) - set(_EXCEPTIONS) - _BUS - _EXPORT - {"load_ipython_extension", "unload_ipython_extension"}


def load_ipython_extension(ipython: Any) -> None:
    """Start Hanji in this kernel (``%load_ext hanji``); a second load is a no-op."""
    from hanji.notebook.extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Stop listening and deactivate the applets (``%unload_ext hanji``)."""
    from hanji.notebook.extension import unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    if name in _API:
        from hanji.notebook import api

        return getattr(api, name)
    if name in _BUS:
        from hanji.server import bus

        return getattr(bus, name)
    if name in _EXPORT:
        from hanji.exporting import kernel

        return kernel.export
    raise AttributeError(f"module 'hanji' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
