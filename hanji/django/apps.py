"""Hanji's own Django app (label ``hanji``): the home page view and its template."""

from django.apps import AppConfig


class HanjiConfig(AppConfig):
    """Django app config of :mod:`hanji.django` (home page, templates)."""

    name = "hanji.django"
    label = "hanji"
    verbose_name = "Hanji"
