from django.urls import path

from . import views

urlpatterns = [
    path("hello", views.hello),
    path("sleep", views.sleep),
    path("cpu", views.cpu),
    path("pid", views.pid),
]
