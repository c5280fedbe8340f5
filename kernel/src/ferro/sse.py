"""Reading and writing Server-Sent Events and NDJSON streams.

The reader splits on blank lines over ``iter_any()`` chunks, so an event of any size is
fine (no per-line buffer limit) and a burst of small events costs one await.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

__all__ = [
    "DONE", "encode_event", "iter_lines", "iter_sse", "iter_sse_batches",
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


async def iter_sse_batches(content: Any) -> AsyncIterator[list[Event]]:
    """Yield the ``(event, data)`` pairs of an ``aiohttp`` response body, a list per network
    read: everything that arrived together, so a relay can forward it in one write.

    ``data`` is None for an event without data lines (such as a bare ``event: ping``).
    A final event without its closing blank line is still yielded.
    """
    buf = b""
    async for chunk in content.iter_any():
        buf = buf + chunk if buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        if b"\n\n" not in buf:
            continue
        batch, buf = split_events(buf)
        if batch:
            yield batch
    if buf.strip():
        batch, _ = split_events(buf.strip(b"\n") + b"\n\n")
        if batch:
            yield batch


async def iter_sse(content: Any) -> AsyncIterator[tuple[str | None, bytes | None]]:
    """Yield ``(event, data)`` for each event of an ``aiohttp`` response body (see
    :func:`iter_sse_batches`)."""
    async for batch in iter_sse_batches(content):
        for item in batch:
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
