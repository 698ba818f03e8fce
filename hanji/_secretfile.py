"""Django's secret key kept in the data dir when ``HANJI_SECRET_KEY`` is unset; any thread.

Without ``HANJI_SECRET_KEY``, every process using one data dir (the workers of
``hanji serve --workers N``, a single ``hanji serve``, ``hanji manage``, a notebook
kernel) reads one random key from ``<data>/secret_key``, made at the first start and
kept: sessions, CSRF tokens and password-reset links survive restarts and are
valid in every worker. Hosts do not share a data dir: several hosts set one
``HANJI_SECRET_KEY`` everywhere.

The file is made atomically: the key is written to a private temporary file (mode
0600) in the data dir, then hard-linked to ``secret_key``, which fails if another
process made it first; the loser reads the winner's key. A reader never sees a
half-written file.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

FILENAME = "secret_key"


class SecretKeyFileError(RuntimeError):
    """The key file cannot be read or made; the message names the file and the fix."""


def path(data_dir: Path) -> Path:
    """Return where the key of ``data_dir`` is kept."""
    return data_dir / FILENAME


def load_or_create(data_dir: Path) -> str:
    """Return the key kept in ``data_dir``, making it first if there is none.
    Raise SecretKeyFileError if the file cannot be read or made."""
    target = path(data_dir)
    try:
        return _read(target)
    except FileNotFoundError:
        pass
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".secret_key.", dir=data_dir)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_urlsafe(48) + "\n")  # 64 characters, as Django's check wants 50+
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, target)
            except FileExistsError:
                pass  # another process made it first: its key is the one
        finally:
            os.unlink(tmp)
        return _read(target)
    except OSError as exc:
        raise SecretKeyFileError(f"Cannot make Django's secret key file {target}: {exc}. Make the data dir "
                                 "writable, or set HANJI_SECRET_KEY to a long random value.") from None


def _read(target: Path) -> str:
    """Return the key in ``target``; raise FileNotFoundError if there is none yet."""
    try:
        key = target.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretKeyFileError(f"Cannot read Django's secret key file {target}: {exc}. Fix its "
                                 "permissions, or set HANJI_SECRET_KEY.") from None
    if not key:
        raise SecretKeyFileError(f"Django's secret key file {target} is empty: delete it (a new key is made "
                                 "at the next start; sessions end) or set HANJI_SECRET_KEY.")
    return key
