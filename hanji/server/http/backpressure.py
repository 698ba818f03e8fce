"""Output backpressure for HTTP connections; reactor thread only.

twisted.web answers pipelined requests one after another, and parses the next one
a client already sent as soon as the previous answer is written, even when the
client reads nothing: every answer piles up in the transport's send buffer
(measured: 2 kB of pipelined requests pinned 200 MB). :class:`OutputBackpressure`,
mixed into the HTTP channel, stops taking new requests while a connection's unsent
output is above its bound (``Limits.max_output``, ``hanji serve --max-output``):

- the transport's send buffer size is set to that bound, so the transport pauses
  the channel (its producer) once it is passed, and resumes it once drained;
- while paused, the channel's line parser stops (LineReceiver's public ``paused``
  flag), so the requests already received wait unparsed, and the socket is not
  read, so TCP's own flow control stops the client;
- once the output drained, the waiting requests are parsed and answered.

The request being answered is not affected: only the next one waits. Memory per
connection is then bounded by the output bound, plus one answer written in one
piece (a resource's or a view's own size), plus what twisted.web reads ahead while
it answers (``_optimisticEagerReadSize``, 16 kB) and one read.
"""

from __future__ import annotations

from typing import Any


class OutputBackpressure:
    """Mixin for an ``HTTPChannel``: hold pipelined requests while the output is
    above ``max_output``. Reactor thread only."""

    max_output: int = 256 * 1024
    # LineReceiver's flag: while True its parser leaves received bytes unparsed.
    paused = False

    def set_output_bound(self, transport: Any) -> None:
        """Make ``transport`` pause this channel once ``max_output`` bytes wait to
        be sent (a TCP transport's ``bufferSize``); connectionMade."""
        if hasattr(transport, "bufferSize"):
            transport.bufferSize = self.max_output

    def hold_reading(self) -> None:
        """Stop reading the socket while requests wait for the output to drain;
        dataReceived (what arrived is kept, unparsed: one read at most)."""
        transport: Any = getattr(self, "transport", None)
        if self.paused and transport is not None:
            transport.pauseProducing()

    def output_paused(self) -> None:
        """The transport's unsent output passed the bound: parse no further request
        until it drains; pauseProducing."""
        self.paused = True

    def output_drained(self) -> None:
        """The output drained: parse and answer the requests that waited;
        resumeProducing."""
        if self.paused:
            self.paused = False
            self.dataReceived(b"")  # type: ignore[attr-defined]  # run the parser over what waits
