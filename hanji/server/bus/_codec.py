"""The bytes of a bus message and of the relay's frames; pure functions, any thread.

A message is a topic (str) and a body: one kind byte then the payload::

    b"t" + UTF-8 text      a str (a websocket text message)
    b"b" + bytes           bytes (a websocket binary message)
    b"j" + JSON text       a dict or list (``hanji.publish``), decoded on delivery

On the relay's unix socket every frame is a 4-byte big-endian length, then a
2-byte topic length, the UTF-8 topic and the body. From the relay to a worker the
frame also starts with the relay's 8-byte sequence number (after the length),
which orders every message of the set. Redis carries the body as the message and
the topic in the channel name.
"""

from __future__ import annotations

import json
import struct
from typing import Any

__all__ = ["FrameError", "MAX_FRAME", "decode", "encode", "pack", "pack_sequenced", "unpack", "unpack_sequenced",
           "FrameReader"]

# The largest frame the relay and its clients accept (64 MiB): a bigger one is a
# broken peer, not a message.
MAX_FRAME = 64 << 20

_LEN = struct.Struct(">I")
_TOPIC = struct.Struct(">H")
_SEQ = struct.Struct(">Q")


class FrameError(ValueError):
    """A relay frame is malformed (a peer speaking another protocol, or corrupt)."""


def encode(message: Any) -> bytes:
    """Return the body of ``message`` (str, bytes, or a dict/list sent as JSON).

    Raise TypeError for anything else."""
    if isinstance(message, str):
        return b"t" + message.encode("utf-8", "surrogatepass")
    if isinstance(message, (bytes, bytearray, memoryview)):
        return b"b" + bytes(message)
    if isinstance(message, (dict, list)):
        return b"j" + json.dumps(message).encode("utf-8")
    raise TypeError(f"A bus message must be str, bytes or a dict/list (sent as JSON), not {type(message).__name__}.")


def decode(body: bytes) -> Any:
    """Return the message of ``body`` (see :func:`encode`); raise FrameError if the
    kind byte is unknown."""
    kind, payload = body[:1], body[1:]
    if kind == b"t":
        return payload.decode("utf-8", "surrogatepass")
    if kind == b"b":
        return bytes(payload)
    if kind == b"j":
        return json.loads(payload)
    raise FrameError(f"unknown message kind {kind!r}")


def pack(topic: str, body: bytes) -> bytes:
    """Return the frame a worker sends the relay for ``topic`` and ``body``."""
    name = topic.encode("utf-8")
    if len(name) > 0xFFFF:
        raise ValueError(f"bus topic too long ({len(name)} bytes; at most 65535)")
    size = _TOPIC.size + len(name) + len(body)
    if size > MAX_FRAME:
        raise ValueError(f"bus message too large ({size} bytes; at most {MAX_FRAME})")
    return _LEN.pack(size) + _TOPIC.pack(len(name)) + name + body


def pack_sequenced(seq: int, payload: bytes) -> bytes:
    """Return the frame the relay sends a worker: ``payload`` (a worker frame
    without its length) preceded by the sequence number ``seq``."""
    return _LEN.pack(_SEQ.size + len(payload)) + _SEQ.pack(seq) + payload


def unpack(payload: bytes) -> tuple[str, bytes]:
    """Return ``(topic, body)`` of a frame's payload (without the length)."""
    if len(payload) < _TOPIC.size:
        raise FrameError("frame shorter than its topic length")
    (n,) = _TOPIC.unpack_from(payload)
    end = _TOPIC.size + n
    if len(payload) < end:
        raise FrameError("frame shorter than its topic")
    try:
        topic = payload[_TOPIC.size:end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FrameError(f"topic is not UTF-8 ({exc})") from None
    return topic, bytes(payload[end:])


def unpack_sequenced(payload: bytes) -> tuple[int, str, bytes]:
    """Return ``(seq, topic, body)`` of a relay frame's payload (without the length)."""
    if len(payload) < _SEQ.size:
        raise FrameError("frame shorter than its sequence number")
    (seq,) = _SEQ.unpack_from(payload)
    topic, body = unpack(payload[_SEQ.size:])
    return seq, topic, body


class FrameReader:
    """Split a byte stream into frame payloads (length-prefixed, as above)."""

    def __init__(self, max_frame: int = MAX_FRAME + _SEQ.size) -> None:
        self._buffer = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` and return the payloads completed by it; raise FrameError
        for a frame longer than the maximum."""
        self._buffer += data
        out = []
        buf = self._buffer
        start = 0
        while len(buf) - start >= _LEN.size:
            (size,) = _LEN.unpack_from(buf, start)
            if size > self._max:
                raise FrameError(f"frame of {size} bytes announced (at most {self._max})")
            end = start + _LEN.size + size
            if len(buf) < end:
                break
            out.append(bytes(buf[start + _LEN.size:end]))
            start = end
        if start:
            del buf[:start]
        return out
