"""The ``blocklist`` plugin: at ``before_request`` it refuses requests, at ``after_request``
answers, streamed or not, that contain a blocked word, phrase or pattern."""

from __future__ import annotations

from collections.abc import Iterable

from ferro import ChatChunk, RejectedError, RequestContext

from ferro_guardrail_blocklist.matcher import Hit, Matcher
from ferro_guardrail_blocklist.options import Options, WordFilterOptions
from ferro_guardrail_blocklist.texts import Key, answer_texts, chunk_texts, request_texts

__all__ = ["Blocklist", "WordFilter"]

#: The error code of every refusal, for the request and for the answer alike.
CODE = "content_blocked"
_IN_ANSWER = " in the response"


class Blocklist:
    """Refuses a text that contains any of ``blocked_words`` or ``patterns`` with a 400
    ``content_blocked`` naming what was found."""

    Options = Options

    def __init__(self, options: Options) -> None:
        self.matcher = Matcher(options)

    async def before_request(self, ctx: RequestContext) -> None:
        if self.matcher:
            _refuse_any(self.matcher, request_texts(ctx.request), "")

    async def after_request(self, ctx: RequestContext) -> None:
        # a stream was searched chunk by chunk, before each was sent
        if self.matcher and not ctx.stream and ctx.response is not None:
            _refuse_any(self.matcher, answer_texts(ctx.response.body), _IN_ANSWER)

    async def on_chunk(self, ctx: RequestContext, chunk: ChatChunk) -> ChatChunk:
        """Search each new piece of text with the tail of the text before it (kept per
        choice and per tool call in ``ctx.state``), so a phrase split across chunks is
        still found; the chunk that completes one ends the stream."""
        if not self.matcher:
            return chunk
        choices = chunk.as_dict().get("choices")
        if not choices:
            return chunk
        tails: dict[Key, str] | None = ctx.state.get(self)
        if tails is None:
            tails = ctx.state[self] = {}
        window = self.matcher.window
        for key, text in chunk_texts(choices):
            tail = tails.get(key, "")
            seen = tail + text
            hit = self.matcher.find(seen, len(tail))
            if hit is not None:
                raise _refusal(hit, _IN_ANSWER)
            tails[key] = seen[-window:]
        return chunk


class WordFilter(Blocklist):
    """The older gateway's ``word-filter``: substring matching unless the config says
    otherwise."""

    Options = WordFilterOptions


def _refuse_any(matcher: Matcher, texts: Iterable[str], where: str) -> None:
    for text in texts:
        hit = matcher.find(text)
        if hit is not None:
            raise _refusal(hit, where)


def _refusal(hit: Hit, where: str) -> RejectedError:
    return RejectedError(hit.reason(where), code=CODE)
