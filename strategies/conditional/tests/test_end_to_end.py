"""The conditional strategy in the running gateway, over a real socket, with the official
``openai`` client: which target answered is the ``X-Gateway-Provider`` response header."""

from typing import Any

import pytest

CODE = r"```|\bdef |\bclass "

CONFIG: dict[str, Any] = {
    "providers": {"general": {"type": "stub", "reply": "general answer"},
                  "coder": {"type": "stub", "reply": "code answer"},
                  "ml": {"type": "stub", "reply": "ml answer"}},
    "targets": [{"virtual_key": "general"}, {"virtual_key": "coder"}, {"virtual_key": "ml"}],
    "strategy": {"mode": "conditional", "conditions": [
        {"key": "prompt_regex", "value": CODE, "target_key": "coder",
         "model": "codestral-latest"},
        {"key": "header", "header": "X-Team", "value": "ml", "target_key": "ml"},
    ]},
}

CODE_QUESTION = [{"role": "user", "content": "Why is this slow?\ndef fib(n): return fib(n-1)"}]
PLAIN_QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
async def client(openai_client, stub_plugins):
    return await openai_client(CONFIG, pm=stub_plugins)


@pytest.mark.parametrize(("messages", "provider", "model", "text"), [
    (CODE_QUESTION, "coder", "codestral-latest", "code answer"),
    (PLAIN_QUESTION, "general", "gpt-4o", "general answer"),
])
async def test_a_prompt_rule_routes_a_chat(client, messages, provider, model, text):
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o",
                                                                 messages=messages)
    assert raw.headers["x-gateway-provider"] == provider
    reply = raw.parse()
    assert reply.model == model
    assert reply.choices[0].message.content == text


@pytest.mark.parametrize(("messages", "provider", "model", "text"), [
    (CODE_QUESTION, "coder", "codestral-latest", "code answer"),
    (PLAIN_QUESTION, "general", "gpt-4o", "general answer"),
])
async def test_a_prompt_rule_routes_a_stream(client, messages, provider, model, text):
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=messages, stream=True)
    assert raw.headers["x-gateway-provider"] == provider
    streamed, models = "", set()
    async for chunk in raw.parse():
        models.add(chunk.model)
        streamed += "".join(choice.delta.content or "" for choice in chunk.choices)
    assert streamed.strip() == text
    assert models == {model}


@pytest.mark.parametrize(("team", "provider"), [("ml", "ml"), ("web", "general")])
async def test_a_header_rule_routes_by_a_request_header(client, team, provider):
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=PLAIN_QUESTION, extra_headers={"X-Team": team})
    assert raw.headers["x-gateway-provider"] == provider


async def test_a_code_question_wins_over_the_team_header(client):
    """The first matching rule wins: the prompt rule comes before the header rule."""
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=CODE_QUESTION, extra_headers={"X-Team": "ml"})
    assert raw.headers["x-gateway-provider"] == "coder"


async def test_the_go_versions_config_routes_unchanged(openai_client, stub_plugins):
    config = {"providers": {"openai": {"type": "stub"}, "anthropic": {"type": "stub"}},
              "targets": [{"virtual_key": "openai"}, {"virtual_key": "anthropic"}],
              "strategy": {"mode": "conditional", "conditions": [
                  {"key": "model_prefix", "value": "claude-", "target_key": "anthropic"}]}}
    client = await openai_client(config, pm=stub_plugins)
    for model, provider in [("claude-3-5-sonnet", "anthropic"), ("gpt-4o", "openai")]:
        raw = await client.chat.completions.with_raw_response.create(model=model,
                                                                     messages=PLAIN_QUESTION)
        assert raw.headers["x-gateway-provider"] == provider
