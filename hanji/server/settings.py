"""Old home of Hanji's Django settings, kept so that a project's settings module
written as ``from hanji.server.settings import *`` keeps working; the settings live
in :mod:`hanji.django.settings` (import that instead)."""

import warnings

from hanji.django.settings import *  # noqa: F401,F403

warnings.warn("hanji.server.settings moved to hanji.django.settings; import that instead.",
              DeprecationWarning, stacklevel=2)
