"""The same Django project as an ASGI application, for daphne."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_settings")

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
