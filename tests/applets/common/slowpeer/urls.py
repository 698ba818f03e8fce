import errno

from django.urls import path


def diskfull(request):
    raise OSError(errno.ENOSPC, "No space left on device")


urlpatterns = [path("diskfull/", diskfull)]
