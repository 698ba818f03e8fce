"""Several hosts behind a load balancer (issue 15, point 4), simulated on loopback.

Two `hanji serve` sets (``--workers 2`` each), each with a data dir of its own,
share one throwaway PostgreSQL (data, Django sessions), one throwaway Redis (the
broadcast bus, "exactly one" leases, Django's cache), one secret key and one access
token, behind a real HAProxy spreading requests round-robin with no sticky sessions.
Migrations run once, as a separate step (`hanji manage migrate`), and both sets
start with ``--no-migrate``. The beacon test applet (tests/applets/placement) gives
each answer's host (the supervisor's pid) and listens on a fixed port in exactly
one process of the whole set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from typing import Any, Iterator

import pytest

from support.haproxy import HAProxy
from support.net import free_port
from support.paths import ROOT
from support.polling import wait_until
from support.redis_server import RedisServer
from support.server import ServerProcess
from support.workers import beacon_pid

PLACEMENT_APPLETS = ROOT / "tests" / "applets" / "placement"
TOKEN = "shared-hosts-token"
ADA = {"DJANGO_SUPERUSER_USERNAME": "ada", "DJANGO_SUPERUSER_PASSWORD": "correct horse battery",
       "DJANGO_SUPERUSER_EMAIL": "ada@example.com"}


@dataclasses.dataclass
class Site:
    """The two hosts, the load balancer in front and the shared parts."""

    hosts: list[ServerProcess]
    proxy: HAProxy
    redis: RedisServer
    beacon_port: int

    def logs(self) -> str:
        return "\n".join(host.log for host in self.hosts)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, postgres_cluster: Any) -> Iterator[Site]:
    """Start Redis, migrate the shared database once, start both hosts with
    ``--no-migrate`` and HAProxy in front of them."""
    tmp = tmp_path_factory.mktemp("hosts")
    redis = RedisServer(tmp / "redis")
    beacon_port = free_port()
    env = {"DATABASE_URL": postgres_cluster.url(postgres_cluster.create_database()), "HANJI_BUS": redis.url,
           "HANJI_SECRET_KEY": "one-secret-key-for-every-host", "HANJI_TOKEN": TOKEN,
           "HANJI_BEACON_PORT": str(beacon_port), "HANJI_LEASE_TTL": "5", "HANJI_ECHO_PORT": "0"}
    args = ["--workers", "2", "--no-migrate"]
    hosts: list[ServerProcess] = []
    proxy = None
    try:
        for command in (["migrate", "--noinput"], ["createsuperuser", "--noinput"]):
            done = subprocess.run([sys.executable, "-m", "hanji", "manage", "--applets", str(PLACEMENT_APPLETS),
                                   "--data", str(tmp / "manage"), *command], capture_output=True, text=True,
                                  timeout=120, cwd=tmp, env={**os.environ, **env, **ADA})
            assert done.returncode == 0, done.stderr[-3000:]
        for name in ("host-a", "host-b"):
            (tmp / name).mkdir()
            hosts.append(ServerProcess(tmp / name, [PLACEMENT_APPLETS], args, env))
        proxy = HAProxy(tmp, [("127.0.0.1", int(urllib.parse.urlsplit(h.url).port or 0)) for h in hosts])
        yield Site(hosts, proxy, redis, beacon_port)
    finally:
        if proxy is not None:
            proxy.stop()
        for host in hosts:
            host.stop()
        redis.stop()


def _browser(site: Site) -> urllib.request.OpenerDirector:
    """Return a cookie-keeping HTTP client that opened the site with ``?token=``, as
    a browser does, until each host set its access cookie.

    The cookie carries the token, not the X-Hanji-Token header, which would exempt
    requests from Django's CSRF check. Hanji names the cookie after the port a
    server listens on: real hosts listen on one port and share it; these two
    loopback "hosts" have two ports, hence two cookies.
    """
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    wanted = {f"hanji-token-{urllib.parse.urlsplit(h.url).port}" for h in site.hosts}
    for _ in range(6):
        browser.open(f"{site.proxy.url}/?token={TOKEN}", timeout=30).read()
        if wanted <= {c.name for c in jar}:
            break
    assert wanted <= {c.name for c in jar}, "the load balancer never sent a request to one of the hosts"
    return browser


def _form_post(browser: urllib.request.OpenerDirector, url: str, fields: dict[str, str]) -> tuple[int, str]:
    """POST ``fields`` as a form to ``url``; return the status and the body."""
    data = urllib.parse.urlencode(fields).encode()
    try:
        answer = browser.open(urllib.request.Request(url, data=data, headers={"Origin": _origin(url)}), timeout=30)
        return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def test_migrations_ran_once_before_the_hosts_started(site: Site) -> None:
    """Neither host applied migrations: `hanji manage migrate` did, once, before them."""
    assert "Applying auth.0001_initial" not in site.logs()
    assert "Migrations applied" not in site.logs()


def test_a_login_and_a_csrf_protected_post_cross_hosts(site: Site) -> None:
    """Through the load balancer, Ada logs in through the admin's form and a form
    fetched from one host is posted, with Django's CSRF token, to the other: the
    session and the token hold across hosts (shared database and secret key); the
    same POST without the token is refused."""
    browser = _browser(site)
    base = site.proxy.url
    page = browser.open(base + "/admin/login/?next=/admin/", timeout=30).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    status, body = _form_post(browser, base + "/admin/login/?next=/admin/",
                              {"csrfmiddlewaretoken": token, "username": "ada",
                               "password": ADA["DJANGO_SUPERUSER_PASSWORD"], "next": "/admin/"})
    assert status == 200 and "Site administration" in body, body[-2000:]

    crossed = 0
    for attempt in range(6):
        form = browser.open(base + "/applets/beacon/form/", timeout=30).read().decode()
        form_host = int(re.search(r'<p id="host">(\d+)</p>', form).group(1))  # type: ignore[union-attr]
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        status, body = _form_post(browser, base + "/applets/beacon/form/",
                                  {"csrfmiddlewaretoken": csrf, "said": f"hello {attempt}"})
        assert status == 200, body[-2000:]
        answer = json.loads(body)
        assert answer["user"] == "ada" and answer["said"] == f"hello {attempt}"
        crossed += answer["host"] != form_host
        if crossed >= 2:
            break
    assert crossed >= 2, "the load balancer never sent the POST to the other host"
    assert {h.pid for h in site.hosts} >= {form_host, answer["host"]}
    refused, _ = _form_post(browser, base + "/applets/beacon/form/", {"said": "no token"})
    assert refused == 403


def test_django_s_cache_is_shared_through_redis(site: Site) -> None:
    """Django's cache is Redis's when the bus is: a key set on one host is read on the other."""
    a, b = site.hosts
    headers = {"X-Hanji-Token": TOKEN}
    assert json.loads(a.get("/applets/beacon/pid/", headers=headers).body)["cache"] == "RedisCache"
    assert json.loads(a.get("/applets/beacon/cache/?key=colour&value=indigo", headers=headers).body)["value"] == "indigo"
    read = json.loads(b.get("/applets/beacon/cache/?key=colour", headers=headers).body)
    assert read == {"host": b.pid, "value": "indigo"}


def test_websockets_on_either_host_receive_broadcasts_published_on_the_other(site: Site) -> None:
    """Websockets connected through the load balancer land on both hosts; a
    broadcast published on either host reaches every one of them, on both hosts,
    exactly once."""
    from websockets.sync.client import connect

    url = site.proxy.url.replace("http://", "ws://") + "/ws/beacon/feed"
    sockets: list[tuple[int, Any]] = []
    with contextlib.ExitStack() as stack:
        for _ in range(8):
            ws = stack.enter_context(connect(url, additional_headers={"X-Hanji-Token": TOKEN}, open_timeout=30))
            sockets.append((json.loads(ws.recv(timeout=30))["host"], ws))
            if len({host for host, _ in sockets}) == 2 and len(sockets) >= 4:
                break
        assert {host for host, _ in sockets} == {h.pid for h in site.hosts}
        for n, publisher in enumerate(site.hosts):
            message = f"from host {n}"
            shout = publisher.post("/res/beacon/shout", data=message.encode())
            assert shout.status == 200, shout.text
            for host, ws in sockets:
                assert ws.recv(timeout=30) == message, f"a websocket on host {host} missed {message!r}"
        # Exactly once: a duplicate of an earlier message would come before this one.
        assert site.hosts[0].post("/res/beacon/shout", data=b"last").status == 200
        for host, ws in sockets:
            assert ws.recv(timeout=30) == "last", f"a websocket on host {host} got a message twice"


def test_an_exactly_one_applet_runs_once_across_hosts_and_moves_when_its_holder_is_killed(site: Site) -> None:
    """The beacon's fixed port is bound by one process of the whole set (one
    on_activate in all the logs); after a SIGKILL of that process its Redis lease
    expires and another process, on either host, binds it."""
    holder = wait_until(lambda: beacon_pid(site.beacon_port), 60, "no process bound the beacon's port")
    assert site.logs().count("beacon on_activate") == 1, site.logs()
    os.kill(holder, signal.SIGKILL)
    taken = wait_until(lambda: (beacon_pid(site.beacon_port) or holder) != holder and beacon_pid(site.beacon_port),
                       60, lambda: f"no process took the beacon over:\n{site.logs()[-6000:]}")
    assert taken != holder
    assert "took its lease (Redis locks at" in site.logs()
    wait_until(lambda: site.logs().count("beacon on_activate") == 2, 30, "the takeover ran no on_activate")
