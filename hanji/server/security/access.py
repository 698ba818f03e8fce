"""The access token: who may use the site at all; reactor thread (pure checks).

Like Jupyter's token model. A server bound to anything but loopback (``127.0.0.1``,
``::1``, ``localhost``) needs a token, generated at start and printed with the URL
(``http://host:port/?token=…``); ``HANJI_TOKEN`` fixes it (and then it is required on
loopback too); ``hanji serve --no-token`` opts out, loudly. A request presents it
in one of three ways:

    Authorization: token <token>   a header (the notebook client's credential)
    ?token=<token>                 in the URL; the answer sets the cookie below
    hanji-token-<port> cookie      HttpOnly, SameSite=Lax, set by a ?token= visit

Every route checks it (``/res``, ``/ws``, applet static files, Django views) but
Hanji's own ``/static/hanji/`` assets and the favicon. The cookie is named after the
port because browsers share cookies between the ports of one host. Its value is a
digest of the token, not the token, and every comparison is constant-time.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hanji import _config
from hanji.server.http.answers import Answer, forbidden

# How the request proved it knows the token (request.hanji_auth); the CSRF check
# exempts HEADER only: a browser never adds it by itself.
HEADER, COOKIE, QUERY, OPEN = "header", "cookie", "query", "open"

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def new_token() -> str:
    """Return a fresh random token (48 hex digits, as Jupyter's)."""
    return secrets.token_hex(24)


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


def header_has_token(value: bytes | str | None, token: str | None) -> bool:
    """Return True if the Authorization header ``value`` carries ``token`` (constant
    time); False when no token is set. Any thread."""
    if not token:
        return False
    return _equal(token_of_header(value), token.encode("utf-8"))


def _query_token(uri: bytes) -> bytes | None:
    # From the URL only, never from a form body.
    query = uri.partition(b"?")[2]
    if b"token=" not in query:
        return None
    # Parsed as text: parse_qs on bytes raises on a percent-encoded non-ASCII value.
    values = parse_qs(query.decode("latin-1"), keep_blank_values=True, encoding="latin-1").get("token")
    return values[0].encode("latin-1") if values else None


def presented(request: Any, uri: bytes, token: str, port: int) -> str | None:
    """Return how a request carries the token (HEADER, QUERY in ``uri``, or
    COOKIE), or None; no side effect, reactor thread.

    The channel asks this as soon as a head has arrived, before reading a body, so
    that a client without the token cannot make the server buffer a body only to
    be refused afterwards.
    """
    if header_has_token(request.getHeader(b"authorization"), token):
        return HEADER
    if _equal(_query_token(uri), token.encode("utf-8")):
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
    if how == QUERY:
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
        f"{path} needs the Hanji access token. Open the URL with ?token=… that `hanji serve` "
        "printed at start (or the link of hanji.show in a notebook; it sets a cookie), or send "
        "the header 'Authorization: token <token>'. The token is the one printed at start or "
        "set with HANJI_TOKEN."
    )


def refusal(request: Any) -> Answer:
    """Return the 403 for a request without the token; reactor thread."""
    return forbidden(refusal_reason(request.path.decode("utf-8", "replace").split("?")[0]))
