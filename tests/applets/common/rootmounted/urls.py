import time

from django.http import HttpResponse
from django.urls import path


def both(request):
    return HttpResponse("django")


def django_only(request):
    return HttpResponse("django only")


def slow(request):
    time.sleep(float(request.GET.get("s", "2")))
    return HttpResponse("slow done")


urlpatterns = [
    path("res/rootmounted/both", both),
    path("res/rootmounted/djonly", django_only),
    path("static/rootmounted-files/x", django_only),
    path("rootmounted/slow", slow),
]
