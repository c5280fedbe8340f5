"""Input tokens: counted with the tokenizer of an OpenAI model family when one is installed,
estimated otherwise.

tiktoken downloads its encoding files on first use, so it cannot count offline. The
``exact`` extra installs bpe-openai, whose wheels carry OpenAI's ``o200k_base`` and
``cl100k_base`` files (the same bytes, by their published SHA-256, that tiktoken downloads)
and a tiktoken-compatible tokenizer over them; nothing is fetched at run time.

Counting is bounded: a text is handed to the tokenizer a piece of at most :data:`PIECE`
characters at a time, with a turn of the event loop between pieces, and counting stops as
soon as the count is past the limit.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

__all__ = [
    "BYTES_PER_TOKEN",
    "ENCODINGS",
    "PIECE",
    "Encoding",
    "count_tokens",
    "encoding_name",
    "estimate_tokens",
    "installed_encodings",
    "utf8_length",
]

#: The encodings of OpenAI's current model families.
ENCODINGS = ("o200k_base", "cl100k_base")

#: Model name prefixes and their family's encoding, as tiktoken maps them; the first
#: prefix that matches wins.
_FAMILIES = (
    ("gpt-4o", "o200k_base"), ("chatgpt-4o", "o200k_base"), ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"), ("gpt-5", "o200k_base"), ("o1", "o200k_base"),
    ("o3", "o200k_base"), ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"), ("gpt-3.5", "cl100k_base"), ("gpt-35", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"), ("text-embedding-ada-002", "cl100k_base"),
    ("davinci-002", "cl100k_base"), ("babbage-002", "cl100k_base"),
)

#: OpenAI's rule of thumb: a token is about 4 characters of English text. Counting UTF-8
#: bytes rather than characters keeps the estimate closer for other scripts, where a
#: character takes 2 to 4 bytes and often a token of its own.
BYTES_PER_TOKEN = 4

#: The most characters handed to the tokenizer in one call (well under a millisecond).
PIECE = 8192

#: Where a text can be cut without changing its tokens: after a character that is not
#: white space, before a space. No pre-token of these encodings spans such a place.
_CUT = re.compile(r"(?<=\S) ")


class Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


def encoding_name(model: str) -> str | None:
    """The encoding of ``model``'s family (a ``provider/`` prefix and a fine-tune's ``ft:``
    are looked through), or None for a model outside OpenAI's families."""
    name = model.rpartition("/")[2].removeprefix("ft:")
    return next((encoding for prefix, encoding in _FAMILIES if name.startswith(prefix)), None)


@functools.cache
def installed_encodings() -> Mapping[str, Encoding]:
    """The encodings an installed package ships, loaded once per process: those of
    bpe-openai (the ``exact`` extra), or none."""
    try:
        import bpe_openai
    except ImportError:
        return {}
    return {name: bpe_openai.get_encoding(name) for name in ENCODINGS}


def utf8_length(text: str) -> int:
    """Bytes of ``text`` in UTF-8: never fewer than its tokens."""
    return len(text) if text.isascii() else len(text.encode())


def estimate_tokens(utf8_bytes: int) -> int:
    return -(-utf8_bytes // BYTES_PER_TOKEN)


async def count_tokens(encoding: Encoding, texts: Iterable[str], budget: int) -> int:
    """The tokens of ``texts``, or, once they are more than ``budget``, the count so far."""
    total = 0
    for text in texts:
        for piece in _pieces(text):
            total += len(encoding.encode_ordinary(piece))
            if total > budget:
                return total
            if piece is not text:
                await asyncio.sleep(0)  # a long text: let other requests run between pieces
    return total


def _pieces(text: str) -> Iterator[str]:
    """``text`` in pieces of at most :data:`PIECE` characters, each cut where it changes no
    token when there is such a place in the piece's second half (a text with no space in
    that stretch is cut where it reaches the length, which may add a token there)."""
    start, end = 0, len(text)
    while end - start > PIECE:
        cut = _CUT.search(text, start + PIECE // 2, start + PIECE)
        stop = cut.start() if cut is not None else start + PIECE
        yield text[start:stop]
        start = stop
    yield text if start == 0 else text[start:]
