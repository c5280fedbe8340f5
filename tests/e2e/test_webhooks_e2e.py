"""Webhooks end to end: the gateway on a loopback socket, driven by the official ``openai``
client, in front of a failing upstream with a circuit breaker, posting to a local receiver
that checks every signature. The receiver's secret reaches the config through ``${ENV}``."""

import asyncio

import attrs
import openai
import orjson
import pytest
from aiohttp import web
from ferro import parse_config
from ferro_webhooks import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOKS,
    verify_signature,
)

SECRET = "e2e-webhook-secret"
MESSAGES = [{"role": "user", "content": "hi"}]


@attrs.define
class Post:
    headers: dict
    event: dict


class Receiver:
    """A webhook endpoint: refuses a POST whose signature does not verify (401), answers
    ``answers`` in turn and then 204, and, while ``gate`` is set and not open, holds each
    POST before answering."""

    def __init__(self, answers=(), gate=None):
        self.answers = list(answers)
        self.gate = gate
        self.posts: list[Post] = []
        self.refused = 0
        self.answered = 0

    async def handle(self, request):
        body = await request.read()
        if not verify_signature(SECRET, body, request.headers.get(TIMESTAMP_HEADER),
                                request.headers.get(SIGNATURE_HEADER)):
            self.refused += 1
            return web.Response(status=401)
        self.posts.append(Post(dict(request.headers), orjson.loads(body)))
        if self.gate is not None:
            await self.gate.wait()
        self.answered += 1
        return web.Response(status=self.answers.pop(0) if self.answers else 204)

    def events(self, event_type):
        return [p.event for p in self.posts if p.event["type"] == event_type]

    async def wait_for(self, event_type, count=1):
        for _ in range(300):
            if len(self.events(event_type)) >= count:
                return self.events(event_type)
            await asyncio.sleep(0.01)
        raise AssertionError(f"{event_type}: {len(self.events(event_type))} of {count} "
                             f"received; posts: {[p.event['type'] for p in self.posts]}")


async def down(request):
    return web.json_response({"error": {"message": "overloaded", "type": "server_error"}},
                             status=503)


@pytest.fixture
async def gateway(aiohttp_server, fake_upstream, ferro_server):
    """``await gateway(receiver, **delivery)``: a gateway whose one target always fails
    (its breaker opens after two failures), posting webhooks to ``receiver``; returns the
    server and an ``openai`` client for it."""
    clients = []

    async def start(receiver, **delivery):
        receiving = web.Application()
        receiving.router.add_post("/hooks", receiver.handle)
        hooks = await aiohttp_server(receiving)
        upstream = await fake_upstream({"POST /chat/completions": down})
        config = {
            "providers": {"primary": {"type": "openai", "api_key": "k",
                                      "base_url": upstream.url}},
            "targets": [{"virtual_key": "primary",
                         "circuit_breaker": {"failure_threshold": 2, "timeout": "60s"}}],
            "plugins": [{"name": "webhooks", "config": {
                "endpoints": [{"url": str(hooks.make_url("/hooks")),
                               "secret": "${WEBHOOK_SECRET}"}],
                "delivery": {"retry": {"backoff": "20ms", "jitter": 0}, **delivery}}}],
        }
        server = await ferro_server(parse_config(orjson.dumps(config).decode(), "gw.json",
                                                 env={"WEBHOOK_SECRET": SECRET}))
        client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="unused",
                                    max_retries=0)
        clients.append(client)
        return server, client

    yield start
    for client in clients:
        await client.close()


async def failed_call(client):
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    return info.value


async def test_a_failed_request_is_posted_signed(gateway):
    receiver = Receiver()
    _, client = await gateway(receiver)
    error = await failed_call(client)
    [event] = await receiver.wait_for("request.failed")
    data = event["data"]
    assert data["request_id"] == error.response.headers["X-Request-ID"]
    assert data["status"] == error.status_code >= 500
    assert (data["operation"], data["model"], data["provider"]) == ("chat", "gpt-4o", "primary")
    assert data["error"]["code"] == error.body["code"]
    assert data["error"]["message"] == error.body["message"]
    assert data["duration"] > 0
    [post] = receiver.posts
    assert post.headers[EVENT_ID_HEADER] == event["id"]
    assert post.headers[EVENT_TYPE_HEADER] == "request.failed"
    assert receiver.refused == 0
    assert b"unused" not in orjson.dumps(receiver.posts[0].event)  # the client's key


async def test_the_breaker_opening_is_posted(gateway):
    receiver = Receiver()
    _, client = await gateway(receiver)
    await failed_call(client)
    await failed_call(client)
    [opened] = await receiver.wait_for("circuit_breaker.opened")
    assert opened["data"] == {"provider": "primary", "from": "closed", "to": "open"}
    refused = await failed_call(client)  # the open breaker answers without the upstream
    failures = await receiver.wait_for("request.failed", 3)
    assert failures[-1]["data"]["status"] == refused.status_code
    assert len(receiver.events("circuit_breaker.opened")) == 1
    assert receiver.refused == 0


async def test_a_receiver_failing_twice_gets_the_event_on_the_third_try(gateway):
    receiver = Receiver(answers=[500, 500])
    server, client = await gateway(receiver)
    await failed_call(client)
    for _ in range(300):
        if receiver.answered == 3:
            break
        await asyncio.sleep(0.01)
    assert [p.event["type"] for p in receiver.posts] == ["request.failed"] * 3
    assert len({p.event["id"] for p in receiver.posts}) == 1  # one event, tried three times
    assert receiver.refused == 0  # each try signed
    [channel] = server.app[WEBHOOKS].outbox.channels
    for _ in range(100):
        if channel.delivered:
            break
        await asyncio.sleep(0.01)
    assert (channel.delivered, channel.failed) == (1, 0)


async def test_queued_events_are_delivered_on_shutdown(gateway):
    gate = asyncio.Event()
    receiver = Receiver(gate=gate)
    server, client = await gateway(receiver, senders=1, flush_timeout="5s")
    for _ in range(3):
        await failed_call(client)
    await asyncio.sleep(0.05)
    assert receiver.answered == 0  # the first POST is held; the rest are queued
    stopping = asyncio.create_task(server.close())
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.wait_for(stopping, 10)
    assert len(receiver.events("request.failed")) == 3
    assert len(receiver.events("circuit_breaker.opened")) == 1
    assert receiver.answered == 4
