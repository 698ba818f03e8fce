"""The WSGI environ of a Django request, built on the reactor thread in one pass.

The request's head and body are complete when twisted.web renders it (the channel
buffers the body first, within its limit), so the environ the Django worker needs
is built here, once, before the single hand-off to the pool: the worker never
reads the twisted.web request. Built the way granian builds its scope: the keys
that never change (``wsgi.*``, the server) are copied from one base dict, the
header names are turned into ``HTTP_*`` keys through a cache.

On the way, Hanji's own credential is taken out of what Django sees (an
``Authorization`` holding Hanji's token would reach DRF's TokenAuthentication as an
invalid token), noting in :data:`TOKEN_HEADER_KEY` that it was there, and the proxy
prefix a reverse proxy announces goes in front of ``SCRIPT_NAME``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from twisted.internet import tcp

from hanji.server.security import access

log = logging.getLogger("hanji.django")

# The WSGI environ key under which Django code finds the HanjiServer serving it.
ENVIRON_KEY = "hanji.server"

# Set in the environ when the request carried Hanji's token in a header (so Django's
# CSRF check may skip it: a browser never adds that header by itself).
TOKEN_HEADER_KEY = "hanji.token_header"

# Headers by which a reverse proxy tells the path it serves the site under:
# the de facto standard, and the two that jupyter-server-proxy sets.
PREFIX_HEADERS = ("HTTP_X_FORWARDED_PREFIX", "HTTP_X_FORWARDED_CONTEXT", "HTTP_X_PROXYCONTEXTPATH")
_PREFIX_KEYS = frozenset(PREFIX_HEADERS)
_SAFE_PREFIX = re.compile(r"(/[A-Za-z0-9._~%@:+\-]+)+")

_OWN_TOKEN_KEY = access.WSGI_HEADER  # HTTP_X_HANJI_TOKEN
_AUTHORIZATION_KEY = "HTTP_AUTHORIZATION"

# b"x-forwarded-for" -> "HTTP_X_FORWARDED_FOR"; bounded (a client chooses the names).
_header_keys: dict[bytes, str] = {}
_MAX_HEADER_KEYS = 1024
# The ``SERVER_NAME`` of a ``Host`` header (twisted.web's getRequestHostname, decoded);
# bounded like _header_keys. A client sends the same one on every request.
_server_names: dict[bytes, str] = {}


def proxy_prefix(environ: dict[str, Any]) -> str:
    """Return the proxy path prefix of a request ('' if none or malformed); any thread."""
    for key in PREFIX_HEADERS:
        value = environ.get(key, "").strip().rstrip("/")
        if value and _SAFE_PREFIX.fullmatch(value):
            return value
    return ""


def _header_key(name: bytes) -> str:
    """Return the environ key of header ``name`` (``HTTP_`` and the name upper-cased,
    dashes as underscores); any thread."""
    key = _header_keys.get(name)
    if key is None:
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        if len(_header_keys) < _MAX_HEADER_KEYS:
            _header_keys[name] = key
    return key


class _ErrorStream:
    """``wsgi.errors``: what the application writes there goes to Hanji's log;
    Django worker thread."""

    def write(self, data: str) -> None:
        if not isinstance(data, str):
            raise TypeError(f"wsgi.errors takes str, not {type(data).__name__}.")
        if data.strip():
            log.error("%s", data.rstrip())

    def writelines(self, lines: list[str]) -> None:
        self.write("".join(lines))

    def flush(self) -> None:
        """Nothing is buffered."""


# Bytes read from a file at a time when streaming a FileResponse (Django asks 4 kB).
FILE_BLOCK = 32 * 1024


class FileWrapper:
    """``wsgi.file_wrapper``: Django hands a ``FileResponse``'s file to it, which
    streams it in blocks of at least :data:`FILE_BLOCK` bytes (fewer hand-offs to
    the reactor than Django's 4 kB) and closes it (hence the response: Django's
    ``request_finished``) with the iterable; Django worker thread."""

    def __init__(self, filelike: Any, block_size: int = FILE_BLOCK) -> None:
        self.filelike = filelike
        self.block_size = max(block_size, FILE_BLOCK)

    def __iter__(self) -> Any:
        read, size = self.filelike.read, self.block_size
        while True:
            block = read(size)
            if not block:
                return
            yield block

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


def base_environ(server: Any) -> dict[str, Any]:
    """Return the keys every request's environ shares (copied per request); any thread."""
    return {
        "wsgi.version": (1, 0),
        "wsgi.errors": _ErrorStream(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,  # the body is all there (werkzeug reads to EOF)
        "SERVER_SOFTWARE": "Hanji",
        ENVIRON_KEY: server,
    }


def build_environ(request: Any, base: dict[str, Any], token: str | None) -> dict[str, Any]:
    """Return the WSGI environ of ``request`` (a twisted.web request whose body has
    arrived), without Hanji's credential and with the proxy prefix in
    ``SCRIPT_NAME``; reactor thread.

    ``SCRIPT_NAME`` and ``PATH_INFO`` come from the request's ``prepath`` and
    ``postpath`` as twisted.web's WSGIResource makes them.
    """
    environ = base.copy()
    prepath, postpath = request.prepath, request.postpath
    script = (b"/" + b"/".join(prepath)) if prepath else b""
    uri = request.uri
    mark = uri.find(b"?")
    client = request.getClientAddress()
    environ["REQUEST_METHOD"] = request.method.decode("latin-1")
    environ["SCRIPT_NAME"] = script.decode("latin-1")
    environ["PATH_INFO"] = (b"/" + b"/".join(postpath)).decode("latin-1") if postpath else ""
    environ["QUERY_STRING"] = uri[mark + 1:].decode("latin-1") if mark >= 0 else ""
    environ["REMOTE_ADDR"] = str(getattr(client, "host", ""))
    environ["REMOTE_PORT"] = str(getattr(client, "port", ""))
    host = request.getHeader(b"host")
    name = _server_names.get(host) if host is not None else None
    if name is None:
        name = request.getRequestHostname().decode("latin-1")
        if host is not None and len(_server_names) < _MAX_HEADER_KEYS:
            _server_names[host] = name
    environ["SERVER_NAME"] = name
    environ["SERVER_PORT"] = str(getattr(request.getHost(), "port", ""))
    environ["SERVER_PROTOCOL"] = request.clientproto.decode("latin-1")
    # A plain TCP transport is not TLS: skip isSecure()'s interface look-up.
    channel = request.channel
    plain = channel is not None and type(channel.transport) is tcp.Server
    environ["wsgi.url_scheme"] = "http" if plain or not request.isSecure() else "https"
    environ["wsgi.input"] = request.content
    environ["CONTENT_TYPE"] = ""
    environ["CONTENT_LENGTH"] = ""

    own_token: str | None = None
    prefixed = False
    for name, values in request.requestHeaders.getAllRawHeaders():
        key = _header_key(name)
        value = values[0].decode("latin-1") if len(values) == 1 else \
            ",".join(v.decode("latin-1") for v in values)
        if "\n" in value:
            value = value.replace("\n", " ")
        if key == _OWN_TOKEN_KEY:
            own_token = value  # never shown to Django
            continue
        environ[key] = value
        if key == "HTTP_CONTENT_TYPE":
            environ["CONTENT_TYPE"] = values[-1].decode("latin-1")
        elif key == "HTTP_CONTENT_LENGTH":
            environ["CONTENT_LENGTH"] = values[-1].decode("latin-1")
        elif key in _PREFIX_KEYS:
            prefixed = True

    if not environ["CONTENT_LENGTH"] and request.requestHeaders.hasHeader(b"transfer-encoding"):
        # A chunked body is whole in request.content by now; Django reads as many bytes
        # as CONTENT_LENGTH says (none when it is empty), so give it the real length.
        content = request.content
        size = content.seek(0, 2)
        content.seek(0)
        environ["CONTENT_LENGTH"] = str(size)

    found = False
    if token:
        if own_token is not None and access.header_has_token(f"token {own_token.strip()}", token):
            found = True
        authorization = environ.get(_AUTHORIZATION_KEY)
        if authorization is not None and access.header_has_token(authorization, token):
            del environ[_AUTHORIZATION_KEY]
            found = True
    environ[TOKEN_HEADER_KEY] = found
    if prefixed:
        prefix = proxy_prefix(environ)
        if prefix:
            environ["SCRIPT_NAME"] = prefix + environ["SCRIPT_NAME"]
    return environ
