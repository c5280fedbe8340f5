"""Finding blocked words and patterns in a text, compiled once per plugin instance.

Every word and phrase goes into one regular expression, longest first (so the hit names the
longest phrase found at a place), each in its own group: the group that matched says which
one was hit. Patterns are compiled one by one (a pattern's own groups, flags and
backreferences stay its own) and searched in config order after the words.

A stream is searched as it comes: each new piece of text is searched together with the tail
of the text before it, and only hits that end in the new piece count (the tail was searched
already). :attr:`Matcher.window` is how long that tail must be.
"""

from __future__ import annotations

import re

import attrs

from ferro_guardrail_blocklist.options import Options

__all__ = ["PATTERN_WINDOW", "Hit", "Matcher"]

#: How many characters of earlier stream text a pattern is searched with: a pattern whose
#: match is longer than this and split across stream chunks may be missed.
PATTERN_WINDOW = 256


@attrs.frozen
class Hit:
    """What was found: a ``word`` (the configured word or phrase) or a ``pattern`` (its
    source)."""

    kind: str
    value: str

    def reason(self, where: str = "") -> str:
        return f'blocked {self.kind} detected{where}: "{self.value}"'


class Matcher:
    def __init__(self, options: Options) -> None:
        flags = 0 if options.case_sensitive else re.IGNORECASE
        self.words = sorted(set(options.blocked_words), key=len, reverse=True)
        self._words: re.Pattern[str] | None = None
        if self.words:
            alternatives = "|".join(f"({re.escape(word)})" for word in self.words)
            if options.match == "whole_word":
                alternatives = rf"(?<!\w)(?:{alternatives})(?!\w)"
            self._words = re.compile(alternatives, flags)
        self._patterns = [(re.compile(p, flags), p) for p in options.patterns]
        #: Characters of stream text kept between chunks: the longest phrase's length (a
        #: hit ending in new text starts at least one character into that tail, so the
        #: character before it, which whole-word matching reads, is kept too), or the
        #: pattern window.
        self.window = max(len(self.words[0]) if self.words else 0,
                          PATTERN_WINDOW if self._patterns else 0)

    def __bool__(self) -> bool:
        return self.window > 0

    def find(self, text: str, fresh: int = 0) -> Hit | None:
        """The first blocked word, else the first pattern, found in ``text`` that ends
        after index ``fresh`` (0: anywhere)."""
        if self._words is not None:
            match = _first_ending_after(self._words, text, fresh)
            if match is not None:
                return Hit("word", self.words[match.lastindex - 1])  # type: ignore[operator]
        for regex, source in self._patterns:
            if _first_ending_after(regex, text, fresh) is not None:
                return Hit("pattern", source)
        return None


def _first_ending_after(regex: re.Pattern[str], text: str, fresh: int) -> re.Match[str] | None:
    """The first non-empty match of ``regex`` in ``text`` that ends after ``fresh``. Matches
    within the first ``fresh`` characters are skipped one start at a time, so a match that
    overlaps one of them is still found."""
    pos = 0
    while (match := regex.search(text, pos)) is not None:
        if match.end() > max(fresh, match.start()):
            return match
        pos = match.start() + 1
    return None
