"""Reading and writing Server-Sent Events and NDJSON streams.

A :class:`FrameReader` splits ``iter_any()`` chunks on blank lines (or newlines), so a
burst of small events costs one await, in time linear in the stream however its events are
cut into reads; it bounds one event and the whole stream (``limits.max_frame_bytes`` and
``limits.max_stream_bytes``), raising :class:`StreamLimitError` past either.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ferro.config import LimitsConfig

__all__ = [
    "DONE",
    "Event",
    "FrameReader",
    "StreamLimitError",
    "encode_event",
    "iter_frames",
    "iter_lines",
    "iter_sse",
    "split_events",
]

_DEFAULTS = LimitsConfig()

#: The last frame of an OpenAI stream.
DONE = b"data: [DONE]\n\n"


def encode_event(data: bytes) -> bytes:
    """One ``data:`` frame."""
    return b"data: " + data + b"\n\n"


def _parse_block(block: bytes) -> tuple[str | None, bytes | None]:
    if block[:6] == b"data: " and b"\n" not in block:  # the common case: one data line
        return None, block[6:]
    event: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line[0] == 0x3A:  # ':' comment / keep-alive
            continue
        field, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            event = value.decode()
    return event, (b"\n".join(data) if data else None)


Event = tuple[str | None, bytes | None]


def split_events(buf: bytes) -> tuple[list[Event], bytes]:
    """The complete events at the start of ``buf`` (LF line ends), and the rest."""
    *blocks, rest = buf.split(b"\n\n")
    batch = [(None, block[6:]) if block[:6] == b"data: " and b"\n" not in block
             else _parse_block(block) for block in blocks if block]
    return [item for item in batch if item[0] is not None or item[1] is not None], rest


class StreamLimitError(Exception):
    """A stream passed one of its limits; ``code`` says which (``stream_frame_too_large``,
    ``stream_too_large``)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class FrameReader:
    """Complete frames out of a stream's network reads: everything up to the last
    ``separator`` (a blank line for SSE, a newline for NDJSON) that has arrived, with CRLF
    line ends made LF.

    Linear in the stream, however its frames are cut into reads: a frame that spans reads
    is kept in one growing buffer, and each search for the separator starts where the last
    one ended, so every byte is searched once (``scanned`` counts them). A frame whose
    buffered part passes ``max_frame`` bytes, or a stream that passes ``max_bytes``, raises
    :class:`StreamLimitError`.
    """

    __slots__ = ("_buf", "_cr", "max_bytes", "max_frame", "scanned", "separator", "total")

    def __init__(self, max_frame: int = _DEFAULTS.max_frame_bytes,
                 max_bytes: int = _DEFAULTS.max_stream_bytes,
                 separator: bytes = b"\n\n") -> None:
        self.max_frame = max_frame
        self.max_bytes = max_bytes
        self.separator = separator
        self.total = 0  # bytes read
        self.scanned = 0  # bytes searched for the separator
        self._buf = bytearray()  # the start of a frame not complete yet
        self._cr = False  # a read ended in CR: its LF may come next

    def feed(self, piece: bytes) -> bytes:
        """The frames ``piece`` completes (b"" when it completes none); keeps the rest."""
        self.total += len(piece)
        if self.total > self.max_bytes:
            raise StreamLimitError(f"the stream passed limits.max_stream_bytes "
                                   f"({self.max_bytes} bytes)", "stream_too_large")
        if self._cr or b"\r" in piece:
            piece = self._lf(piece)
        buf, sep = self._buf, self.separator
        if not buf:  # the common case: the read starts a frame
            self.scanned += len(piece)
            end = piece.rfind(sep)
            if end < 0:
                buf += piece
                self._check()
                return b""
            cut = end + len(sep)
            if cut == len(piece):
                return piece
            buf += memoryview(piece)[cut:]
            self._check()
            return piece[:cut]
        start = max(len(buf) - len(sep) + 1, 0)  # a separator may straddle the reads
        buf += piece
        self.scanned += len(buf) - start
        end = buf.rfind(sep, start)
        if end < 0:
            self._check()
            return b""
        cut = end + len(sep)
        frames = bytes(buf[:cut])
        del buf[:cut]
        self._check()
        return frames

    def rest(self) -> bytes:
        """At the end of the stream: a last frame that lacks its separator, completed, or
        b"" when there is none."""
        tail = bytes(self._buf).strip(b"\n")
        self._buf.clear()
        return tail + self.separator if tail.strip() else b""

    def _lf(self, piece: bytes) -> bytes:
        if self._cr:
            piece = b"\r" + piece
        self._cr = piece[-1:] == b"\r"
        if self._cr:
            piece = piece[:-1]
        return piece.replace(b"\r\n", b"\n")

    def _check(self) -> None:
        if len(self._buf) > self.max_frame:
            raise StreamLimitError(f"an event of the stream passed limits.max_frame_bytes "
                                   f"({self.max_frame} bytes)", "stream_frame_too_large")


async def iter_frames(content: Any, reader: FrameReader | None = None) -> AsyncIterator[bytes]:
    """Yield the complete SSE frames of an ``aiohttp`` response body (LF line ends, each
    ending in a blank line), everything complete from one network read at a time, through
    ``reader`` (default: one with the default limits). A final frame without its closing
    blank line is yielded last, completed."""
    reader = reader or FrameReader()
    async for chunk in content.iter_any():
        frames = reader.feed(chunk)
        if frames:
            yield frames
    tail = reader.rest()
    if tail:
        yield tail


async def iter_sse(content: Any, reader: FrameReader | None = None) -> AsyncIterator[Event]:
    """Yield ``(event, data)`` for each event of an ``aiohttp`` response body. ``data`` is
    None for an event without data lines (such as a bare ``event: ping``)."""
    async for frames in iter_frames(content, reader):
        for item in split_events(frames)[0]:
            yield item


async def iter_lines(content: Any, reader: FrameReader | None = None) -> AsyncIterator[bytes]:
    """Yield each non-blank line of a body (``reader``: a FrameReader on newlines)."""
    async for lines in iter_frames(content, reader or FrameReader(separator=b"\n")):
        for line in lines.split(b"\n"):
            if line.strip():
                yield line
