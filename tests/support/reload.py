"""Helpers of the reload tests: a private copy of ``tests/applets/reload`` to edit,
edits as an editor makes them, and client threads that loop requests."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Callable

from support.paths import ROOT

RELOAD_APPLETS = ROOT / "tests" / "applets" / "reload"  # reloadme (edited), bystander


def copy_applets(tmp: Path) -> Path:
    """Copy the reload test applets into ``tmp/applets`` and return that folder."""
    target = tmp / "applets"
    shutil.copytree(RELOAD_APPLETS, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must be there) by ``new`` in ``path``, written in place."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


class Load:
    """``threads`` client threads calling ``fetch()`` in a loop until :meth:`stop`;
    every answer is kept in order, every exception (a refused or dropped connection)
    in ``errors``."""

    def __init__(self, fetch: Callable[[], tuple[int, bytes]], threads: int = 4) -> None:
        self._fetch = fetch
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.answers: list[tuple[int, bytes]] = []
        self.errors: list[str] = []
        self._threads = [threading.Thread(target=self._loop, name=f"load-{i}", daemon=True)
                         for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                answer = self._fetch()
            except Exception as exc:
                with self._lock:
                    self.errors.append(repr(exc))
                continue
            with self._lock:
                self.answers.append(answer)

    def count(self, answer: tuple[int, bytes]) -> int:
        """Return how many times ``answer`` came so far."""
        with self._lock:
            return self.answers.count(answer)

    def failures(self) -> list[str]:
        """Return the exceptions and the answers that are not 200, so far."""
        with self._lock:
            return self.errors + [f"{status}: {body[:200]!r}" for status, body in self.answers if status != 200]

    def stop(self) -> None:
        """Stop the threads and wait for them."""
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
