"""Django views of the limits test applet, under /applets/limitstest/."""

import os
import time
from pathlib import Path

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


def gate(request):
    """Block until the file ``open`` appears in $LIMITSTEST_GATE (at most 60 s)."""
    folder = Path(os.environ["LIMITSTEST_GATE"])
    with open(folder / "entered", "a") as f:
        f.write("entered\n")
    deadline = time.monotonic() + 60
    while not (folder / "open").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return HttpResponse("gate passed")


def fast(request):
    return HttpResponse("fast")


def slow(request):
    time.sleep(float(request.GET.get("s", "2")))
    return HttpResponse("slow done")


@csrf_exempt
def size(request):
    return HttpResponse(str(len(request.body)))


urlpatterns = [
    path("gate", gate),
    path("fast", fast),
    path("slow", slow),
    path("size", size),
]
