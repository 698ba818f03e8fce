"""Hanji's settings from the environment, parsed once each, with every default.

Every ``HANJI_*`` variable and default value is read here and nowhere else, so
``hanji serve``, a kernel, Django's settings module and the notebook client agree
on what a value means (``HANJI_DEBUG=off`` turns debug off everywhere). Any
thread; these are pure functions of ``os.environ`` at the time of the call, except
:func:`secret_key`, which may read or make the key file in the data dir.

    HANJI_DEBUG        debug mode: 1/true/yes/on or 0/false/no/off (default: off in
                       ``hanji serve``, on in a notebook)
    HANJI_DATA         the data dir (SQLite, hanji.log); default ``./.hanji``
    HANJI_PORT         the port a kernel's server asks for; default 8899
    HANJI_TOKEN        the access token (a kernel: a random one; ``hanji serve``:
                       none on loopback, a random one elsewhere)
    HANJI_STALL_MS     a kernel's stall threshold in ms (0: off); default 50
    HANJI_DRAIN_TIMEOUT  a kernel's drain deadline in s at shutdown; default 1.5
    HANJI_SECRET_KEY   Django's SECRET_KEY, the same on every host; unset: a random
                       key made once and kept in ``<data>/secret_key`` (mode 0600)
    HANJI_URL          the server the notebook client talks to when none runs here
    HANJI_APPLETS      applet directories, separated by os.pathsep
    HANJI_SETTINGS     a project's Django settings module
    HANJI_BUS          the broadcast bus (``--bus``): local (default), unix:///path
                       (the supervisor's relay) or redis://host:port/db
    HANJI_HTTP_PARSER  the HTTP/1.1 parser of the site: ``httptools`` (llhttp, C; the
                       default) or ``twisted`` (twisted.web's own); ``hanji serve --http``
    HANJI_SUPERVISOR_PID, HANJI_WORKER_ID  set by the supervisor of
                       ``hanji serve --workers N`` in each worker: its pid, and the
                       worker's number (1, 2, … in order of start; a replacement
                       gets a new number)
    HANJI_LEASE_TTL    seconds an "exactly one" applet's lease lives unrenewed
                       (Redis); standbys retry every third of it; default 15
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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
DJANGO_SETTINGS = "hanji.django.settings"
DEFAULT_WORKER_TIMEOUT = 30.0
DEFAULT_LEASE_TTL = 15.0

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


def fixed_secret_key() -> str | None:
    """Return ``$HANJI_SECRET_KEY``, or None if it is unset (the key file serves)."""
    return os.environ.get("HANJI_SECRET_KEY") or None


def secret_key() -> str:
    """Return Django's SECRET_KEY: ``$HANJI_SECRET_KEY``, else the key kept in the
    data dir, made at the first call (:mod:`hanji._secretfile`, which raises
    SecretKeyFileError if it cannot be read or made)."""
    fixed = fixed_secret_key()
    if fixed:
        return fixed
    from hanji import _secretfile

    return _secretfile.load_or_create(data_dir())


def client_url() -> str:
    """Return the server the notebook client talks to when none runs in this
    process: ``$HANJI_URL``, else ``http://127.0.0.1:8899``."""
    return os.environ.get("HANJI_URL") or DEFAULT_URL


def applet_dirs() -> list[Path]:
    """Return the applet directories listed in ``$HANJI_APPLETS`` (os.pathsep)."""
    return [Path(d) for d in os.environ.get("HANJI_APPLETS", "").split(os.pathsep) if d]


def bus_url() -> str | None:
    """Return the broadcast bus ``HANJI_BUS`` names (``--bus`` sets it), or None
    for the in-process bus."""
    return os.environ.get("HANJI_BUS", "").strip() or None


def django_settings_module() -> str:
    """Return the Django settings module: ``$HANJI_SETTINGS`` or Hanji's own."""
    return os.environ.get("HANJI_SETTINGS") or DJANGO_SETTINGS


HTTP_PARSERS = ("httptools", "twisted")
DEFAULT_HTTP_PARSER = "httptools"


def http_parser() -> str:
    """Return the HTTP parser ``HANJI_HTTP_PARSER`` asks for (one of HTTP_PARSERS),
    ``httptools`` if unset. Raise ValueError naming the variable for another value."""
    value = os.environ.get("HANJI_HTTP_PARSER", "").strip().lower() or DEFAULT_HTTP_PARSER
    if value not in HTTP_PARSERS:
        raise ValueError(f"HANJI_HTTP_PARSER={value!r} is not one of {', '.join(HTTP_PARSERS)}.")
    return value


def lease_ttl() -> float:
    """Return the lease lifetime in seconds ``HANJI_LEASE_TTL`` asks for, 15 if unset.
    Raise ValueError naming the variable for a value that is not a positive number."""
    ttl = _number("HANJI_LEASE_TTL", DEFAULT_LEASE_TTL)
    if not 0 < ttl < float("inf"):  # NaN too
        raise ValueError(f"HANJI_LEASE_TTL={ttl:g} must be a positive number of seconds.")
    return ttl


def redis_bus_url(environ: Mapping[str, str] | None = None) -> str | None:
    """Return ``$HANJI_BUS`` (of ``environ``, default ``os.environ``) when it is a
    Redis URL (``redis://``, ``rediss://``, ``unix://`` is not), else None: the
    Redis that leases and Django's cache use."""
    url = (os.environ if environ is None else environ).get("HANJI_BUS", "").strip()
    return url if url.startswith(("redis://", "rediss://")) else None


def supervisor_pid() -> int | None:
    """Return the pid of this worker's supervisor (``HANJI_SUPERVISOR_PID``), or None
    outside ``hanji serve --workers N``."""
    value = os.environ.get("HANJI_SUPERVISOR_PID", "").strip()
    return int(value) if value.isdigit() else None


def worker_id() -> int | None:
    """Return this worker's number under a supervisor (``HANJI_WORKER_ID``), or None."""
    value = os.environ.get("HANJI_WORKER_ID", "").strip()
    return int(value) if value.isdigit() else None
