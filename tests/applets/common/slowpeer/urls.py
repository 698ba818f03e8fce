import errno

from django.http import HttpResponse
from django.urls import path

from . import RENDERS


def diskfull(request):
    raise OSError(errno.ENOSPC, "No space left on device")


def big(request):
    """?kb=N&tag=T: N kB, counted per tag in the same table as the Big resource."""
    tag = request.GET.get("tag", "-")
    RENDERS[tag] = RENDERS.get(tag, 0) + 1
    return HttpResponse(b"x" * (int(request.GET.get("kb", "100")) * 1024), content_type="text/plain")


urlpatterns = [path("diskfull/", diskfull), path("big/", big)]
