"""The access token: who may use the site at all; reactor thread (pure checks).

Like Jupyter's token model. A server bound to anything but loopback (``127.0.0.1``,
``::1``, ``localhost``) needs a token, generated at start and printed with the URL
(``http://host:port/?token=…``); ``HANJI_TOKEN`` fixes it (and then it is required on
loopback too); ``hanji serve --no-token`` opts out, loudly. A request presents it
in one of three ways:

    X-Hanji-Token: <token>         a header of Hanji's own (the notebook client's
                                   credential; no Django app reads it)
    Authorization: token <token>   the older header, still accepted when it holds
                                   Hanji's token (an Authorization that does not is
                                   left to Django: DRF's "Token …", Basic...)
    ?token=<token>                 in the URL; the answer sets the cookie below
    ?ticket=<ticket>               a one-time stand-in for the token (see below)
    hanji-token-<port> cookie      HttpOnly, SameSite=Lax, set by a ?token= visit

Every route checks it (``/res``, ``/ws``, applet static files, Django views) but
Hanji's own ``/static/hanji/`` assets and the favicon. The cookie is named after the
port because browsers share cookies between the ports of one host. Its value is a
digest of the token, not the token, and every comparison is constant-time.

Tickets keep the token out of saved notebooks: the iframe and the banner link that a
notebook displays carry ``?ticket=`` instead, issued by :func:`issue_ticket`. Its
first use sets the cookie (and the page opened with it may pass the token on, as a
``?token=`` page does); after that the URL keeps working only with the cookie. A
ticket this server never issued refuses the request, cookie or not: it is from a
saved output of a server that has stopped, so the frame says so rather than
showing another kernel's server on the same port.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hanji import _compat, _config
from hanji.server.http.answers import Answer, forbidden

# How the request proved it knows the token (request.hanji_auth); the CSRF check
# exempts HEADER only: a browser never adds it by itself.
HEADER, COOKIE, QUERY, OPEN = "header", "cookie", "query", "open"

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def new_token() -> str:
    """Return a fresh random token (48 hex digits, as Jupyter's)."""
    return secrets.token_hex(24)


# Tickets by token: True while unused, False once spent. A few per hanji.show() call,
# kept for the process's life. Written on the cell thread and the reactor, under the lock.
_tickets: dict[str, dict[str, bool]] = {}
_tickets_lock = threading.Lock()


def issue_ticket(token: str) -> str:
    """Return a new one-time ticket that stands for ``token`` in a displayed URL; any thread."""
    ticket = secrets.token_urlsafe(18)
    with _tickets_lock:
        _tickets.setdefault(token, {})[ticket] = True
    return ticket


def _ticket_state(uri: bytes, token: str) -> bool | None:
    """Return True for an unused ticket of ``token`` in ``uri``, False for a spent one,
    None for one it never issued; no side effect."""
    ticket = _query_value(uri, b"ticket")
    if ticket is None:
        return False  # no ticket: nothing to refuse
    return _tickets.get(token, {}).get(ticket.decode("latin-1"))


def _spend_ticket(uri: bytes, token: str) -> None:
    ticket = _query_value(uri, b"ticket")
    if ticket is not None:
        with _tickets_lock:
            known = _tickets.get(token, {})
            if ticket.decode("latin-1") in known:
                known[ticket.decode("latin-1")] = False


def is_loopback(host: str) -> bool:
    """Return True if ``host`` (a bind address) is reachable only from this machine."""
    return host.strip("[]").lower() in LOOPBACK


def choose_token(host: str, no_token: bool = False) -> str | None:
    """Return the token a server bound to ``host`` requires, or None for none.

    ``HANJI_TOKEN`` wins, loopback or not;
    else a new token unless ``host`` is loopback. ``no_token`` turns it off (the
    caller warns). Any thread.
    """
    if no_token:
        return None
    fixed = _config.token()
    if fixed:
        return fixed
    return None if is_loopback(host) else new_token()


def allowed_host_names(bind_host: str, token: str | None, extra: tuple[str, ...] = ()) -> frozenset[str] | None:
    """Return the ``Host`` names a server answers to, or None for any.

    A server on loopback without a token answers only to loopback names (and the
    ``--allow-host`` ones): else a web page whose own name is made to resolve to
    127.0.0.1 (DNS rebinding) would be same-origin with the server, past the CSRF
    and websocket origin checks. With a token that page cannot get in anyway; with
    ``--no-token`` on a public address the user has opened the server to all.
    """
    if token is not None or not is_loopback(bind_host):
        return None
    return LOOPBACK | {h.strip().strip("[]").lower() for h in extra if h.strip()}


def host_refusal(request: Any, allowed: frozenset[str] | None) -> str | None:
    """Return why the request's ``Host`` is refused (see :func:`allowed_host_names`),
    or None; reactor thread, no side effects."""
    if allowed is None:
        return None
    headers = getattr(request, "requestHeaders", None)
    if headers is not None:  # request.getHeader(b"host") without its name look-up
        values = _compat.raw_headers(headers).get(b"Host")
        raw = values[-1] if values else None
    else:
        raw = request.getHeader(b"host")
    if raw is None:  # HTTP/1.0 without Host: no name a page could have chosen
        return None
    name = _host_name(raw)
    if name in allowed or name.endswith(".localhost"):
        return None
    shown = raw.decode("latin-1", "replace").strip()
    return (f"Host {shown[:100]!r} is not a name of this server. Without a token, a Hanji "
            "server on loopback answers only to localhost, 127.0.0.1 and [::1] (a guard "
            "against DNS rebinding). Use one of those, or start it with --allow-host NAME "
            "(or a token: HANJI_TOKEN).")


@functools.lru_cache(maxsize=64)
def _host_name(raw: bytes) -> str:
    """Return the lower-case host name of a ``Host`` header ('' if garbled); cached,
    since a client sends the same one on every request (any thread)."""
    try:
        return (urlsplit("//" + raw.decode("latin-1").strip()).hostname or "").lower()
    except ValueError:
        return ""


def cookie_name(port: int) -> bytes:
    """Return the name of the token cookie of the server on ``port``."""
    return f"hanji-token-{port}".encode("ascii")


def _cookie_value(token: str) -> bytes:
    return hmac.new(token.encode("utf-8"), b"hanji access cookie", hashlib.sha256).hexdigest().encode("ascii")


def _equal(given: bytes | str | None, expected: bytes) -> bool:
    if given is None:
        return False
    if isinstance(given, str):
        given = given.encode("utf-8", "replace")
    return hmac.compare_digest(given, expected)


def token_of_header(value: bytes | str | None) -> bytes | None:
    """Return the token of an ``Authorization: token <token>`` header value, or None."""
    if not value:
        return None
    if isinstance(value, str):
        value = value.encode("latin-1", "replace")
    scheme, _, rest = value.strip().partition(b" ")
    if scheme.lower() != b"token":
        return None
    return rest.strip() or None


# Hanji's own credential header (its WSGI name, for the Django side).
HEADER_NAME = b"x-hanji-token"
WSGI_HEADER = "HTTP_X_HANJI_TOKEN"


def request_has_token_header(request: Any, token: str) -> bool:
    """Return True if ``request`` carries ``token`` in ``X-Hanji-Token`` or in an
    ``Authorization: token …`` header (constant time); reactor thread."""
    own = request.getHeader(HEADER_NAME)
    if own is not None and _equal(own.strip(), token.encode("utf-8")):
        return True
    return header_has_token(request.getHeader(b"authorization"), token)


def header_has_token(value: bytes | str | None, token: str | None) -> bool:
    """Return True if the Authorization header ``value`` carries ``token`` (constant
    time); False when no token is set. Any thread."""
    if not token:
        return False
    return _equal(token_of_header(value), token.encode("utf-8"))


def _query_value(uri: bytes, name: bytes) -> bytes | None:
    # From the URL only, never from a form body.
    query = uri.partition(b"?")[2]
    if name + b"=" not in query:
        return None
    # Parsed as text: parse_qs on bytes raises on a percent-encoded non-ASCII value.
    values = parse_qs(query.decode("latin-1"), keep_blank_values=True,
                      encoding="latin-1").get(name.decode("ascii"))
    return values[0].encode("latin-1") if values else None


def _query_token(uri: bytes) -> bytes | None:
    return _query_value(uri, b"token")


def presented(request: Any, uri: bytes, token: str, port: int) -> str | None:
    """Return how a request carries the token (HEADER, QUERY in ``uri``, or
    COOKIE), or None; no side effect, reactor thread.

    The channel asks this as soon as a head has arrived, before reading a body, so
    that a client without the token cannot make the server buffer a body only to
    be refused afterwards.
    """
    if request_has_token_header(request, token):
        return HEADER
    ticket = _ticket_state(uri, token)
    if ticket is None:
        return None  # a ticket of another (stopped) server: see the module's docstring
    if ticket or _equal(_query_token(uri), token.encode("utf-8")):
        return QUERY
    if _equal(request.getCookie(cookie_name(port)), _cookie_value(token)):
        return COOKIE
    return None


def authenticate(request: Any, token: str | None, port: int) -> str | None:
    """Return how ``request`` presented the token (see :func:`presented`; OPEN when
    none is required), or None if it did not. A valid ``?token=`` sets the cookie
    on the answer. Record the result as ``request.hanji_auth``. Reactor thread.
    """
    how = OPEN if token is None else presented(request, request.uri, token, port)
    if how == QUERY and token is not None:
        _spend_ticket(request.uri, token)
        request.addCookie(cookie_name(port), _cookie_value(token), path=b"/", httpOnly=True,  # type: ignore[arg-type]
                          sameSite="lax", secure=True if request.isSecure() else None)
        # Keep the token in this URL out of the Referer sent to other sites.
        request.setHeader(b"referrer-policy", b"same-origin")
    request.hanji_auth = how
    return how


def is_open_path(segments: list[bytes]) -> bool:
    """Return True for the paths anyone may fetch: Hanji's own assets and the favicon."""
    first = segments[0] if segments else b""
    if first == b"favicon.ico" and len(segments) == 1:
        return True
    return first == b"static" and len(segments) > 1 and segments[1] == b"hanji"


def refusal_reason(path: str) -> str:
    """Return the reason of the 403 for a request for ``path`` without the token."""
    return (
        f"{path} needs the Hanji access token. In a notebook: run hanji.url(public=True) and "
        "open the link it returns (it sets a cookie for this browser), or hanji.show() the applet "
        "again. With `hanji serve`: open the URL with ?token=… it printed at start. Scripts send "
        "the header 'X-Hanji-Token: <token>' (the token printed at start or set with HANJI_TOKEN)."
    )


def spent_ticket_reason(path: str) -> str:
    """Return the reason of the 403 for ``path`` opened again, without the cookie, with a used ticket."""
    return (
        f"{path}: the one-time ticket of this link was used already (by the notebook's frame or "
        "another browser), and this browser has no access cookie. In the notebook, run "
        "hanji.url(public=True) and open the link it returns, or hanji.show() the applet again."
    )


def stale_ticket_reason(path: str) -> str:
    """Return the reason of the 403 for ``path`` opened with a ticket this server never issued."""
    return (
        f"{path}: this link or frame was displayed by a Hanji server that has stopped (a saved "
        "notebook output, or another kernel's server that had this port). In the notebook, "
        "run %load_ext hanji and hanji.show() again, or open the link of hanji.url(public=True)."
    )


def refusal(request: Any) -> Answer:
    """Return the 403 for a request without the token; reactor thread."""
    path = request.path.decode("utf-8", "replace").split("?")[0]
    ticket = _query_value(request.uri, b"ticket")
    if ticket is None:
        return forbidden(refusal_reason(path))
    issued = any(ticket.decode("latin-1") in known for known in list(_tickets.values()))
    return forbidden(spent_ticket_reason(path) if issued else stale_ticket_reason(path))
