"""Hanji: applets on one Twisted reactor beside Django, live inside a Jupyter kernel.

``%load_ext hanji`` starts the server in a kernel; the functions below (imported
lazily from :mod:`hanji.notebook.api`) drive it from notebook cells. Applet authors
import :mod:`hanji.core.applet` and :mod:`hanji.core.utils`.
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
    "get",
    "load_ipython_extension",
    "migrate",
    "post",
    "request",
    "routes",
    "show",
    "status",
    "unload_ipython_extension",
    "url",
    "ws",
]

_API = set(__all__) - set(_EXCEPTIONS) - {"load_ipython_extension", "unload_ipython_extension"}


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
    raise AttributeError(f"module 'hanji' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
