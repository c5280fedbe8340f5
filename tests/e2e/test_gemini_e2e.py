"""End to end: the official openai client -> the gateway on a real socket -> the gemini
provider -> a local fake of Gemini's native API (generateContent / streamGenerateContent)."""

import json

import openai
import pytest
from aiohttp import web
from ferro.testing import single_provider, sse_body

MODEL = "gemini-2.5-flash"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object",
                   "properties": {"city": {"type": "string"},
                                  "unit": {"type": ["string", "null"],
                                           "enum": ["c", "f", None]}},
                   "required": ["city"], "additionalProperties": False}}}]
MESSAGES = [
    {"role": "system", "content": "You are a weather bot."},
    {"role": "user", "content": [
        {"type": "text", "text": "What is the weather where this photo was taken?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
]
USAGE = {"promptTokenCount": 40, "candidatesTokenCount": 10, "thoughtsTokenCount": 5,
         "cachedContentTokenCount": 8, "totalTokenCount": 55}
CALL = {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "c"}},
        "thoughtSignature": "c2lnbmF0dXJl"}


def reply(parts, finish="STOP", usage=USAGE):
    out = {"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
           "modelVersion": MODEL, "responseId": "gem-resp-1"}
    if finish:
        out["candidates"][0]["finishReason"] = finish
    if usage:
        out["usageMetadata"] = usage
    return out


def answers_for(body):
    """The fake Gemini: a tool call first; once the tool result is back, the answer."""
    turns = body["contents"]
    if any("functionResponse" in p for p in turns[-1]["parts"]):
        return [[{"text": "It is "}], [{"text": "21°C in Paris."}]]
    return [[{"text": "Let me check.", "thought": True}], [{"text": "Checking."}, CALL]]


async def gemini(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    parts = answers_for(body)
    if request.path.endswith(":streamGenerateContent"):
        events = [reply(p, None, {"promptTokenCount": 40, "totalTokenCount": 40})
                  for p in parts[:-1]]
        events.append(reply(parts[-1]))
        return web.Response(body=sse_body(*events), content_type="text/event-stream")
    return web.json_response(reply([p for chunk in parts for p in chunk]))


@pytest.fixture
async def client(fake_upstream, openai_client):
    upstream = await fake_upstream({"POST /v1beta/models/{call}": gemini})
    return await openai_client(single_provider(
        "gemini", type="gemini", api_key="k", base_url=upstream.url)), upstream


def check_native_request(sent):
    assert sent["systemInstruction"] == {"parts": [{"text": "You are a weather bot."}]}
    assert sent["contents"][0] == {"role": "user", "parts": [
        {"text": "What is the weather where this photo was taken?"},
        {"inlineData": {"mimeType": "image/png", "data": PNG}}]}
    assert sent["tools"] == [{"functionDeclarations": [{
        "name": "get_weather", "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["c", "f"], "nullable": True}},
            "required": ["city"]}}]}]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert sent["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 300}


async def test_tool_call_answer(client):
    c, upstream = client
    response = await c.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=TOOLS, tool_choice="auto", temperature=0.2,
        max_tokens=300)
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    (call,) = choice.message.tool_calls
    assert call.id and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "c"}
    assert call.model_extra["extra_content"] == {"google": {"thought_signature": "c2lnbmF0dXJl"}}
    assert response.usage.prompt_tokens == 40
    assert response.usage.completion_tokens == 15
    assert response.usage.total_tokens == 55
    assert response.usage.prompt_tokens_details.cached_tokens == 8
    assert response.usage.completion_tokens_details.reasoning_tokens == 5
    sent = upstream.requests[0]
    assert sent.path == f"/v1beta/models/{MODEL}:generateContent"
    assert sent.headers["x-goog-api-key"] == "k" and "key" not in sent.query
    check_native_request(sent.json())


async def test_tool_call_answer_streamed(client):
    c, upstream = client
    stream = await c.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=TOOLS, tool_choice="auto", temperature=0.2,
        max_tokens=300, stream=True, stream_options={"include_usage": True})
    text, calls, finishes, usage = "", {}, [], None
    async for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for tc in choice.delta.tool_calls or ():
                slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] += tc.id or ""
                slot["name"] += (tc.function.name or "") if tc.function else ""
                slot["arguments"] += (tc.function.arguments or "") if tc.function else ""
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    assert text == "Checking."  # the thought part is not part of the answer
    assert list(calls) == [0]
    assert calls[0]["id"] and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "c"}
    assert finishes == ["tool_calls"]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (40, 15, 55)
    assert usage.completion_tokens_details.reasoning_tokens == 5
    sent = upstream.requests[0]
    assert sent.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert sent.query == {"alt": "sse"}
    check_native_request(sent.json())


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_round_trip(client, stream):
    c, upstream = client
    first = await c.chat.completions.create(model=MODEL, messages=MESSAGES, tools=TOOLS)
    assistant = first.choices[0].message
    messages = [*MESSAGES, assistant.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": assistant.tool_calls[0].id,
                 "content": json.dumps({"temp_c": 21})}]
    if stream:
        chunks = [ch async for ch in await c.chat.completions.create(
            model=MODEL, messages=messages, tools=TOOLS, stream=True)]
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        finish = [ch.choices[0].finish_reason for ch in chunks
                  if ch.choices and ch.choices[0].finish_reason]
        assert not any(ch.usage for ch in chunks)  # not asked for: the kernel drops it
    else:
        second = await c.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
        text, finish = second.choices[0].message.content, [second.choices[0].finish_reason]
    assert text == "It is 21°C in Paris."
    assert finish == ["stop"]
    sent = upstream.requests[-1].json()["contents"]
    assert [t["role"] for t in sent] == ["user", "model", "user"]
    assert sent[1]["parts"] == [
        {"text": "Checking."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "c"}},
         "thoughtSignature": "c2lnbmF0dXJl"}]
    assert sent[2]["parts"] == [{"functionResponse": {"name": "get_weather",
                                                      "response": {"temp_c": 21}}}]


async def test_a_refused_field_is_a_400_the_client_can_read(client):
    c, upstream = client
    with pytest.raises(openai.BadRequestError) as info:
        await c.chat.completions.create(model=MODEL, messages=MESSAGES, logit_bias={"1": 5})
    assert "logit_bias" in info.value.message
    assert upstream.requests == []
