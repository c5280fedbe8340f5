"""Legacy completions through a provider's chat API (ferro.completions)."""

import pytest
from ferro import ChatChunk, ChatResponse, CompletionsRequest, InvalidRequestError
from ferro.completions import (
    chat_requests_for,
    completions_via_chat,
    stream_completions_via_chat,
)


class Chatty:
    """A chat-only provider: answers "<prompt>!" n times, and streams it word by word."""

    name = "chatty"

    def __init__(self):
        self.seen = []

    async def chat(self, request):
        self.seen.append(request.body)
        prompt = request.messages[0]["content"]
        return ChatResponse({"id": "chatcmpl-abc", "created": 5, "model": "m", "choices": [
            {"index": j, "message": {"role": "assistant", "content": prompt + "!"},
             "finish_reason": "length"} for j in range(request.body.get("n") or 1)],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}})

    async def stream(self, request):
        self.seen.append(request.body)
        prompt = request.messages[0]["content"]
        yield ChatChunk({"model": "m", "choices": [{"index": 0, "delta": {"role": "assistant",
                                                                          "content": ""}}]})
        yield ChatChunk({"model": "m", "choices": [{"index": 0, "delta": {"content": prompt}}]})
        yield ChatChunk({"model": "m", "choices": [{"index": 0, "delta": {},
                                                    "finish_reason": "stop"}]})
        yield ChatChunk({"model": "m", "choices": [], "usage": {
            "prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


async def test_each_prompt_is_one_chat_call_and_choices_are_numbered_as_openai_does():
    provider = Chatty()
    answer = await completions_via_chat(provider, CompletionsRequest(
        {"model": "m", "prompt": ["a", "b"], "n": 2, "temperature": 0.5}))
    body = answer.body
    assert body["object"] == "text_completion" and body["id"] == "cmpl-abc"
    assert [(c["index"], c["text"], c["finish_reason"]) for c in body["choices"]] == [
        (0, "a!", "length"), (1, "a!", "length"), (2, "b!", "length"), (3, "b!", "length")]
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6}
    assert provider.seen[0] == {"model": "m", "n": 2, "temperature": 0.5, "max_tokens": 16,
                                "messages": [{"role": "user", "content": "a"}]}


async def test_streams_follow_each_other_with_usage_summed_at_the_end():
    provider = Chatty()
    chunks = [c.as_dict() async for c in stream_completions_via_chat(
        provider, CompletionsRequest({"model": "m", "prompt": ["x", "y"], "stream": True}))]
    assert [[(ch["index"], ch["text"], ch["finish_reason"]) for ch in c["choices"]]
            for c in chunks] == [[(0, "x", None)], [(0, "", "stop")], [(1, "y", None)],
                                 [(1, "", "stop")], []]
    assert chunks[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 2,
                                   "total_tokens": 4}
    assert all(c["object"] == "text_completion" for c in chunks)


@pytest.mark.parametrize(("field", "value"), [
    ("echo", True), ("suffix", "end"), ("logprobs", 0), ("best_of", 2),
    ("prompt", [[1, 2], [3]])])
def test_what_chat_cannot_express_is_a_400_naming_it(field, value):
    named = "token arrays in prompt" if field == "prompt" else field
    with pytest.raises(InvalidRequestError, match=f"chatty cannot express {named}"):
        chat_requests_for(CompletionsRequest({"model": "m", "prompt": "x", field: value}),
                          "chatty")
