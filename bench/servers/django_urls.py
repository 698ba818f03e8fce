"""The baseline URLconf: benchapp's urls.py at the path Hanji mounts it on."""

from django.urls import include, path

urlpatterns = [path("applets/benchapp/", include("benchapp.urls"))]
