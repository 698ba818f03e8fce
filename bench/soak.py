"""Soak test: a real ``hanji serve`` under mixed load for a while; zero errors, flat memory.

    .venv/bin/python bench/soak.py --seconds 120        # what bench/README.md reports
    .venv/bin/python bench/soak.py --seconds 10         # what tests/server/test_soak.py runs

Serves the example applets (applets/: hello_world, echo, notes, chat) on 127.0.0.1 with
fresh data, then for ``--seconds`` runs, at the same time:

- ``--http-clients`` threads, each on one keep-alive connection, cycling through
  ``/res`` GETs (echo's info, notes' JSON list), a ``/res`` POST (hello_world's
  reference resource, with ``Origin: <server url>``), Django GETs (home page, notes
  list and detail), Django form POSTs with the CSRF token (an invalid form, and now
  and then a valid note, ten per client at most), and static files (applet and Hanji
  files, byte-compared);
- ``--ws-clients`` threads, each on ``/ws/echo/echo`` sending text and binary
  messages of 1 B to 64 kB and checking every echo, reconnecting every 200 messages;
- ``--chat-clients`` members (default 1) of ``/ws/chat/room``, each sending a message,
  waiting to see it broadcast back, and reconnecting now and then (reading the history
  replay). ``--http-ops`` limits the HTTP cycle to some operations, to find what grows;
- ``--slow-http`` hostile clients (default 2), each pipelining 200 requests for a
  static page on one connection and reading nothing for 3 s, then hanging up;
- ``--slow-ws`` members of ``/ws/chat/room`` (default 2) that never read what the
  room broadcasts to them, hanging up after 5 s.

Every answer is checked (status, body), so an error is a 5xx or any other wrong
status, a wrong body, a dropped connection, a timeout, a websocket echo that does not
match, or a traceback in the server log. The server's RSS (VmRSS of
``/proc/<pid>/status``) is sampled every second; the growth from the end of the
warm-up (``--warmup`` seconds, default a quarter of the run, at most 20 s) to the end
must stay under ``max(--max-growth-mb, --max-growth-pct of the warm RSS)``.

Prints a summary and exits 0 when there were no errors and memory stayed flat, else 1.
Nothing but 127.0.0.1 is contacted; the run stops by itself.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import random
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable
from urllib.parse import urlencode, urlsplit

from websockets.sync.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the support shared with the tests

from support.paths import APPLETS, ROOT  # noqa: E402
from support.server import ServerProcess  # noqa: E402
from support.ws import RawClient  # noqa: E402

TIMEOUT = 30.0  # seconds: a hang guard per request, never a measured limit
MB = 1024 * 1024


class Failure(Exception):
    """One wrong answer (status, body, echo) seen by a load client."""


# -- the server ----------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """Return the resident set size (VmRSS) of process ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS line")


# -- bookkeeping ---------------------------------------------------------------------------


class Tally:
    """Counts of successful operations and the errors seen; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ok: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.examples: list[str] = []

    def success(self, op: str, n: int = 1) -> None:
        with self.lock:
            self.ok[op] += n

    def error(self, op: str, what: str) -> None:
        with self.lock:
            self.errors[op] += 1
            if len(self.examples) < 20:
                self.examples.append(f"{op}: {what}")


# -- HTTP load -----------------------------------------------------------------------------


STATIC = {
    "/static/hello_world/help.html": (APPLETS / "hello_world/static/help.html").read_bytes(),
    "/static/chat/icon.png": (APPLETS / "chat/static/icon.png").read_bytes(),
    "/static/hanji/hanji.js": (ROOT / "hanji/server/http/assets/hanji.js").read_bytes(),
}


NOTES_PER_CLIENT = 10


class HttpClient:
    """One keep-alive connection cycling through the HTTP operations."""

    def __init__(self, server: ServerProcess, tally: Tally, index: int) -> None:
        self.server, self.tally, self.index = server, tally, index
        self.origin = server.url
        self.port = urlsplit(server.url).port
        self.conn: http.client.HTTPConnection | None = None
        self.cookie = ""
        self.form_token = ""
        self.notes_made = 0

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            resp = self.conn.getresponse()
            data = resp.read()
        except Exception:
            self.conn.close()
            self.conn = None  # a fresh connection for the next operation
            raise
        if resp.getheader("connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def expect(self, status: int, want: int, what: str, body: bytes) -> None:
        if status != want:
            raise Failure(f"{what}: status {status}, expected {want}: {body[:200]!r}")

    def csrf(self) -> None:
        """Read the CSRF cookie and form token from the notes page."""
        status, headers, body = self.request("GET", "/applets/notes/")
        self.expect(status, 200, "GET /applets/notes/", body)
        cookie = re.search(r"csrftoken=([^;]+)", headers.get("set-cookie", ""))
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        if not cookie or not token:
            raise Failure("the notes page set no CSRF cookie or form token")
        self.cookie, self.form_token = cookie.group(1), token.group(1).decode()

    # Each operation checks its answer and raises Failure on anything unexpected.

    def res_info(self) -> None:
        status, _, body = self.request("GET", "/res/echo/info")
        self.expect(status, 200, "GET /res/echo/info", body)
        if "configured_port" not in json.loads(body):
            raise Failure(f"/res/echo/info answered {body[:200]!r}")

    def res_list(self) -> None:
        status, _, body = self.request("GET", "/res/notes/list?limit=5")
        self.expect(status, 200, "GET /res/notes/list", body)
        notes = json.loads(body)
        if not isinstance(notes, list) or not 1 <= len(notes) <= 5:
            raise Failure(f"/res/notes/list answered {body[:200]!r}")

    def res_post(self) -> None:
        status, _, body = self.request(
            "POST", "/res/hello_world/path_to_my_resource", b"is_good=yes",
            {"Content-Type": "application/x-www-form-urlencoded", "Origin": self.origin})
        self.expect(status, 200, "POST /res/hello_world/path_to_my_resource", body)
        if body != b"All right":
            raise Failure(f"hello_world answered {body[:200]!r}")

    def django_detail(self) -> None:
        status, _, body = self.request("GET", "/applets/notes/1/")
        self.expect(status, 200, "GET /applets/notes/1/", body)
        if b"Welcome to Hanji" not in body:
            raise Failure("the note detail page lacks the fixture note's title")

    def django_home(self) -> None:
        status, _, body = self.request("GET", "/")
        self.expect(status, 200, "GET /", body)
        if b"Hello World" not in body or b"Chat" not in body:
            raise Failure("the home page lacks an applet card")

    def django_form(self) -> None:
        """POST the notes form: usually invalid (no title, re-rendered with the error,
        no row written), every 25th time a valid note (302 to the list), at most
        ``NOTES_PER_CLIENT`` of them: the list view renders every note, so an ever
        longer list would make each render (and the memory it takes) grow."""
        if not self.cookie:
            self.csrf()
        self.notes_made += 1
        valid = self.notes_made % 25 == 0 and self.notes_made <= 25 * NOTES_PER_CLIENT
        fields = {"csrfmiddlewaretoken": self.form_token, "title": f"soak {self.index}-{self.notes_made}" if valid else "",
                  "body": "written by bench/soak.py"}
        status, headers, body = self.request(
            "POST", "/applets/notes/", urlencode(fields).encode(),
            {"Content-Type": "application/x-www-form-urlencoded", "Origin": self.origin,
             "Cookie": f"csrftoken={self.cookie}"})
        if valid:
            self.expect(status, 302, "POST /applets/notes/ (valid)", body)
            if not headers.get("location", "").endswith("/applets/notes/"):
                raise Failure(f"valid note redirected to {headers.get('location')!r}")
        else:
            self.expect(status, 200, "POST /applets/notes/ (invalid)", body)
            if b"This field is required" not in body:
                raise Failure("the invalid form was not re-rendered with its error")

    def static(self) -> None:
        for path, content in STATIC.items():
            status, _, body = self.request("GET", path)
            self.expect(status, 200, f"GET {path}", body)
            if body != content:
                raise Failure(f"{path}: {len(body)} bytes differ from the file ({len(content)} bytes)")

    def run(self, deadline: float, only: set[str] = frozenset()) -> None:
        ops: list[tuple[str, Callable[[], None]]] = [
            ("res GET", self.res_info), ("res GET", self.res_list), ("res POST", self.res_post),
            ("django GET", self.django_detail), ("static GET", self.static), ("res GET", self.res_info),
            ("django POST", self.django_form), ("res POST", self.res_post), ("django GET", self.django_home),
            ("static GET", self.static),
        ]
        if only:
            ops = [(op, call) for op, call in ops if call.__name__ in only]
        i = self.index  # clients start at different places in the cycle
        while time.monotonic() < deadline:
            op, call = ops[i % len(ops)]
            i += 1
            try:
                call()
            except Failure as exc:
                self.tally.error(op, str(exc))
            except Exception as exc:  # a dropped connection, a timeout, bad JSON
                self.tally.error(op, f"{type(exc).__name__}: {exc}")
            else:
                self.tally.success(op)
        if self.conn is not None:
            self.conn.close()


# -- websocket load ------------------------------------------------------------------------


def ws_connect(server: ServerProcess, path: str) -> ClientConnection:
    """Open a websocket to ``path`` on ``server``."""
    url = "ws" + server.url[len("http"):] + path
    # Entering the context gives the connection on every websockets version (>= 13),
    # without the "use a context manager" warning of version 17.
    return connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT, compression=None, max_size=None).__enter__()


def echo_client(server: ServerProcess, tally: Tally, index: int, deadline: float) -> None:
    """Send text and binary messages to /ws/echo/echo and check every echo."""
    rng = random.Random(index)
    ws: ClientConnection | None = None
    sent = 0
    while time.monotonic() < deadline:
        try:
            if ws is None:
                ws = ws_connect(server, "/ws/echo/echo")
                tally.success("ws connect")
            size = rng.choice([1, 16, 200, 1024, 8192, 65536])
            message: str | bytes = (rng.randbytes(size) if sent % 2 else "é" * (size // 2 or 1))
            ws.send(message)
            reply = ws.recv(timeout=TIMEOUT)
            if reply != message:
                raise Failure(f"echo of {len(message)} {'bytes' if isinstance(message, bytes) else 'chars'} "
                              f"came back as {type(reply).__name__} of length {len(reply)}")
            tally.success("ws echo")
            sent += 1
            if sent % 200 == 0:
                ws.close()
                ws = None
        except Exception as exc:
            tally.error("ws echo", f"{type(exc).__name__}: {exc}")
            if ws is not None:
                ws.close()
            ws = None
    if ws is not None:
        ws.close()


def chat_client(server: ServerProcess, tally: Tally, deadline: float) -> None:
    """Say something on /ws/chat/room and wait for its broadcast; reconnect every 50."""
    ws: ClientConnection | None = None
    said = 0
    while time.monotonic() < deadline:
        try:
            if ws is None:
                ws = ws_connect(server, "/ws/chat/room")
                tally.success("ws connect")
            said += 1
            text = f"soak line {said}"
            ws.send(json.dumps({"name": "soak", "text": text}))
            while True:  # the history replay and earlier lines may come first
                message = json.loads(ws.recv(timeout=TIMEOUT))
                if message.get("text") == text:
                    break
            tally.success("ws chat")
            if said % 50 == 0:
                ws.close()
                ws = None
            time.sleep(0.02)  # a chat, not a flood: the history table grows slowly
        except Exception as exc:
            tally.error("ws chat", f"{type(exc).__name__}: {exc}")
            if ws is not None:
                ws.close()
            ws = None
    if ws is not None:
        ws.close()


def slow_http_client(server: ServerProcess, tally: Tally, deadline: float) -> None:
    """Pipeline requests and read none of the answers for a while, then hang up: the
    server must hold their answers back, not buffer them all."""
    url = urlsplit(server.url)
    request = (f"GET /static/hello_world/help.html HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n").encode()
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((url.hostname, url.port), timeout=TIMEOUT) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
                sock.sendall(request * 200)
                time.sleep(min(3.0, max(0.0, deadline - time.monotonic())))
            tally.success("slow http")
        except OSError as exc:
            tally.error("slow http", f"{type(exc).__name__}: {exc}")


def slow_ws_client(server: ServerProcess, tally: Tally, deadline: float) -> None:
    """Join the chat room and read nothing it broadcasts for 5 s, then hang up."""
    while time.monotonic() < deadline:
        try:
            raw = RawClient(server, "/ws/chat/room", rcvbuf=8192)
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            raw.close()
            tally.success("slow ws")
        except (OSError, EOFError, AssertionError) as exc:
            tally.error("slow ws", f"{type(exc).__name__}: {exc}")


# -- the run -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0, help="duration of the load (default 60)")
    p.add_argument("--warmup", type=float, default=None,
                   help="seconds of load before the reference RSS sample (default: a quarter of the run, at most 20)")
    p.add_argument("--http-clients", type=int, default=4, help="HTTP client threads (default 4)")
    p.add_argument("--ws-clients", type=int, default=2, help="websocket echo client threads (default 2)")
    p.add_argument("--chat-clients", type=int, default=1, help="chat member threads (default 1)")
    p.add_argument("--slow-http", type=int, default=2,
                   help="clients pipelining requests and reading nothing (default 2)")
    p.add_argument("--slow-ws", type=int, default=2, help="chat members reading nothing (default 2)")
    p.add_argument("--http-ops", default="", help="only these HTTP operations, comma separated (to find what "
                   "grows): res_info, res_list, res_post, django_detail, django_home, django_form, static")
    p.add_argument("--max-growth-mb", type=float, default=10.0, help="allowed RSS growth after warm-up, MB (default 10)")
    p.add_argument("--max-growth-pct", type=float, default=15.0,
                   help="allowed RSS growth after warm-up, %% of the warm RSS (default 15); the larger limit applies")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warmup = args.warmup if args.warmup is not None else min(20.0, args.seconds / 4)
    workdir = Path(tempfile.mkdtemp(prefix="hanji-soak-"))
    tally = Tally()
    try:
        server = ServerProcess(workdir, [APPLETS], ["--host", "127.0.0.1"])
    except RuntimeError as exc:
        print(f"soak: FAIL: the server did not start: {exc}", flush=True)
        return 1
    print(f"soak: {server.url} (pid {server.pid}), {args.seconds:.0f} s of load, warm-up {warmup:.0f} s, "
          f"{args.http_clients} HTTP clients, {args.ws_clients} websocket echo clients, {args.chat_clients} chat clients", flush=True)
    rss = {"start": rss_bytes(server.pid)}
    samples: list[tuple[float, int]] = []
    t0 = time.monotonic()
    deadline = t0 + args.seconds
    only = {name.strip() for name in args.http_ops.split(",") if name.strip()}
    threads = [threading.Thread(target=HttpClient(server, tally, i).run, args=(deadline, only), name=f"http-{i}")
               for i in range(args.http_clients)]
    threads += [threading.Thread(target=echo_client, args=(server, tally, i, deadline), name=f"ws-{i}")
                for i in range(args.ws_clients)]
    threads += [threading.Thread(target=chat_client, args=(server, tally, deadline), name=f"chat-{i}")
                for i in range(args.chat_clients)]
    threads += [threading.Thread(target=slow_http_client, args=(server, tally, deadline), name=f"slow-http-{i}")
                for i in range(args.slow_http)]
    threads += [threading.Thread(target=slow_ws_client, args=(server, tally, deadline), name=f"slow-ws-{i}")
                for i in range(args.slow_ws)]
    for t in threads:
        t.start()
    try:
        while time.monotonic() < deadline and server.alive():
            time.sleep(1.0)
            if not server.alive():
                break
            now = time.monotonic() - t0
            samples.append((now, rss_bytes(server.pid)))
            if "warm" not in rss and now >= warmup:
                rss["warm"] = samples[-1][1]
        for t in threads:
            t.join(TIMEOUT * 2)
        alive = server.alive()
        if alive:
            rss["end"] = rss_bytes(server.pid)
    finally:
        try:
            code, stopped = server.stop(), True
        except AssertionError:  # it did not exit within 30 s of SIGTERM and was killed
            code, stopped = server.proc.returncode, False
    elapsed = time.monotonic() - t0
    log = server.log
    tracebacks = log.count("Traceback (most recent call last)")
    stuck = [t.name for t in threads if t.is_alive()]

    total_ok = sum(tally.ok.values())
    total_err = sum(tally.errors.values())
    print(f"soak: {elapsed:.0f} s, {total_ok} operations OK ({total_ok / max(elapsed, 1e-9):.0f}/s): "
          + ", ".join(f"{op} {n}" for op, n in sorted(tally.ok.items())), flush=True)
    problems: list[str] = []
    if total_err:
        problems.append(f"{total_err} client errors (" + ", ".join(f"{op} {n}" for op, n in sorted(tally.errors.items())) + ")")
    if tracebacks:
        problems.append(f"{tracebacks} tracebacks in the server log")
    if not alive:
        problems.append(f"the server died (exit code {code})")
    if alive and not stopped:
        problems.append("the server did not stop within 30 s of SIGTERM (killed)")
    if stuck:
        problems.append(f"client threads still running: {', '.join(stuck)}")
    print(f"soak: errors: {total_err + tracebacks + (not alive) + (alive and not stopped) + len(stuck)}", flush=True)
    for line in tally.examples:
        print(f"soak:   {line}", flush=True)
    if tracebacks:
        first = log.index("Traceback (most recent call last)")
        print("soak: first traceback in the server log:\n" + log[max(0, first - 300):first + 3000], flush=True)

    if "warm" in rss and "end" in rss:
        growth = rss["end"] - rss["warm"]
        limit = max(args.max_growth_mb * MB, rss["warm"] * args.max_growth_pct / 100)
        peak = max(s[1] for s in samples)
        print(f"soak: server RSS: start {rss['start'] / MB:.1f} MB, after warm-up {rss['warm'] / MB:.1f} MB, "
              f"end {rss['end'] / MB:.1f} MB, peak {peak / MB:.1f} MB; growth after warm-up "
              f"{growth / MB:+.1f} MB ({100 * growth / rss['warm']:+.1f} %), limit {limit / MB:.1f} MB", flush=True)
        step = max(1, len(samples) // 10)
        print("soak: RSS samples (s: MB): " + ", ".join(f"{t:.0f}: {b / MB:.1f}" for t, b in samples[::step]), flush=True)
        if growth > limit:
            problems.append(f"RSS grew {growth / MB:.1f} MB after warm-up (limit {limit / MB:.1f} MB)")
    elif alive:
        problems.append("too short a run to sample the RSS after warm-up")

    if problems:
        print("soak: FAIL: " + "; ".join(problems), flush=True)
        print(f"soak: server log kept in {server.stderr_path}", flush=True)
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    print("soak: PASS: zero errors, flat memory", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
