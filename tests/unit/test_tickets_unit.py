"""One-time tickets that stand for the access token in a notebook's displayed URLs."""

from __future__ import annotations

from typing import Any

from hanji.server.security import access

TOKEN = "unit-ticket-token"
PORT = 8899


class Request:
    """The little of a twisted.web request that the access check reads and writes."""

    def __init__(self, uri: bytes, cookie: bytes | None = None) -> None:
        self.uri, self.path = uri, uri.split(b"?")[0]
        self.cookie = cookie
        self.cookies_set: list[tuple[bytes, bytes]] = []
        self.headers: dict[bytes, bytes] = {}

    def getHeader(self, name: bytes) -> bytes | None:
        return None

    def getCookie(self, name: bytes) -> bytes | None:
        return self.cookie if name == access.cookie_name(PORT) else None

    def addCookie(self, name: bytes, value: bytes, **kwargs: Any) -> None:
        self.cookies_set.append((name, value))

    def setHeader(self, name: bytes, value: bytes) -> None:
        self.headers[name] = value

    def isSecure(self) -> bool:
        return False


def test_ticket_opens_once_and_sets_the_cookie() -> None:
    """A ticket's first use authenticates and sets the cookie; afterwards only the cookie opens its URL."""
    uri = b"/?applet=x&ticket=" + access.issue_ticket(TOKEN).encode()
    first = Request(uri)
    assert access.authenticate(first, TOKEN, PORT) == access.QUERY
    ((_, cookie),) = first.cookies_set
    again = Request(uri)
    assert access.authenticate(again, TOKEN, PORT) is None
    assert "used already" in access.refusal(again).message
    assert access.authenticate(Request(uri, cookie), TOKEN, PORT) == access.COOKIE


def test_foreign_ticket_is_refused_even_with_the_cookie() -> None:
    """A ticket this server never issued (a stopped server's saved output) is refused with a 403 that says so."""
    first = Request(b"/?ticket=" + access.issue_ticket(TOKEN).encode())
    access.authenticate(first, TOKEN, PORT)
    ((_, cookie),) = first.cookies_set
    stale = Request(b"/?applet=x&ticket=from-a-stopped-server", cookie)
    assert access.authenticate(stale, TOKEN, PORT) is None
    assert "has stopped" in access.refusal(stale).message
