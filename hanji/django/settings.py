"""Hanji's Django settings: the one settings module.

Read at ``django.setup()`` time from the environment that :mod:`hanji.django.setup`
prepares: ``HANJI_DATA`` (data dir, default ``./.hanji``), ``DATABASE_URL`` (another
database, e.g. ``postgres://…``; default SQLite in the data dir), ``HANJI_DEBUG``,
``HANJI_INSTALLED_APPLETS`` (the applet packages found, set by Hanji), and
``HANJI_BUS`` (a Redis bus puts Django's cache on the same Redis). A project extends
it with its own module named in ``HANJI_SETTINGS`` that starts with
``from hanji.django.settings import *``.
"""

import os

from hanji import _config

DATA_DIR = _config.data_dir()
DEBUG = _config.debug()

SECRET_KEY = _config.secret_key()
ALLOWED_HOSTS = ["*"]

_applets = [a for a in os.environ.get("HANJI_INSTALLED_APPLETS", "").split(",") if a]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "hanji.django",
    *_applets,
]

# Django REST framework, for applets that build APIs (applets/tasks): session (the
# admin's login) and DRF token authentication, as a DRF project would set them.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
}

# Static files: served by the reactor at /static/<app folder or applet id>/…; collected
# by `hanji manage collectstatic` in the same layout (hanji.django.staticfiles).
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "hanji.django.staticfiles.NonAppletAppDirectoriesFinder",
    "hanji.django.staticfiles.AppletFinder",
]

MIDDLEWARE = [
    "hanji.django.middleware.ResourceExhaustionMiddleware",
    "hanji.django.middleware.AppendSlashMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "hanji.django.middleware.TokenHeaderCsrfExemption",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "hanji.django.urls"

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
                "hanji.django.views.base_path",
            ],
        },
    }
]

if os.environ.get("DATABASE_URL"):
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DATA_DIR / "db.sqlite3")}}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django threads, the reactor's defer_to_django jobs and notebook cells (another
    # process) write to one file at once. WAL lets readers go on beside the writer;
    # the busy timeout ("timeout", seconds) makes a writer wait for the lock instead
    # of failing; BEGIN IMMEDIATE takes the write lock at the start of a transaction,
    # so a read-then-write transaction never has to upgrade its lock, which SQLite
    # refuses at once ("database is locked") when another writer got in between.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL",
        **DATABASES["default"].get("OPTIONS", {}),
    }

# Django's cache: on the bus's Redis when the bus is Redis (HANJI_BUS=redis://…), so
# every process and host shares one cache; else Django's default (per-process memory).
if _config.redis_bus_url():
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": _config.redis_bus_url(), "KEY_PREFIX": "hanji"}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"
# Logging is Hanji's (stderr and hanji.log); Django's own config would add a second
# console handler.
LOGGING_CONFIG = None
