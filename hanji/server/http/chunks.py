"""Follow a chunked request body's framing to see each chunk's announced size before
its data arrives; reactor thread only.

Twisted's own decoder hands the channel only the data, so a chunk-size line
announcing gigabytes would be refused only once that much had arrived (or after the
body timeout). :class:`ChunkSizes` reads the same bytes alongside it and yields each
size as soon as its line is complete; it stops watching at the last chunk or at
anything malformed, which Twisted's decoder refuses on its own.
"""

from __future__ import annotations

from collections.abc import Iterator

# A chunk-size line (with its extensions) longer than this is not followed further.
MAX_SIZE_LINE = 4096


class ChunkSizes:
    """The framing of one chunked body, fed the raw bytes as they arrive."""

    def __init__(self) -> None:
        self._state = "size"  # size | data | crlf | done
        self._line = b""
        self._left = 0  # bytes of the current chunk's data (then of its CRLF) to skip

    @property
    def done(self) -> bool:
        """Whether the last chunk was seen (or the framing is not followed any more)."""
        return self._state == "done"

    def feed(self, data: bytes) -> Iterator[int]:
        """Yield the size of each chunk whose size line ``data`` completes."""
        view = memoryview(data)
        while view and self._state != "done":
            if self._state == "size":
                piece = bytes(view[:MAX_SIZE_LINE + 2])
                combined = self._line + piece  # the CRLF may straddle two reads
                end = combined.find(b"\r\n")
                if end < 0:
                    self._line, view = combined, view[len(piece):]
                    if len(self._line) > MAX_SIZE_LINE:
                        self._state = "done"
                    continue
                line, view = combined[:end], view[end + 2 - len(self._line):]
                self._line = b""
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    self._state = "done"
                    return
                if size <= 0:
                    self._state = "done"  # the last chunk; trailers follow
                    yield 0
                    return
                self._state, self._left = "data", size
                yield size
            else:  # data, then its CRLF
                taken = min(self._left, len(view))
                view = view[taken:]
                self._left -= taken
                if self._left == 0:
                    if self._state == "data":
                        self._state, self._left = "crlf", 2
                    else:
                        self._state = "size"
