"""The blocklist's options, as written under a ``plugins[]`` entry's ``config``.

The kernel structures them into :class:`Options` and locates a wrong key or value in the
file; the validators here add the rules a type cannot say (no blank word; every pattern a
valid regular expression that does not match the empty text).
"""

from __future__ import annotations

import re
from typing import Any

import attrs

__all__ = ["MATCHES", "Options", "WordFilterOptions"]

#: How a blocked word or phrase is found: as a whole word (not inside a longer word) or
#: anywhere, even inside a longer word.
MATCHES = ("whole_word", "substring")


def _words(_inst: Any, attr: attrs.Attribute, value: list[str]) -> None:
    for i, word in enumerate(value):
        if not word.strip():
            raise ValueError(f"entry {i} is blank: a word or phrase needs a character that "
                             "is not white space", attr)


def _patterns(_inst: Any, attr: attrs.Attribute, value: list[str]) -> None:
    for i, pattern in enumerate(value):
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"entry {i} ({pattern!r}) is not a valid regular expression: "
                             f"{exc}", attr) from None
        if compiled.search("") is not None:
            raise ValueError(f"entry {i} ({pattern!r}) matches the empty text, so it "
                             "would block every text", attr)


def _match(_inst: Any, attr: attrs.Attribute, value: str) -> None:
    if value not in MATCHES:
        raise ValueError(f"must be one of {', '.join(MATCHES)} (got {value!r})", attr)


@attrs.define
class Options:
    #: Words and phrases to refuse (the older gateway's key).
    blocked_words: list[str] = attrs.field(factory=list, validator=_words)
    case_sensitive: bool = False
    #: ``whole_word``: "pass" does not block "password"; ``substring``: it does.
    match: str = attrs.field(default="whole_word", validator=_match)
    #: Regular expressions (Python syntax) to refuse, each searched for on its own.
    patterns: list[str] = attrs.field(factory=list, validator=_patterns)


@attrs.define
class WordFilterOptions(Options):
    """The older gateway's ``word-filter``: the same options, but matching substrings by
    default, as it did, so its configs keep blocking what they blocked."""

    match: str = attrs.field(default="substring", validator=_match)
