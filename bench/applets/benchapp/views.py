"""benchapp's Django views (Django pool): trivial, sleeping, CPU-bound, and the answering process id."""

import os
import time

from django.http import HttpResponse

from .payload import HELLO


def hello(request):
    """Return the fixed bytes: the smallest possible Django view."""
    return HttpResponse(HELLO, content_type="text/html")


def sleep(request):
    """Block this worker for ``?s=`` seconds (default 2) without using the CPU."""
    seconds = min(float(request.GET.get("s", "2")), 10.0)
    time.sleep(seconds)
    return HttpResponse(HELLO, content_type="text/html")


def cpu(request):
    """Burn ``?ms=`` milliseconds (default 50) of this thread's CPU time in pure
    Python, holding the GIL while it runs (thread CPU time, so that ten busy workers
    each really do 50 ms of work per request)."""
    budget = min(float(request.GET.get("ms", "50")), 1000.0) / 1000.0
    end = time.thread_time() + budget
    n = 0
    while time.thread_time() < end:
        for i in range(200):
            n += i * i
    return HttpResponse(HELLO, content_type="text/html")


def pid(request):
    """Return this process's id: which worker answered (figure 8 counts them)."""
    return HttpResponse(str(os.getpid()).encode(), content_type="text/plain")
