import os

from django.http import HttpResponse
from django.urls import path


def pid(request):
    return HttpResponse(str(os.getpid()))


urlpatterns = [path("", pid)]
