from django.shortcuts import render

from . import applet


def room(request):
    """The chat room on a page of its own (the same widget as the home page card)."""
    return render(request, "chat/page.html", {"applet": applet})
