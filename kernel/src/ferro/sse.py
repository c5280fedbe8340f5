"""Reading and writing Server-Sent Events and NDJSON streams.

The reader splits on blank lines over ``iter_any()`` chunks, so an event of any size is
fine (no per-line buffer limit) and a burst of small events costs one await.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

__all__ = [
    "DONE",
    "encode_event",
    "iter_frames",
    "iter_lines",
    "iter_sse",
    "split_events",
]

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


async def iter_frames(content: Any) -> AsyncIterator[bytes]:
    """Yield the complete SSE frames of an ``aiohttp`` response body (LF line ends, each
    ending in a blank line), everything complete from one network read at a time. A final
    frame without its closing blank line is yielded last, completed."""
    buf = b""
    async for chunk in content.iter_any():
        buf = buf + chunk if buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        end = buf.rfind(b"\n\n")
        if end >= 0:
            frames, buf = buf[:end + 2], buf[end + 2:]
            yield frames
    if buf.strip():
        yield buf.strip(b"\n") + b"\n\n"


async def iter_sse(content: Any) -> AsyncIterator[Event]:
    """Yield ``(event, data)`` for each event of an ``aiohttp`` response body. ``data`` is
    None for an event without data lines (such as a bare ``event: ping``)."""
    async for frames in iter_frames(content):
        for item in split_events(frames)[0]:
            yield item


async def iter_lines(content: Any) -> AsyncIterator[bytes]:
    """Yield each non-blank line of a body (of any length)."""
    buf = b""
    async for chunk in content.iter_any():
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if buf.strip():
        yield buf
