"""Hanji's Django settings: the one settings module.

Read at ``django.setup()`` time from the environment that :mod:`hanji.server.django_setup`
prepares: ``HANJI_DATA`` (data dir, default ``./.hanji``), ``DATABASE_URL`` (another
database, e.g. ``postgres://…``; default SQLite in the data dir), ``HANJI_DEBUG``, and
``HANJI_INSTALLED_APPLETS`` (the applet packages found, set by Hanji). A project extends
it with its own module named in ``HANJI_SETTINGS`` that starts with
``from hanji.server.settings import *``.
"""

import os
from pathlib import Path

DATA_DIR = Path(os.environ.get("HANJI_DATA") or ".hanji").resolve()
DEBUG = os.environ.get("HANJI_DEBUG", "") not in ("", "0", "false", "False")

SECRET_KEY = os.environ.get("HANJI_SECRET_KEY") or "hanji-local-development-key-change-me"
ALLOWED_HOSTS = ["*"]

_applets = [a for a in os.environ.get("HANJI_INSTALLED_APPLETS", "").split(",") if a]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "hanji.server",
    *_applets,
]

MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "hanji.server.django_access.TokenHeaderCsrfExemption",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "hanji.server.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "hanji.server.views.base_path",
            ],
        },
    }
]

if os.environ.get("DATABASE_URL"):
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "db.sqlite3"),
            # Several Django threads write to one file: wait for the lock, don't fail.
            "OPTIONS": {"timeout": 20},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"
# Logging is Hanji's (stderr and hanji.log); Django's own config would add a second
# console handler.
LOGGING_CONFIG = None
