"""The strategy in a running gateway, over a real socket, through the openai client."""

from collections import Counter

import pytest

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("stream", [False, True])
async def test_requests_go_to_the_fast_provider(openai_client, stub_plugins, stream):
    config = {
        "strategy": {"mode": "least-latency",
                     "options": {"explore": 0, "stale_after": "5m", "measure": "ewma"}},
        "providers": {"slow": {"type": "stub", "delay": 0.02}, "fast": {"type": "stub"}},
        "targets": [{"virtual_key": "slow"}, {"virtual_key": "fast"}],
    }
    client = await openai_client(config, pm=stub_plugins)
    answered = []
    for _ in range(8):
        raw = await client.chat.completions.with_raw_response.create(
            model="m", messages=MESSAGES, stream=stream)
        answered.append(raw.headers["x-gateway-provider"])
        if stream:
            text = "".join([c.choices[0].delta.content or "" async for c in raw.parse()
                            if c.choices])
        else:
            text = raw.parse().choices[0].message.content
        assert text.strip() == "stub answer"
    assert answered[:2] == ["slow", "fast"]  # each measured once, in config order
    assert Counter(answered) == {"fast": 7, "slow": 1}
