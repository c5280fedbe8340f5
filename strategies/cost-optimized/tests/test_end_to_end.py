"""The strategy in a running gateway, priced by the config's ``pricing`` section, over a
real socket, through the openai client."""

import openai
import pytest

MESSAGES = [{"role": "user", "content": "hi"}]


def config(cheap=None):
    return {
        "strategy": {"mode": "cost-optimized", "options": {"min_tier": "standard"}},
        "providers": {"dear": {"type": "stub", "reply": "dear answer"},
                      "cheap": {"type": "stub", "reply": "cheap answer", **(cheap or {})}},
        "targets": [{"virtual_key": "dear"}, {"virtual_key": "cheap"}],
        "pricing": {"dear/m": {"input": 5, "output": 15, "tier": "premium"},
                    "cheap/m": {"input": 0.5, "output": 1.5, "tier": "standard"}},
    }


async def ask(client, stream):
    """Who answered, and what it said."""
    raw = await client.chat.completions.with_raw_response.create(
        model="m", messages=MESSAGES, stream=stream)
    if stream:
        text = "".join([c.choices[0].delta.content or "" async for c in raw.parse()
                        if c.choices])
    else:
        text = raw.parse().choices[0].message.content
    return raw.headers["x-gateway-provider"], text.strip()


@pytest.mark.parametrize("stream", [False, True])
async def test_the_cheap_provider_answers(openai_client, stub_plugins, stream):
    client = await openai_client(config(), pm=stub_plugins)
    for _ in range(3):
        assert await ask(client, stream) == ("cheap", "cheap answer")


@pytest.mark.parametrize("stream", [False, True])
async def test_the_dear_provider_answers_when_the_cheap_one_fails(openai_client, stub_plugins,
                                                                  stream):
    client = await openai_client(config(cheap={"fail_status": 503}), pm=stub_plugins)
    assert await ask(client, stream) == ("dear", "dear answer")


async def test_nothing_meeting_the_floor_is_a_400(openai_client, stub_plugins):
    floor = config()
    floor["strategy"]["options"]["min_tier"] = "premium"
    floor["pricing"]["dear/m"]["tier"] = "standard"
    client = await openai_client(floor, pm=stub_plugins)
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.code == "no_target_meets_quality_floor"
