import os

from django.contrib.auth.decorators import login_required
from django.core.cache import cache, caches
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.urls import path


def _host():
    """Return this "host": the supervisor's pid under --workers, else this process's."""
    return int(os.environ.get("HANJI_SUPERVISOR_PID") or os.getpid())


def pid(request):
    """GET: this process's id, its host's and Django's cache backend."""
    return JsonResponse({"pid": os.getpid(), "host": _host(), "cache": type(caches["default"]).__name__})


@login_required
def form(request):
    """GET: a form with Django's CSRF token and this process's id; POST (checked by
    Django's CSRF middleware): the user, the field and the host."""
    if request.method == "POST":
        return JsonResponse({"host": _host(), "user": request.user.username, "said": request.POST.get("said")})
    return HttpResponse(f'<form method="post"><input name="csrfmiddlewaretoken" value="{get_token(request)}">'
                        f'<input name="said"></form><p id="host">{_host()}</p>')


def cached(request):
    """GET ?key=K&value=V sets K; GET ?key=K reads it; with the host."""
    key = request.GET["key"]
    if "value" in request.GET:
        cache.set(key, request.GET["value"], 300)
    return JsonResponse({"host": _host(), "value": cache.get(key)})


urlpatterns = [path("pid/", pid), path("form/", form), path("cache/", cached)]
