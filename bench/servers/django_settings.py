"""Django settings of the baseline servers: Hanji's own settings, same middleware and
apps (benchapp included), with a plain URLconf instead of Hanji's rebuilt one."""

from hanji.django.settings import *  # noqa: F401,F403
from hanji.django.settings import INSTALLED_APPS as _HANJI_APPS

INSTALLED_APPS = [*_HANJI_APPS, "benchapp"]
ROOT_URLCONF = "django_urls"
