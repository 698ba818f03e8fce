from django.urls import path

from reloadme import views

urlpatterns = [path("page", views.page)]
