from django.urls import path

from ledger import views

urlpatterns = [
    path("write", views.write),
    path("count", views.count),
    path("db", views.db_info),
]
