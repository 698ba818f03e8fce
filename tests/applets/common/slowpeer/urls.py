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


def headers(request):
    """What Django sees of the credentials (Hanji's own must not reach it)."""
    from django.http import JsonResponse

    return JsonResponse({"authorization": request.META.get("HTTP_AUTHORIZATION"),
                         "x_hanji_token": request.META.get("HTTP_X_HANJI_TOKEN")})


urlpatterns = [path("diskfull/", diskfull), path("big/", big), path("headers/", headers)]
