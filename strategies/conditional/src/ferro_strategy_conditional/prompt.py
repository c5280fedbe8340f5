"""The prompt text that ``prompt_regex`` and ``prompt_contains`` rules look at.

:class:`PromptText` reads the request body only when a rule first asks, and only once,
so a config whose rules never look at the prompt routes without touching the messages.
"""

from __future__ import annotations

from typing import Any

from ferro import ChatRequest, CompletionsRequest, EmbeddingsRequest, OperationRequest

__all__ = ["SCOPES", "PromptText"]

#: What a rule's ``scope`` may say: the last user message, or every message.
SCOPES = ("last_user", "all")


class PromptText:
    """One request's prompt text, by scope, read from its body on first use.

    A chat request's ``last_user`` text is its last ``user`` message; ``all`` is every
    message's text, one message per line. A completions request's ``prompt`` and an
    embeddings request's ``input`` are one text for both scopes (a list of them joined
    one per line): there is no conversation to pick from. Token arrays carry no text and
    are left out, as are non-text content parts (images, audio).
    """

    __slots__ = ("_folded", "_messages", "_request", "_texts")

    def __init__(self, request: OperationRequest) -> None:
        self._request = request
        self._messages: list[tuple[str, str]] | None = None
        self._texts: dict[str, str] = {}
        self._folded: dict[str, str] = {}

    def text(self, scope: str) -> str:
        """The text of ``scope`` (one of :data:`SCOPES`)."""
        text = self._texts.get(scope)
        if text is None:
            messages = self._read()
            if scope == "all":
                text = "\n".join(t for _, t in messages if t)
            else:
                text = next((t for role, t in reversed(messages) if role == "user"), "")
            self._texts[scope] = text
        return text

    def folded(self, scope: str) -> str:
        """The text of ``scope`` case-folded, for case-insensitive substring tests."""
        folded = self._folded.get(scope)
        if folded is None:
            folded = self._folded[scope] = self.text(scope).casefold()
        return folded

    def _read(self) -> list[tuple[str, str]]:
        """Each message's role and text: the one walk over the request body."""
        if self._messages is None:
            self._messages = _messages_of(self._request)
        return self._messages


def _messages_of(request: OperationRequest) -> list[tuple[str, str]]:
    if isinstance(request, ChatRequest):
        return [(m.get("role", ""), _content_text(m.get("content")))
                for m in request.messages if isinstance(m, dict)]
    if isinstance(request, CompletionsRequest):
        return [("user", _joined(request.prompts))]
    if isinstance(request, EmbeddingsRequest):
        # Not ferro.embeddings.text_inputs: that refuses token arrays with a 400, and a
        # routing rule must not refuse a request a target would take.
        return [("user", _joined(request.inputs))]
    return []


def _content_text(content: Any) -> str:
    """A chat message's text: its string content, or its text parts one per line."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part["text"] for part in content
                         if isinstance(part, dict) and part.get("type") == "text"
                         and isinstance(part.get("text"), str))
    return ""


def _joined(items: list[Any]) -> str:
    return "\n".join(item for item in items if isinstance(item, str))
