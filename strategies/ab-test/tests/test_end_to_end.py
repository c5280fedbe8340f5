"""The strategy behind the gateway, with the official openai client over a real socket."""

from ferro.testing import stub_config
from ferro_strategy_ab_test.assignment import point_of

ARMS = {"A": ("a", "alpha"), "B": ("b", "beta")}  # arm: (target, model)
USERS = [f"user-{n}" for n in range(10)]
MESSAGES = [{"role": "user", "content": "hi"}]


def experiment():
    """Two stub targets, no API keys: callers are told apart by the request's ``user``."""
    config = stub_config("a", "b", strategy="ab-test")
    config["strategy"]["options"] = {"arms": [
        {"name": arm, "percent": 50, "target": target, "model": model}
        for arm, (target, model) in ARMS.items()]}
    return config


def arm_of(user):
    return "A" if point_of("ab", user) < 50 else "B"


async def test_a_user_lands_on_the_same_target_every_time(openai_client, stub_plugins):
    client = await openai_client(experiment(), pm=stub_plugins)
    assert {arm_of(u) for u in USERS} == set(ARMS), "the users must cover both arms"
    for user in USERS:
        target, model = ARMS[arm_of(user)]
        for _ in range(3):
            raw = await client.chat.completions.with_raw_response.create(
                model="m", messages=MESSAGES, user=user)
            reply = raw.parse()
            assert raw.headers["x-gateway-provider"] == target
            assert (reply.model, reply.choices[0].message.content) == (model, "stub answer")

            raw = await client.chat.completions.with_raw_response.create(
                model="m", messages=MESSAGES, user=user, stream=True)
            assert raw.headers["x-gateway-provider"] == target
            chunks = [chunk async for chunk in raw.parse()]
            assert {chunk.model for chunk in chunks} == {model}
            text = "".join(c.delta.content or "" for chunk in chunks for c in chunk.choices)
            assert text.strip() == "stub answer"


async def test_the_arm_is_named_in_the_reply_headers(openai_client, stub_plugins):
    client = await openai_client(experiment(), pm=stub_plugins)
    for user in USERS[:4]:
        raw = await client.chat.completions.with_raw_response.create(
            model="m", messages=MESSAGES, user=user)
        assert raw.headers.get("x-ferro-ab-arm") == arm_of(user)
        raw = await client.chat.completions.with_raw_response.create(
            model="m", messages=MESSAGES, user=user, stream=True)
        assert raw.headers.get("x-ferro-ab-arm") == arm_of(user)
        [_ async for _ in raw.parse()]
