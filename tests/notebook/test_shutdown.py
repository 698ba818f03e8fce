"""Kernel shutdown and restart with a Django request in flight (issue 3, item 9)."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from typing import Any

from kernels import Kernel

STUCK_VIEW = """
import threading
from django.http import HttpResponse
from django.urls import path
from hanji.core.applet import Applet

entered = threading.Event()

def stuck(request):
    entered.set()
    threading.Event().wait(300)  # a view stuck on a device that never answers
    return HttpResponse("too late")

class Stuck(Applet):
    id = "stuck"
    def on_deactivate(self):
        with open("deactivated.txt", "w") as marker:  # in the kernel's working directory
            marker.write("on_deactivate ran")

hanji.activate(Stuck, urls=[path("", stuck)])
"""


def _start_stuck_request(kernel: Kernel) -> threading.Thread:
    """Send a request to the stuck view from another thread and wait until the view runs."""
    kernel.ok("%load_ext hanji\nimport hanji\n" + STUCK_VIEW)
    url = kernel.value("hanji.url()") + "applets/stuck/"

    def call() -> None:
        try:
            urllib.request.urlopen(url, timeout=120).read()
        except (urllib.error.URLError, ConnectionError, OSError):
            pass  # the kernel went away: expected

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    assert kernel.value("entered.wait(30)") is True
    assert kernel.value("len(__import__('hanji.server.runtime').server.runtime.current().site.in_flight)") == 1
    return caller


def _wait_exit(kernel: Kernel, limit: float = 60.0) -> int | None:
    """Wait for the kernel process to end by itself; return its exit code (None if it did not)."""
    process: Any = kernel.km.provisioner.process  # type: ignore[union-attr]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            return int(code)
        time.sleep(0.1)
    return None


def test_kernel_shutdown_with_a_django_request_in_flight_exits(new_kernel: Any) -> None:
    """A kernel asked to shut down while a Django view hangs drains with a deadline, deactivates the applets and exits by itself."""
    kernel = new_kernel(env={"HANJI_DRAIN_TIMEOUT": "1"}, applets=None)
    _start_stuck_request(kernel)
    kernel.kc.shutdown()
    code = _wait_exit(kernel)
    assert code == 0, "the kernel hung on shutdown" if code is None else f"exit code {code}"
    assert (kernel.data.parent / "deactivated.txt").read_text() == "on_deactivate ran"


def test_unload_with_a_django_request_in_flight_returns(new_kernel: Any) -> None:
    """%unload_ext hanji with a Django view stuck returns after the drain deadline and frees the port."""
    from kernels import port_is_free

    kernel = new_kernel(env={"HANJI_DRAIN_TIMEOUT": "1"}, applets=None)
    _start_stuck_request(kernel)
    port = int(kernel.value("hanji.url()").rstrip("/").rsplit(":", 1)[1])
    result = kernel.ok("%unload_ext hanji", timeout=60)
    assert f"port {port} is free" in result.text and port_is_free(port)
    assert (kernel.data.parent / "deactivated.txt").is_file()
    assert "serves http://127.0.0.1:%d/" % port in kernel.ok("%load_ext hanji").text


def test_kernel_restart_with_a_django_request_in_flight_loads_again(new_kernel: Any) -> None:
    """Restarting a kernel with a Django view stuck gives a fresh kernel where %load_ext hanji works."""
    kernel = new_kernel(env={"HANJI_DRAIN_TIMEOUT": "1"}, applets=None)
    _start_stuck_request(kernel)
    kernel.km.restart_kernel(now=False)
    kernel.kc.wait_for_ready(timeout=60)
    result = kernel.ok("%load_ext hanji\nimport hanji")
    assert "serves http://127.0.0.1:" in result.text
    assert kernel.value("hanji.get('/').status") == 200
