"""Hanji's own Django app: the home page view and template."""

from django.apps import AppConfig


class HanjiServerConfig(AppConfig):
    """Django app config of :mod:`hanji.server` (home page, templates)."""

    name = "hanji.server"
    label = "hanji"
    verbose_name = "Hanji"
