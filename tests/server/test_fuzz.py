"""Fuzzing a real ``hanji serve`` with hypothesis: bad input never gets a 5xx nor
kills the reactor.

Every request goes over a raw socket (tests/support/http.py), so it can carry what
urllib refuses: invalid UTF-8 and control characters in paths, ``..`` segments, odd
methods and versions, duplicate and garbled headers, wrong Content-Length, broken
chunked and multipart bodies, bad websocket handshakes. Each answer must be a
well-formed HTTP response below 500 (the reference applet's deliberate "I'm sorry
Dave" 500 aside); a hang, a garbled answer or a connection closed without one fails.
Every few examples, and at the end of each test, the server process must be alive and
a ``/res`` resource, a Django view and a static file must still answer correctly.

The run is bounded (a few hundred examples per test, a few seconds each here) and
derandomized, so CI sees the same examples every time; a failure message holds the
exact request bytes, the answer and the server log lines it caused. ``HANJI_FUZZ_EXAMPLES`` scales the budget for a longer
local run (e.g. ``HANJI_FUZZ_EXAMPLES=5`` for five times as many) and
``HANJI_FUZZ_RANDOM=1`` draws new examples on every run instead of the fixed ones;
``HANJI_FUZZ_SHRINK=1`` lets hypothesis shrink a failing example (off by default, so
that a hang fails in one hang guard rather than one per shrinking attempt).
"""

from __future__ import annotations

import itertools
import json
import os
import re
from typing import Any, Iterator
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from support.http import Answer, exchange
from support.paths import APPLETS, ROOT
from support.server import ServerProcess

SCALE = float(os.environ.get("HANJI_FUZZ_EXAMPLES", "1"))
RANDOM = os.environ.get("HANJI_FUZZ_RANDOM", "") not in ("", "0")
# No shrinking by default: a hang costs the hang guard per attempt, and shrinking one
# would run for minutes. The failure message holds the exact request bytes anyway.
SHRINK = os.environ.get("HANJI_FUZZ_SHRINK", "") not in ("", "0")


def fuzz_settings(examples: int) -> settings:
    """Bounded, deterministic hypothesis settings for a live server."""
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        print_blob=True,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, *([Phase.shrink] if SHRINK else [])],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# -- the server under test ---------------------------------------------------------------


class Fuzzed:
    """The server under fuzz, with the CSRF token of its Django forms."""

    def __init__(self, proc: ServerProcess) -> None:
        self.proc = proc
        self.url = proc.url
        self.host = self.url.split("//", 1)[1].encode()
        self.count = itertools.count()
        answer = proc.get("/applets/notes/")
        self.csrf_cookie = re.search(r"csrftoken=([^;]+)", answer.headers["set-cookie"]).group(1)
        self.csrf_form = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', answer.text).group(1)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """A ``hanji serve`` of the example applets, as a user runs it (no --debug)."""
    proc = ServerProcess(tmp_path_factory.mktemp("fuzz-server"), [APPLETS])
    try:
        yield Fuzzed(proc)
    finally:
        assert_healthy(proc)
        proc.stop()


STATIC_FILES = {
    p.relative_to(APPLETS).parts[0]: {}
    for p in APPLETS.glob("*/static")
}
for _path in APPLETS.glob("*/static/**/*"):
    if _path.is_file():
        STATIC_FILES[_path.relative_to(APPLETS).parts[0]][_path.name] = _path.read_bytes()
HANJI_STATIC = {p.name: p.read_bytes() for p in (ROOT / "hanji/server/http/assets").iterdir()}


def assert_healthy(proc: ServerProcess) -> None:
    """The process is alive and /res, Django and static files answer correctly."""
    assert proc.proc.poll() is None, f"the server died:\n{proc.log[-4000:]}"
    info = proc.get("/res/echo/info")
    assert info.status == 200 and "configured_port" in json.loads(info.text), info.text
    page = proc.get("/applets/notes/")
    assert page.status == 200 and "<form" in page.text, page.text[:500]
    icon = proc.get("/static/hello_world/help.html")
    assert icon.status == 200 and icon.body == STATIC_FILES["hello_world"]["help.html"]


def is_deliberate(answer: Answer) -> bool:
    """The reference applet's own 500 (render_POST when ``is_good`` is not "yes")."""
    return answer.status == 500 and answer.body.startswith(b"I'm sorry Dave")


def send(fuzzed: Fuzzed, data: bytes, *, head: bool = False) -> Answer:
    """Send one raw request; fail on no answer, a garbled one, a 5xx or a dead server."""
    log_mark = len(fuzzed.proc.log)
    where = f"request: {data[:2000]!r}"
    answer: Answer | None = None
    failure = ""
    try:
        answer = exchange(fuzzed.url, data, head_request=head)
    except AssertionError as exc:  # no answer, a garbled one, a hang
        failure = f"{exc}\n{where}\nserver log:\n{fuzzed.proc.log[log_mark:][-3000:]}"
    assert fuzzed.proc.proc.poll() is None, f"the server died\n{where}\n{fuzzed.proc.log[-4000:]}"
    assert answer is not None, failure
    if answer.status >= 500 and not is_deliberate(answer):
        raise AssertionError(
            f"{answer.status} for bad input\n{where}\nanswer: {answer.raw[:1500]!r}\n"
            f"server log:\n{fuzzed.proc.log[log_mark:][-3000:]}"
        )
    if next(fuzzed.count) % 25 == 24:
        assert_healthy(fuzzed.proc)
    return answer


def request(fuzzed: Fuzzed, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]] = (),
            body: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    """Return the bytes of a request; Host and Connection: close come first."""
    lines = [method + b" " + target + b" " + version, b"Host: " + fuzzed.host, b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


# -- strategies --------------------------------------------------------------------------

KNOWN_NAMES = [
    "info", "list", "echo", "room", "path_to_my_resource", "icon.png", "help.html", "hanji.js",
    "notes", "chat", "hello_world", "static", "res", "ws", "applets", "1", "0", "-1",
    "99999999999999999999999", "hanji",
]
ODD_SEGMENTS = [
    "..", ".", "", "%2e%2e", "%2E%2e", "%2e", "..%2f", "%2f", "%2F", "%5c", "..\\", "%00", "%",
    "%z", "%zz", "%2", "%ff", "%c3%28", "%e2%82", "%ed%a0%80", "%f4%90%80%80", "~", ";", ";a=b",
    "%3f", "%23", "*", "x" * 300, "y" * 5000, "%25", "%252e%252e", "%0d%0a", "%09", "%20",
    "%C0%AE%C0%AE", "\\", "+", "&", "=", "@", ":", "%u002e", "\x00", "\x01", "\x7f", "\t", " ",
]
PREFIXES = [
    b"", b"/res", b"/ws", b"/static", b"/applets", b"/res/echo", b"/res/notes", b"/res/hello_world",
    b"/res/chat", b"/res/nope", b"/static/hello_world", b"/static/hanji", b"/static/notes",
    b"/static/nope", b"/ws/echo", b"/ws/chat", b"/ws/nope", b"/applets/notes", b"/applets/chat",
    b"/favicon.ico", b"/", b"//",
]
METHODS = [
    b"GET", b"GET", b"GET", b"HEAD", b"POST", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH",
    b"TRACE", b"CONNECT", b"get", b"FOO", b"M-SEARCH", b"PROPFIND", b"G\x00T", b"GE T", b"A" * 200, b"",
]
VERSIONS = [b"HTTP/1.1"] * 8 + [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2", b"HTTP/x", b"http/1.1", b"FOO", b""]

pct_bytes = st.binary(min_size=1, max_size=6).map(lambda b: "".join(f"%{c:02x}" for c in b).encode())
pct_text = st.text(max_size=12).map(lambda t: quote(t, safe="").encode())
raw_text = st.text(max_size=8).map(lambda t: t.encode("utf-8"))
segment = st.one_of(
    st.sampled_from(KNOWN_NAMES).map(str.encode),
    st.sampled_from(ODD_SEGMENTS).map(lambda s: s.encode("latin-1")),
    pct_bytes, pct_text, raw_text, st.binary(max_size=6),
)
query_key = st.one_of(
    st.sampled_from([b"limit", b"applet", b"is_good", b"token", b"a", b"", b"%zz", b"%ff", b"a[]", b"a.b"]),
    pct_bytes, pct_text,
)
query_value = st.one_of(
    st.sampled_from([b"yes", b"no", b"20", b"-1", b"abc", b"1e9", b"99999999999999999999", b"", b"%", b"%ff",
                     b"notes", b"hello_world", b"<script>", b"x" * 3000]),
    pct_bytes, pct_text, raw_text,
)
query_pair = st.tuples(query_key, st.sampled_from([b"=", b"", b"=="]), query_value).map(b"".join)
query = st.lists(query_pair, max_size=6).flatmap(
    lambda pairs: st.sampled_from([b"&", b";", b"&&"]).map(lambda sep: sep.join(pairs))
)


@st.composite
def targets(draw: Any) -> bytes:
    """A request target: mostly a path under Hanji's prefixes, with odd segments."""
    path = draw(st.sampled_from(PREFIXES)) + b"".join(b"/" + s for s in draw(st.lists(segment, max_size=5)))
    if not path.startswith(b"/"):
        path = b"/" + path
    if draw(st.booleans()):
        path += b"?" + draw(query)
    # Twisted drops a request line over 16 KiB without an answer; a 414 for those is
    # the HTTP limits' work (and their tests'). Long segments stay, up to 8,000 bytes.
    path = path[:8000]
    form = draw(st.sampled_from(["origin"] * 6 + ["absolute", "asterisk", "relative"]))
    if form == "absolute":
        return b"http://127.0.0.1" + path
    if form == "asterisk":
        return b"*"
    if form == "relative":
        return path.lstrip(b"/")
    return path


header_names = st.one_of(
    st.sampled_from([
        b"Host", b"Content-Type", b"Content-Length", b"Transfer-Encoding", b"Cookie", b"Origin", b"Referer",
        b"Accept", b"Accept-Encoding", b"Accept-Language", b"X-Forwarded-Prefix", b"X-Forwarded-Host",
        b"X-Forwarded-Proto", b"X-Forwarded-For", b"Upgrade", b"Connection", b"Sec-WebSocket-Key",
        b"Sec-WebSocket-Version", b"Sec-WebSocket-Extensions", b"Sec-WebSocket-Protocol", b"Authorization",
        b"Range", b"If-Modified-Since", b"If-None-Match", b"If-Range", b"Expect", b"X-CSRFToken",
        b"X-Requested-With", b"User-Agent", b"Content-Encoding", b"Trailer", b"TE",
    ]),
    st.binary(min_size=1, max_size=20).filter(lambda b: b":" not in b and b"\r" not in b and b"\n" not in b),
)
header_values = st.one_of(
    st.sampled_from([
        b"", b"0", b"-1", b"abc", b"1, 2", b"99999999999999999999", b"chunked", b"gzip, chunked", b"identity",
        b"websocket", b"Upgrade", b"keep-alive", b"close", b"100-continue", b"bytes=0-10", b"bytes=-5",
        b"bytes=10-5", b"bytes=0-0,0-0,0-0", b"bytes=x", b"Thu, 01 Jan 1970 00:00:00 GMT", b"yesterday",
        b"http://[", b"http://x:99999999", b"null", b"http://127.0.0.1", b"text/html; charset=foo",
        b"multipart/form-data", b"multipart/form-data; boundary=", b"application/x-www-form-urlencoded",
        b"application/json", b"token nope", b"Basic !!!", b"csrftoken=x; sessionid=%ff", b"a=\x00b",
        b"x" * 9000, b"\xff\xfe", b"\x00", b"\x01\x02", b"\x7f", b"\t\t", b"/", b"/../..", b"[::1]:1",
        b"127.0.0.1:abc", b"-", b"*",
    ]),
    st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b),
    st.text(max_size=30).map(lambda t: t.encode("utf-8")).filter(lambda b: b"\r" not in b and b"\n" not in b),
)
headers = st.lists(st.tuples(header_names, header_values), max_size=8)

STEADY_PATHS = [
    b"/res/echo/info", b"/res/notes/list", b"/res/notes/list?limit=3", b"/res/hello_world/path_to_my_resource",
    b"/applets/notes/", b"/applets/notes/1/", b"/applets/chat/", b"/", b"/?applet=notes",
    b"/static/hello_world/help.html", b"/static/hello_world/icon.png", b"/static/hanji/hanji.js",
    b"/ws/echo/echo", b"/ws/chat/room", b"/favicon.ico",
]


# -- the tests ---------------------------------------------------------------------------


@fuzz_settings(600)
@given(method=st.sampled_from(METHODS), target=targets(), version=st.sampled_from(VERSIONS))
@example(method=b"GET", target=b"/static/hello_world/%00", version=b"HTTP/1.1")
@example(method=b"GET", target=b"/static/hello_world/%ff", version=b"HTTP/1.1")
@example(method=b"PUT", target=b"/static/hello_world", version=b"HTTP/1.1")
def test_fuzz_request_lines(fuzzed: Fuzzed, method: bytes, target: bytes, version: bytes) -> None:
    """Odd methods, paths, segments, query strings and versions never get a 5xx."""
    body_headers = [(b"Content-Length", b"0")] if method in (b"POST", b"PUT", b"PATCH") else []
    send(fuzzed, request(fuzzed, method, target, body_headers, version=version), head=method == b"HEAD")


@fuzz_settings(500)
@given(method=st.sampled_from([b"GET", b"GET", b"HEAD", b"POST", b"OPTIONS"]),
       path=st.sampled_from(STEADY_PATHS), extra=headers)
@example(method=b"GET", path=b"/static/hello_world/help.html", extra=[(b"Range", b"bytes=10-5")])
@example(method=b"GET", path=b"/favicon.ico", extra=[(b"Range", b"\x80")])
@example(method=b"HEAD", path=b"/res/hello_world/path_to_my_resource", extra=[])
def test_fuzz_headers(fuzzed: Fuzzed, method: bytes, path: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    """Duplicate, garbled and conflicting headers never get a 5xx.

    A request whose own headers announce a body it does not send (a Content-Length
    or chunked encoding) is left out: waiting for that body is correct.
    """
    names = {name.lower() for name, _ in extra}
    if method == b"POST" and b"content-length" not in names and b"transfer-encoding" not in names:
        extra = [*extra, (b"Content-Length", b"0")]
    body = b""
    for name, value in extra:
        if name.lower() == b"content-length" and value.strip().isdigit():
            if int(value) >= 10_000:
                return  # announces a body too long to send here: waiting for it is correct
            body = b"x" * max(len(body), int(value))
        if name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
            body = b"0\r\n\r\n"
    if body and any(n.lower() == b"content-length" for n, _ in extra) and body.startswith(b"0\r\n"):
        return  # both framings at once: a request smuggling attempt, answered or not
    send(fuzzed, request(fuzzed, method, path, extra, body), head=method == b"HEAD")


@fuzz_settings(300)
@given(path=st.sampled_from([b"/res/notes/list", b"/res/echo/info", b"/", b"/applets/notes/",
                             b"/res/hello_world/path_to_my_resource", b"/static/hello_world/help.html"]),
       qs=query, method=st.sampled_from([b"GET", b"POST"]))
@example(path=b"/res/notes/list", qs=b"limit=99999999999999999999", method=b"GET")
def test_fuzz_query_strings(fuzzed: Fuzzed, path: bytes, qs: bytes, method: bytes) -> None:
    """Repeated, empty and invalid query keys and values never get a 5xx."""
    extra = [(b"Origin", fuzzed.url.encode()), (b"Content-Length", b"0")] if method == b"POST" else []
    send(fuzzed, request(fuzzed, method, path + b"?" + qs, extra))


def multipart(fields: list[tuple[bytes, bytes]], boundary: bytes, broken: str) -> bytes:
    """A multipart/form-data body of ``fields``, broken as ``broken`` says."""
    parts = [
        b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + name + b"\"\r\n\r\n" + value + b"\r\n"
        for name, value in fields
    ]
    end = b"--" + boundary + b"--\r\n"
    if broken == "no end":
        end = b""
    elif broken == "wrong boundary":
        parts = [p.replace(boundary, b"other") for p in parts]
    elif broken == "no disposition":
        parts = [p.replace(b"Content-Disposition", b"X-Nothing") for p in parts]
    return b"".join(parts) + end


@st.composite
def bodies(draw: Any) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """A body and the headers that frame and type it (some of them lying)."""
    kind = draw(st.sampled_from(["form", "form", "multipart", "json", "raw", "none"]))
    fields = draw(st.lists(st.tuples(
        st.sampled_from([b"title", b"body", b"is_good", b"name", b"csrfmiddlewaretoken", b"x"]) | query_key,
        query_value | st.binary(max_size=30),
    ), max_size=5))
    hdrs: list[tuple[bytes, bytes]] = []
    if kind == "form":
        body = b"&".join(k + b"=" + v for k, v in fields) if draw(st.booleans()) else urlencode(fields).encode()
        hdrs.append((b"Content-Type", b"application/x-www-form-urlencoded"))
    elif kind == "multipart":
        boundary = draw(st.sampled_from([b"xyz", b"----hanji", b"a" * 80, b"\"quoted\"", b"b"]))
        broken = draw(st.sampled_from(["", "", "no end", "wrong boundary", "no disposition"]))
        body = multipart(fields, boundary.strip(b'"'), broken)
        ctype = draw(st.sampled_from([b"multipart/form-data; boundary=" + boundary, b"multipart/form-data",
                                      b"multipart/form-data; boundary=", b"multipart/mixed; boundary=" + boundary]))
        hdrs.append((b"Content-Type", ctype))
    elif kind == "json":
        value = draw(st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
            lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
            max_leaves=10,
        ))
        body = json.dumps(value).encode()
        if draw(st.booleans()):
            body = body[: draw(st.integers(0, len(body)))]  # cut short
        hdrs.append((b"Content-Type", b"application/json"))
    elif kind == "raw":
        body = draw(st.binary(max_size=300))
        hdrs.append((b"Content-Type", draw(header_values)))
    else:
        body = b""
    framing = draw(st.sampled_from(["length", "length", "length", "chunked", "chunked-bad", "short"]))
    if framing == "length":
        hdrs.append((b"Content-Length", str(len(body)).encode()))
    elif framing == "chunked":
        hdrs.append((b"Transfer-Encoding", b"chunked"))
        body = (b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    elif framing == "chunked-bad":
        hdrs.append((b"Transfer-Encoding", b"chunked"))
        body = b"zz\r\n" + body + b"\r\n0\r\n\r\n"
    else:  # a Content-Length shorter than the body: the rest is a garbage next request
        hdrs.append((b"Content-Length", str(len(body) // 2).encode()))
    return hdrs, body


@fuzz_settings(500)
@given(path=st.sampled_from([
    b"/res/hello_world/path_to_my_resource", b"/res/hello_world/path_to_my_resource/deeper",
    b"/res/notes/list", b"/res/echo/info", b"/applets/notes/", b"/applets/notes/1/", b"/",
    b"/res/nope/x", b"/static/hello_world/help.html",
]), method=st.sampled_from([b"POST", b"POST", b"PUT", b"PATCH", b"DELETE"]), framed=bodies(),
    csrf=st.sampled_from(["both", "both", "cookie only", "none"]))
@example(path=b"/res/hello_world/path_to_my_resource", method=b"POST", csrf="both",
         framed=([(b"Content-Type", b"\x0b\x01"), (b"Content-Length", b"1")], b"\x00"))
def test_fuzz_bodies(fuzzed: Fuzzed, path: bytes, method: bytes, framed: Any, csrf: str) -> None:
    """Garbage, truncated, mis-typed and mis-framed bodies to /res and Django forms
    never get a 5xx (POSTs carry the server's Origin and, mostly, Django's CSRF token)."""
    hdrs, body = framed
    hdrs = [(b"Origin", fuzzed.url.encode()), *hdrs]
    if csrf != "none":
        hdrs.append((b"Cookie", b"csrftoken=" + fuzzed.csrf_cookie.encode()))
    if csrf == "both":
        hdrs.append((b"X-CSRFToken", fuzzed.csrf_form.encode()))
    send(fuzzed, request(fuzzed, method, path, hdrs, body))


WS_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


@fuzz_settings(300)
@given(
    path=st.sampled_from([b"/ws/echo/echo", b"/ws/chat/room", b"/ws/echo/nope", b"/ws/echo/echo/x", b"/ws/echo",
                          b"/ws/nope/echo", b"/ws/echo/echo?x=%ff"]),
    method=st.sampled_from([b"GET", b"GET", b"GET", b"HEAD", b"POST", b"OPTIONS", b"PUT"]),
    upgrade=st.sampled_from([None, b"websocket", b"WebSocket", b"h2c", b"", b"websocket, foo", b"\xff"]),
    connection=st.sampled_from([None, b"Upgrade", b"upgrade, keep-alive", b"keep-alive", b"", b"Upgrade, close"]),
    version=st.sampled_from([None, b"13", b"8", b"", b"abc", b"13, 8", b"99999999999999999999"]),
    key=st.sampled_from([None, WS_KEY, b"", b"short", b"!!!!", b"\x00" * 24, WS_KEY + b"=="]),
    origin=st.sampled_from([None, b"SELF", b"http://[", b"http://x:99999999", b"null", b"http://evil.example",
                            b"\xff\xfe", b"", b"http://127.0.0.1:1", b"file://", b"http://[::1"]),
    extra=st.lists(st.tuples(header_names, header_values).filter(
        lambda h: h[0].lower() not in (b"content-length", b"transfer-encoding")), max_size=3),
)
@example(path=b"/ws/echo/echo", method=b"GET", upgrade=b"websocket", connection=b"Upgrade", version=b"13",
         key=WS_KEY, origin=b"http://[", extra=[])
@example(path=b"/ws/echo/echo", method=b"GET", upgrade=b"websocket", connection=None, version=None,
         key=None, origin=None, extra=[(b"Host", b"")])
@example(path=b"/ws/echo/echo", method=b"GET", upgrade=b"websocket", connection=None, version=None,
         key=None, origin=None, extra=[(b"Sec-WebSocket-Extensions", b"\x80")])
def test_fuzz_websocket_handshakes(fuzzed: Fuzzed, path: bytes, method: bytes, upgrade: Any, connection: Any,
                                   version: Any, key: Any, origin: Any, extra: Any) -> None:
    """Plain GETs, other methods and broken upgrade headers on /ws/ get a 4xx (or a
    clean 101 for a valid handshake), never a 5xx."""
    hdrs = [(name, value) for name, value in (
        (b"Upgrade", upgrade), (b"Connection", connection), (b"Sec-WebSocket-Version", version),
        (b"Sec-WebSocket-Key", key), (b"Origin", fuzzed.url.encode() if origin == b"SELF" else origin),
    ) if value is not None] + extra
    answer = send(fuzzed, request(fuzzed, method, path, hdrs), head=method == b"HEAD")
    if answer.status == 101:
        assert method == b"GET" and answer.headers.get("sec-websocket-accept"), answer.raw


TRAVERSAL = [
    "..", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "..%2f", "..%2F", "%2e%2e%2f", "..%5c", "..\\", "%252e%252e",
    "%c0%ae%c0%ae", "....", ".../", "%2f", "/", "", ".", "%00", "..%00", "%2e%2e%00",
]
OUTSIDE = [
    "__init__.py", "webUI.py", "models.py", "etc/passwd", "etc%2fpasswd", "pyproject.toml", "hello_world/webUI.py",
    "notes/models.py", "static/help.html", "help.html", "icon.png", "hanji.js", "proc/self/environ",
]


@fuzz_settings(300)
@given(
    applet=st.sampled_from(["hello_world", "notes", "chat", "echo", "hanji"]),
    ups=st.lists(st.sampled_from(TRAVERSAL), min_size=1, max_size=8),
    tail=st.sampled_from(OUTSIDE),
    lead=st.sampled_from(["", "/", "//", "%2f", "icon.png/"]),
)
@example(applet="hello_world", ups=["%00"], tail="help.html", lead="")
def test_fuzz_static_traversal(fuzzed: Fuzzed, applet: str, ups: list[str], tail: str, lead: str) -> None:
    """Traversal attempts under /static/<applet>/ never serve a file from outside
    the applet's static folder (nor a 5xx)."""
    target = f"/static/{applet}/{lead}" + "/".join(ups) + "/" + tail
    answer = send(fuzzed, request(fuzzed, b"GET", target.encode("latin-1")))
    inside = HANJI_STATIC if applet == "hanji" else STATIC_FILES[applet]
    if answer.status == 200:
        assert answer.body in inside.values(), f"{target} served a file from outside static/: {answer.body[:200]!r}"
    elif answer.body not in inside.values():
        assert b"root:" not in answer.body and b"import " not in answer.body, (target, answer.body[:300])


def test_server_is_healthy_after_the_fuzz(fuzzed: Fuzzed) -> None:
    """After all the fuzzing, the same server still serves /res, Django and static files."""
    assert_healthy(fuzzed.proc)
    assert "unhandled error" not in fuzzed.proc.log.lower()  # Twisted's "Unhandled Error" and "... in Deferred"
