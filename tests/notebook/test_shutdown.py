"""Kernel shutdown and restart with a Django request in flight (issue 3, item 9)."""

from __future__ import annotations

import threading
import urllib.error
from typing import Any

import pytest

from support.kernels import Kernel, open_url
from support.net import port_is_free
from support.polling import wait_until

STUCK_VIEW = """
import threading
from django.http import HttpResponse
from django.urls import path
from hanji.core.applet import Applet

inside = []  # one entry per view running in a Django worker

def stuck(request):
    inside.append(threading.current_thread().name)
    threading.Event().wait(300)  # a view stuck on a device that never answers
    return HttpResponse("too late")

class Stuck(Applet):
    id = "stuck"
    def on_deactivate(self):
        with open("deactivated.txt", "w") as marker:  # in the kernel's working directory
            marker.write("on_deactivate ran")

hanji.activate(Stuck, urls=[path("", stuck)])
"""


SERVER = "__import__('hanji.notebook.session').notebook.session.get_session().server"


def _start_stuck_request(kernel: Kernel, saturate: bool = False) -> None:
    """Send a request to the stuck view from another thread and wait until the view
    runs; with ``saturate``, enough of them to occupy every Django worker and queue
    two more behind them."""
    kernel.ok("%load_ext hanji\nimport hanji\n" + STUCK_VIEW)
    url = kernel.value("hanji.url()") + "applets/stuck/"
    workers = kernel.value(f"{SERVER}.pool.max")
    count = workers + 2 if saturate else 1

    def call() -> None:
        try:
            open_url(url, timeout=120).read()
        except (urllib.error.URLError, ConnectionError, OSError):
            pass  # the kernel went away: expected

    for _ in range(count):
        threading.Thread(target=call, daemon=True).start()
    _wait_in_kernel(kernel, f"len(inside) == {min(count, workers)}")
    _wait_in_kernel(kernel, f"len({SERVER}.site.in_flight) == {count}")
    assert kernel.value("len(inside)") == min(count, workers)  # the queued ones never start


def _wait_in_kernel(kernel: Kernel, condition: str, limit: float = 30.0) -> None:
    """Poll ``condition`` in the kernel until it holds; fail after ``limit`` seconds."""
    wait_until(lambda: kernel.value(condition), limit, f"never true in the kernel: {condition}")


def _wait_exit(kernel: Kernel, limit: float = 60.0) -> int:
    """Wait for the kernel process to end by itself and return its exit code; fail
    ("the kernel hung on shutdown") after ``limit`` seconds."""
    process: Any = kernel.km.provisioner.process  # type: ignore[union-attr]
    wait_until(lambda: process.poll() is not None, limit, "the kernel hung on shutdown", interval=0.1)
    return int(process.poll())


@pytest.mark.parametrize("saturate", [False, True], ids=["one-stuck-view", "saturated-pool"])
def test_kernel_shutdown_with_a_django_request_in_flight_exits(new_kernel: Any, saturate: bool) -> None:
    """A kernel asked to shut down while Django views hang (one, or every worker and more queued) drains with a deadline, deactivates the applets and exits by itself."""
    kernel = new_kernel(env={"HANJI_DRAIN_TIMEOUT": "1"}, applets=None)
    _start_stuck_request(kernel, saturate)
    kernel.kc.shutdown()
    code = _wait_exit(kernel)
    assert code == 0, f"exit code {code}"
    assert (kernel.data.parent / "deactivated.txt").read_text() == "on_deactivate ran"


@pytest.mark.parametrize("saturate", [False, True], ids=["one-stuck-view", "saturated-pool"])
def test_unload_with_a_django_request_in_flight_returns(new_kernel: Any, saturate: bool) -> None:
    """%unload_ext hanji with Django views stuck (one, or every worker and more queued) returns after the drain deadline, runs on_deactivate, frees the port, and a new load serves Django again."""
    kernel = new_kernel(env={"HANJI_DRAIN_TIMEOUT": "1"}, applets=None)
    _start_stuck_request(kernel, saturate)
    port = int(kernel.value("hanji.url()").rstrip("/").rsplit(":", 1)[1])
    result = kernel.ok("%unload_ext hanji", timeout=60)
    assert f"port {port} is free" in result.text and port_is_free(port)
    assert (kernel.data.parent / "deactivated.txt").read_text() == "on_deactivate ran"
    assert "serves http://127.0.0.1:%d/" % port in kernel.ok("%load_ext hanji").text
    assert kernel.value("hanji.get('/').status") == 200  # Django answers on the new pool


def test_kernel_restart_with_a_django_request_in_flight_loads_again(new_kernel: Any) -> None:
    """Restarting a kernel with a Django view stuck gives a fresh kernel where %load_ext hanji works."""
    kernel = new_kernel(env={"HANJI_DRAIN_TIMEOUT": "1"}, applets=None)
    _start_stuck_request(kernel)
    kernel.km.restart_kernel(now=False)
    kernel.kc.wait_for_ready(timeout=60)
    result = kernel.ok("%load_ext hanji\nimport hanji")
    assert "serves http://127.0.0.1:" in result.text
    assert kernel.value("hanji.get('/').status") == 200
