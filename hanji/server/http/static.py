"""Static files on the reactor thread: Hanji's own and each applet's ``static/``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from twisted.web import static

from hanji.server.http.answers import not_found

HANJI_STATIC = Path(__file__).parent / "assets"

# A byte-ranges header Twisted can parse (RFC 9110 14.1.1, ASCII only): anything else
# is dropped and the whole file is sent, as Twisted does, without its log line,
# which fails (500) on non-UTF-8 bytes.
_RANGE = re.compile(rb"\s*bytes\s*=\s*(\d+-\d*|\d*-\d+)(\s*,\s*(\d+-\d*|\d*-\d+))*\s*")


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

        A malformed Range header is ignored (the whole file is sent).
        """
        byte_range = request.getHeader(b"range")
        if byte_range is not None and not _RANGE.fullmatch(byte_range):
            request.requestHeaders.removeHeader(b"range")
        return super().makeProducer(request, fileForReading)

    def directoryListing(self) -> Any:
        return not_found("Directory listings are disabled.")

    def createSimilarFile(self, path: str) -> static.File:
        f = type(self)(path, self.defaultType, self.ignoredExts, self.registry)
        f.processors = self.processors
        f.indexNames = self.indexNames[:]
        f.childNotFound = self.childNotFound
        return f


def folder(path: Path) -> StaticFolder:
    """Return a static resource serving ``path``."""
    return StaticFolder(str(path))
