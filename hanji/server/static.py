"""Static files on the reactor thread: Hanji's own and each applet's ``static/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.web import resource, static

HANJI_STATIC = Path(__file__).parent / "static" / "hanji"


class StaticFolder(static.File):
    """A static folder with no directory listing; ``..`` and encoded slashes give
    404 (twisted's FilePath refuses them)."""

    def getChild(self, path: bytes, request: Any) -> Any:
        """Return the child for one decoded path segment; reactor thread.

        A segment that is not UTF-8 or holds a NUL byte (``%ff``, ``%00``) names no
        file: 404, where twisted's File would log a critical error or answer 500.
        """
        if b"\x00" in path:
            return self.childNotFound
        try:
            path.decode("utf-8")
        except UnicodeDecodeError:
            return self.childNotFound
        return super().getChild(path, request)

    def makeProducer(self, request: Any, fileForReading: Any) -> Any:
        """Return the producer of the response body; reactor thread.

        A malformed Range header is ignored (the whole file is sent), as twisted
        does, but without its log line, which fails (500) on non-UTF-8 bytes.
        """
        byte_range = request.getHeader(b"range")
        if byte_range is not None:
            try:
                self._parseRangeHeader(byte_range)
            except ValueError:
                request.requestHeaders.removeHeader(b"range")
        return super().makeProducer(request, fileForReading)

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
