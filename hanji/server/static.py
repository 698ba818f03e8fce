"""Static files on the reactor thread: Hanji's own and each applet's ``static/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.web import resource, static

HANJI_STATIC = Path(__file__).parent / "static" / "hanji"


class StaticFolder(static.File):
    """A static folder with no directory listing; ``..`` and encoded slashes give
    404 (twisted's FilePath refuses them)."""

    def directoryListing(self) -> Any:
        return resource.NoResource("Directory listings are disabled.")

    def createSimilarFile(self, path: str) -> static.File:
        f = type(self)(path, self.defaultType, self.ignoredExts, self.registry)
        f.processors = self.processors
        f.indexNames = self.indexNames[:]
        f.childNotFound = self.childNotFound
        return f


def folder(path: Path) -> StaticFolder:
    """Return a static resource serving ``path``."""
    return StaticFolder(str(path))
