"""Hanji's settings from the environment, parsed once each, with every default.

Every ``HANJI_*`` variable and default value is read here and nowhere else, so
``hanji serve``, a kernel, Django's settings module and the notebook client agree
on what a value means (``HANJI_DEBUG=off`` turns debug off everywhere). Any
thread; these are pure functions of ``os.environ`` at the time of the call.

    HANJI_DEBUG        debug mode: 1/true/yes/on or 0/false/no/off (default: off in
                       ``hanji serve``, on in a notebook)
    HANJI_DATA         the data dir (SQLite, hanji.log); default ``./.hanji``
    HANJI_PORT         the port a kernel's server asks for; default 8899
    HANJI_TOKEN        the access token (a kernel: a random one; ``hanji serve``:
                       none on loopback, a random one elsewhere)
    HANJI_STALL_MS     a kernel's stall threshold in ms (0: off); default 50
    HANJI_DRAIN_TIMEOUT  a kernel's drain deadline in s at shutdown; default 1.5
    HANJI_SECRET_KEY   Django's SECRET_KEY; a development key by default
    HANJI_URL          the server the notebook client talks to when none runs here
    HANJI_APPLETS      applet directories, separated by os.pathsep
    HANJI_SETTINGS     a project's Django settings module
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8899
DEFAULT_STALL_MS = 50.0
# A kernel's drain deadline at exit. jupyter_client (JupyterLab's default settings)
# sends SIGTERM to a kernel still alive half of shutdown_wait_time (5 s) after its
# shutdown request, SIGKILL at 5 s: the drain and the on_deactivate hooks must fit
# in the first 2.5 s.
DEFAULT_NOTEBOOK_DRAIN_TIMEOUT = 1.5
DEFAULT_DATA_DIR = ".hanji"
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
DEVELOPMENT_SECRET_KEY = "hanji-local-development-key-change-me"
DJANGO_SETTINGS = "hanji.django.settings"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool(name: str, value: str | None, default: bool) -> bool:
    """Return the flag ``value`` (of variable ``name``) stands for, ``default`` if
    it is unset or blank. Raise ValueError naming the variable for anything else."""
    if value is None or not value.strip():
        return default
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} is not a flag: use 1, true, yes or on, or 0, false, no or off.")


def debug(default: bool = False) -> bool:
    """Return the debug flag ``HANJI_DEBUG`` asks for, ``default`` if it is unset."""
    return parse_bool("HANJI_DEBUG", os.environ.get("HANJI_DEBUG"), default)


def data_dir(arg: str | os.PathLike[str] | None = None) -> Path:
    """Return the data dir: ``arg`` (``--data``), else ``$HANJI_DATA``, else ``./.hanji``."""
    return Path(arg or os.environ.get("HANJI_DATA") or DEFAULT_DATA_DIR).expanduser().resolve()


def _number(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number.") from None


def port() -> int:
    """Return the port ``HANJI_PORT`` asks for, 8899 if unset."""
    return int(_number("HANJI_PORT", DEFAULT_PORT))


def stall_ms() -> float:
    """Return the stall threshold in ms ``HANJI_STALL_MS`` asks for (0: off), 50 if unset."""
    return _number("HANJI_STALL_MS", DEFAULT_STALL_MS)


def notebook_drain_timeout() -> float:
    """Return a kernel's drain deadline ``HANJI_DRAIN_TIMEOUT`` asks for, 3 s if unset."""
    return _number("HANJI_DRAIN_TIMEOUT", DEFAULT_NOTEBOOK_DRAIN_TIMEOUT)


def token() -> str | None:
    """Return the access token fixed by ``HANJI_TOKEN``, or None."""
    return os.environ.get("HANJI_TOKEN", "").strip() or None


def secret_key() -> str:
    """Return Django's SECRET_KEY: ``$HANJI_SECRET_KEY`` or the development key."""
    return os.environ.get("HANJI_SECRET_KEY") or DEVELOPMENT_SECRET_KEY


def client_url() -> str:
    """Return the server the notebook client talks to when none runs in this
    process: ``$HANJI_URL``, else ``http://127.0.0.1:8899``."""
    return os.environ.get("HANJI_URL") or DEFAULT_URL


def applet_dirs() -> list[Path]:
    """Return the applet directories listed in ``$HANJI_APPLETS`` (os.pathsep)."""
    return [Path(d) for d in os.environ.get("HANJI_APPLETS", "").split(os.pathsep) if d]


def django_settings_module() -> str:
    """Return the Django settings module: ``$HANJI_SETTINGS`` or Hanji's own."""
    return os.environ.get("HANJI_SETTINGS") or DJANGO_SETTINGS
