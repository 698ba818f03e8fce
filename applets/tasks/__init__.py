"""tasks: a Django REST framework API as a Hanji applet (a worked example).

A model, a serializer, a viewset on a router, mounted at /applets/tasks/api/: DRF's
conventions apply unchanged (the browsable API, styled; session or token
authentication; permissions). From a notebook: ``hanji.get("/applets/tasks/api/tasks/")``.
"""

from hanji.core import applet as _applet


class Applet(_applet.Applet):
    name = "Tasks"
    description = "A REST API with Django REST framework: /applets/tasks/api/tasks/."


applet = Applet()
