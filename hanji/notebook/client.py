"""Call the site from notebook cells: ``get``/``aget``, ``post``/``apost``,
``request``/``arequest``.

A call is prepared on the cell thread (:func:`_prepare`, pure), sent by Twisted's
``Agent`` on the reactor thread (:func:`_fetch`), and waited for either blocking
(:meth:`Session.call`, with a deadline) or awaited (:meth:`Session.acall`, under
IPython's autoawait): the sync and async twins share all of it. Connections are not
kept alive, so a stopped site is really stopped for the notebook too.
"""

from __future__ import annotations

import dataclasses
import html
import json as _json
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any, Union
from urllib.parse import quote, urlencode

from IPython.core.error import UsageError
from twisted.internet import defer

from hanji._exceptions import HTTPStatusError
from hanji._threads import assert_reactor_thread
from hanji.notebook import recorded
from hanji.notebook.session import running_session

SitePath = Union[str, tuple[str, str]]
DEFAULT_TIMEOUT = 30.0


class Headers(Mapping[str, str]):
    """Response headers: case-insensitive names, repeated values joined with ", "."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in pairs:
            key = name.lower()
            if key in self._items:
                value = self._items[key][1] + ", " + value
            self._items[key] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class Response:
    """A finished HTTP exchange with the site, as returned by ``hanji.get()``."""

    def __init__(self, method: str, url: str, path: str, status: int, reason: str,
                 headers: Headers, content: bytes, elapsed: float) -> None:
        self.method, self.url, self.path = method, url, path
        self.status, self.reason = status, reason
        self.headers, self.content, self.elapsed = headers, content, elapsed

    @property
    def status_code(self) -> int:
        """Alias of :attr:`status`, as in requests and httpx."""
        return self.status

    @property
    def ok(self) -> bool:
        """True for a status below 400."""
        return self.status < 400

    @property
    def content_type(self) -> str:
        """The media type without parameters (``""`` if none)."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def encoding(self) -> str:
        """The charset of the content type, UTF-8 by default."""
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.partition("=")
            if key.strip().lower() == "charset" and value.strip():
                return value.strip().strip('"')
        return "utf-8"

    @property
    def text(self) -> str:
        """The body decoded as text (undecodable bytes replaced)."""
        try:
            return self.content.decode(self.encoding, "replace")
        except LookupError:
            return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """Return the body parsed as JSON; raise ValueError naming the URL if it is not."""
        try:
            return _json.loads(self.content)
        except ValueError as exc:
            raise ValueError(
                f"{self.method} {self.path} ({self.status}, {self.content_type or 'no content type'}) "
                f"did not return JSON: {self.text[:80]!r}"
            ) from exc

    def raise_for_status(self) -> Response:
        """Raise HTTPStatusError for a 4xx or 5xx status; else return the response."""
        if not self.ok:
            raise HTTPStatusError(self)
        return self

    def __repr__(self) -> str:
        kind = self.content_type or "no content type"
        return f"<Response [{self.status} {self.reason}] {self.method} {self.path} ({kind}, {len(self.content)} bytes)>"

    def _browser_url(self) -> str:
        """Return the URL of :attr:`path` that a browser opens: on the public base, with
        ``?token=`` (a browser has no Authorization header); :attr:`url` if Hanji stopped."""
        from hanji.notebook.display import public_base, with_token
        from hanji.notebook.session import get_session

        session = get_session()
        if not session.running or session.server is None or not self.url.startswith(session.url):
            return self.url
        return with_token(public_base(session.url, session.server.port) + self.path, session.token)

    def _repr_html_(self) -> str:
        colour = "#2e7d32" if self.status < 400 else "#c62828"
        body = self.text
        if self.content_type == "application/json":
            try:
                body = _json.dumps(self.json(), indent=2, ensure_ascii=False)
            except ValueError:
                pass
        elif self.content and not self.content_type.startswith(("text/", "application/")):
            body = f"<{len(self.content)} bytes of {self.content_type or 'data'}>"
        if self.status >= 500 and "Traceback (most recent call last)" in body:
            # A failure of this kernel's applet is shown with its traceback under the
            # cell already (and kept in hanji.errors()): not a second time here.
            body = body.split("Traceback (most recent call last)", 1)[0].rstrip() + \
                "\n(the traceback: under this cell, and in hanji.errors())"
        if len(body) > 4000:
            body = body[:4000] + f"\n… ({len(body) - 4000} more characters)"
        return (
            '<div class="hanji-response" style="font-family:monospace">'
            f'<span style="color:#fff;background:{colour};padding:1px 6px;border-radius:3px">'
            f"{self.status} {html.escape(self.reason)}</span> {html.escape(self.method)} "
            f'<a href="{html.escape(self._browser_url())}" target="_blank">{html.escape(self.path)}</a> '
            f'<span style="color:#777">{html.escape(self.content_type or "no content type")}, '
            f"{len(self.content)} bytes, {self.elapsed * 1000:.0f} ms</span>"
            f'<pre style="margin:4px 0;max-height:20em;overflow:auto">{html.escape(body)}</pre></div>'
        )


# What a path and query may hold unescaped (RFC 3986 pchar, "/" and "?"), plus "%"
# so an already-encoded path is left as it is.
_URI_SAFE = "/?:@!$&'()*+,;=%"
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def quote_path(path: str) -> str:
    """Return ``path`` (with its query, if any) percent-encoded for the request line.

    Spaces, non-ASCII characters (as UTF-8) and ``#`` are escaped; ``/``, ``?``,
    ``&``, ``=``, the other sub-delims and existing ``%XX`` escapes are kept, so an
    already-encoded path is not encoded twice. A ``%`` that starts no escape is
    sent as ``%25``.
    """
    return quote(_LONE_PERCENT.sub("%25", path), safe=_URI_SAFE)


def site_path(path: Any) -> str:
    """Return the percent-encoded site path for ``path``: ``"/any/path"``, or a
    ``(applet_id, resource_path)`` tuple as ``/res/<applet_id>/<resource_path>``."""
    if isinstance(path, tuple):
        if len(path) != 2 or not all(isinstance(p, str) for p in path):
            raise UsageError(f"A resource is named by a tuple (applet_id, path), not {path!r}.")
        applet_id, sub = path
        return f"/res/{quote(applet_id, safe='')}/{quote_path(sub.lstrip('/'))}"
    if isinstance(path, str) and path.startswith("/"):
        return quote_path(path)
    raise UsageError(
        f"Path {path!r} must start with '/' (a site path such as '/res/counter/hits') "
        "or be a tuple such as ('counter', 'hits')."
    )


@dataclasses.dataclass(frozen=True)
class _Prepared:
    method: str
    url: str
    path: str
    headers: dict[str, list[str]]
    body: bytes | None


def _prepare(base: str, method: str, path: Any, params: Any, data: Any, json: Any,
             headers: Mapping[str, str] | None, token: str | None = None) -> _Prepared:
    """Build the request (pure, any thread); raise UsageError on a bad argument.

    With ``token``, send it as ``X-Hanji-Token`` (Hanji's own header, which no
    Django app reads, so an ``Authorization`` of your own in ``headers`` reaches the
    view: DRF's ``Token …``, Basic): the site's access token, which also exempts
    the call from the CSRF check."""
    if not isinstance(method, str) or not method.isalpha():
        raise UsageError(f"HTTP method {method!r} must be a word such as 'GET' or 'POST'.")
    target = site_path(path)
    if params:
        query = urlencode(params, doseq=True)
        target += ("&" if "?" in target else "?") + query
    sent: dict[str, list[str]] = {}
    body: bytes | None = None
    if data is not None and json is not None:
        raise UsageError("Pass data= or json=, not both.")
    if json is not None:
        body = _json.dumps(json).encode("utf-8")
        sent["Content-Type"] = ["application/json"]
    elif isinstance(data, (bytes, bytearray)):
        body = bytes(data)
    elif isinstance(data, str):
        body = data.encode("utf-8")
        sent["Content-Type"] = ["text/plain; charset=utf-8"]
    elif data is not None:
        # A mapping or pairs: a form, so request.args sees the fields.
        body = urlencode(data, doseq=True).encode("ascii")
        sent["Content-Type"] = ["application/x-www-form-urlencoded"]
    if token:
        sent["X-Hanji-Token"] = [token]
    for name, value in (headers or {}).items():
        sent[name] = [value]
    return _Prepared(method.upper(), base + target, target, sent, body)


def _body_producer(body: bytes) -> Any:
    """Return an IBodyProducer of ``body`` (Twisted's FileBodyProducer); reactor thread."""
    from io import BytesIO

    from twisted.web.client import FileBodyProducer

    return FileBodyProducer(BytesIO(body))


def _fetch(reactor: Any, prepared: _Prepared) -> defer.Deferred[Response]:
    """Send the request with Twisted's Agent and read the whole answer; reactor thread."""
    assert_reactor_thread("hanji.notebook.client._fetch()")
    from twisted.web.client import Agent, HTTPConnectionPool, PartialDownloadError, readBody
    from twisted.web.http_headers import Headers as TwistedHeaders

    agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
    began = time.monotonic()
    d = agent.request(
        prepared.method.encode("ascii"),
        prepared.url.encode("utf-8"),
        TwistedHeaders({k: v for k, v in prepared.headers.items()}),
        _body_producer(prepared.body) if prepared.body is not None else None,
    )

    def got_response(response: Any) -> defer.Deferred[Response]:
        def partial(failure: Any) -> bytes:
            failure.trap(PartialDownloadError)
            return bytes(failure.value.response or b"")

        def done(content: bytes) -> Response:
            pairs = [(k.decode("latin-1"), v.decode("latin-1"))
                     for k, values in response.headers.getAllRawHeaders() for v in values]
            return Response(prepared.method, prepared.url, prepared.path, response.code,
                            response.phrase.decode("latin-1"), Headers(pairs), content,
                            time.monotonic() - began)

        return readBody(response).addErrback(partial).addCallback(done)

    return d.addCallback(got_response)


def _what(prepared: _Prepared) -> str:
    return f"{prepared.method} {prepared.path}"


def request(method: str, path: SitePath, *, params: Any = None, data: Any = None, json: Any = None,
            headers: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT) -> Response:
    """Send ``method`` to ``path`` on the site and return the Response, blocking the
    cell (not the reactor) for at most ``timeout`` seconds.

    ``path`` is a site path (``"/res/counter/hits"``, ``"/applets/notes/"``) or a
    resource tuple ``("counter", "hits")``, percent-encoded unless it already is;
    ``params`` is added to the query string;
    ``data`` is a form (a dict), text or bytes; ``json`` is sent as JSON. Must not run
    on the reactor thread (a render method cannot call its own site this way).
    """
    session = running_session()
    prepared = _prepare(session.url, method, path, params, data, json, headers, session.token)
    response: Response = session.call(_fetch, session.reactor, prepared, timeout=timeout, what=_what(prepared))
    recorded.note(session, prepared, response)  # replayed by hanji.export(verify=True)
    return response


async def arequest(method: str, path: SitePath, *, params: Any = None, data: Any = None,
                   json: Any = None, headers: Mapping[str, str] | None = None,
                   timeout: float = DEFAULT_TIMEOUT) -> Response:
    """Awaitable twin of :func:`request` (``await hanji.arequest(...)`` in a cell)."""
    session = running_session()
    prepared = _prepare(session.url, method, path, params, data, json, headers, session.token)
    response: Response = await session.acall(_fetch, session.reactor, prepared, timeout=timeout, what=_what(prepared))
    recorded.note(session, prepared, response)  # replayed by hanji.export(verify=True)
    return response


def get(path: SitePath, *, params: Any = None, headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT) -> Response:
    """GET ``path`` and return the Response (see :func:`request`)."""
    return request("GET", path, params=params, headers=headers, timeout=timeout)


async def aget(path: SitePath, *, params: Any = None, headers: Mapping[str, str] | None = None,
               timeout: float = DEFAULT_TIMEOUT) -> Response:
    """Awaitable twin of :func:`get`."""
    return await arequest("GET", path, params=params, headers=headers, timeout=timeout)


def post(path: SitePath, *, data: Any = None, json: Any = None, params: Any = None,
         headers: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT) -> Response:
    """POST ``data`` (a form, text or bytes) or ``json`` to ``path`` and return the
    Response (see :func:`request`)."""
    return request("POST", path, params=params, data=data, json=json, headers=headers, timeout=timeout)


async def apost(path: SitePath, *, data: Any = None, json: Any = None, params: Any = None,
                headers: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT) -> Response:
    """Awaitable twin of :func:`post`."""
    return await arequest("POST", path, params=params, data=data, json=json, headers=headers, timeout=timeout)
