"""The max-tokens options, as written under a ``plugins[]`` entry's ``config``: the older
gateway's three limits, with their names and defaults, and the estimated input tokens.

Each limit is a whole number, 0 to turn it off. A JSON config may write one as ``4096.0``
(as the older gateway accepted); it is read as ``4096``.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["Options"]


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _limit(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"must be a whole number, 0 to turn the limit off (got {value!r})",
                         attr)


def _limit_field(default: int) -> Any:
    return attrs.field(default=default, converter=_whole, validator=_limit)


@attrs.define
class Options:
    """Typed ``float`` so that the config may write ``4096`` or ``4096.0``; an ``int`` once
    built."""

    #: The most a request's ``max_tokens`` or ``max_completion_tokens`` may ask for.
    max_tokens: float = _limit_field(4096)
    #: The most messages a chat request may carry.
    max_messages: float = _limit_field(100)
    #: The most characters the request's texts may have together.
    max_input_length: float = _limit_field(0)
    #: The most input tokens the request may have, counted or estimated (see README).
    max_input_tokens: float = _limit_field(0)
