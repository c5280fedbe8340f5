"""The one pipeline: every outcome makes exactly one exchange, operations are routed only to
targets that serve them, cancelled requests are no breaker success, and the request context
carries what strategies and plugins need (never the raw key)."""

import asyncio

import pytest
from ferro import CHAT, EMBEDDINGS, RejectedError, hookimpl
from ferro.app import PIPELINE
from ferro.testing import stub_config

CHAT_BODY = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


class Exchanges:
    def __init__(self):
        self.seen = []

    @hookimpl
    def exchange_completed(self, exchange):
        self.seen.append(exchange)


class Guard:
    """before_request: rejects a message that says 'forbidden'."""

    def __init__(self, options):
        pass

    async def before_request(self, ctx):
        if ctx.operation is CHAT and "forbidden" in ctx.request.messages[-1]["content"]:
            raise RejectedError("forbidden topic", code="content_blocked")


class Plugins:
    @hookimpl
    def register_plugins(self, register):
        register("guard", Guard)


@pytest.fixture
def exchanges(stub_plugins):
    listener = Exchanges()
    stub_plugins.register(listener, name="exchanges")
    stub_plugins.register(Plugins(), name="test-plugins")
    return listener


async def wait_for(condition, timeout=2.0):
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def outcome(ex):
    return (ex.operation, ex.status, ex.error.code if ex.error else None)


@pytest.mark.parametrize(("body", "path", "config", "expected"), [
    (CHAT_BODY, "/v1/chat/completions", {}, ("chat", 200, None)),
    ({**CHAT_BODY, "stream": True}, "/v1/chat/completions", {}, ("chat", 200, None)),
    ({"model": "m", "input": ["a", "b"]}, "/v1/embeddings", {}, ("embeddings", 200, None)),
    ({"model": "m", "prompt": "hi"}, "/v1/completions", {}, ("completions", 200, None)),
    (CHAT_BODY, "/v1/chat/completions", {"fail_status": 503},
     ("chat", 503, "upstream_unavailable")),
    ({"model": "m", "messages": [{"role": "user", "content": "forbidden"}]},
     "/v1/chat/completions", {}, ("chat", 400, "content_blocked")),
    ({"model": "m"}, "/v1/chat/completions", {}, ("chat", 400, "invalid_request")),
    ({"model": "m", "input": ""}, "/v1/embeddings", {}, ("embeddings", 400, "invalid_request")),
    ({**CHAT_BODY, "model": "unknown"}, "/v1/chat/completions", {"models": ["m"]},
     ("chat", 400, "model_not_found")),
])
async def test_each_outcome_is_exactly_one_exchange(ferro_client, stub_plugins, exchanges, body,
                                                    path, config, expected):
    cfg = stub_config("a", **config)
    cfg["plugins"] = [{"name": "guard"}]
    client = await ferro_client(cfg, pm=stub_plugins)
    resp = await client.post(path, json=body)
    await resp.read()
    assert resp.status == expected[1]
    await wait_for(lambda: exchanges.seen)
    await asyncio.sleep(0.05)
    assert [outcome(e) for e in exchanges.seen] == [expected]
    ex = exchanges.seen[0]
    assert ex.request_id == resp.headers["X-Request-ID"]
    assert ex.client_ip == "127.0.0.1"
    if expected[1] == 200:
        assert ex.provider == "a" and ex.targets == ["a"] and ex.attempts == 1
        assert ex.ttfb is not None and ex.usage.total_tokens > 0
    if expected[1] == 503:
        assert ex.provider == "a", "a failed exchange keeps its provider"


async def test_unauthenticated_and_too_large_are_exchanges(ferro_client, stub_plugins,
                                                           exchanges):
    cfg = stub_config("a")
    cfg["server"] = {"api_keys": ["sk-right"], "max_body_size": 2000}
    client = await ferro_client(cfg, pm=stub_plugins)
    resp = await client.post("/v1/chat/completions", json=CHAT_BODY)
    assert resp.status == 401
    resp = await client.post("/v1/chat/completions", json=CHAT_BODY,
                             headers={"Authorization": "Bearer sk-wrong"})
    assert resp.status == 401
    big = {**CHAT_BODY, "messages": [{"role": "user", "content": "x" * 5000}]}
    resp = await client.post("/v1/chat/completions", json=big,
                             headers={"Authorization": "Bearer sk-right"})
    assert resp.status == 413
    body = await resp.json()
    assert body["error"]["code"] == "request_too_large"
    assert resp.headers["x-should-retry"] == "false"
    resp = await client.post("/v1/chat/completions", json=CHAT_BODY,
                             headers={"Authorization": "Bearer sk-right"})
    assert resp.status == 200
    await wait_for(lambda: len(exchanges.seen) == 4)
    assert [(e.status, e.error.code if e.error else None) for e in exchanges.seen] == [
        (401, "invalid_api_key"), (401, "invalid_api_key"), (413, "request_too_large"),
        (200, None)]
    answered = exchanges.seen[3]
    assert answered.identity.key_id.startswith("cfg-")
    assert answered.identity.scopes == frozenset({"inference"})
    assert "sk-right" not in repr(answered), "no listener ever sees the raw key"
    assert exchanges.seen[2].identity == answered.identity
    assert {e.client_ip for e in exchanges.seen} == {"127.0.0.1"}, "rejected ones too"


async def test_refusals_at_the_edge_are_exchanges(ferro_client, stub_plugins, exchanges):
    client = await ferro_client(stub_config("a"), pm=stub_plugins)
    resp = await client.post("/v1/chat/completions", data=b'{"model": "m"}',
                             headers={"Content-Type": "text/plain"})
    assert resp.status == 415
    resp = await client.post("/v1/embeddings", json={"model": "m", "input": "x"},
                             headers={"Host": "attacker.example"})
    assert resp.status == 421
    await wait_for(lambda: len(exchanges.seen) == 2)
    assert [(e.operation, e.status, e.error.code) for e in exchanges.seen] == [
        ("chat", 415, "unsupported_media_type"), ("embeddings", 421, "host_not_allowed")]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_client_that_leaves_is_a_499_and_no_breaker_verdict(ferro_server, stub_plugins,
                                                                   exchanges, stream):
    import aiohttp

    cfg = stub_config("a", delay=0.3)
    cfg["targets"][0]["circuit_breaker"] = {"failure_threshold": 1, "success_threshold": 1,
                                            "timeout": "60s", "half_open_max_requests": 1}
    server = await ferro_server(cfg, pm=stub_plugins)
    breaker = server.app[PIPELINE].gateway.targets[0].breaker
    breaker._state = breaker.state.HALF_OPEN  # one probe allowed: a leak would block the next
    async with aiohttp.ClientSession() as session:
        with pytest.raises(asyncio.TimeoutError):
            async with session.post(server.make_url("/v1/chat/completions"),
                                    json={**CHAT_BODY, "stream": stream},
                                    timeout=aiohttp.ClientTimeout(total=0.1 if not stream
                                                                  else 0.45)) as resp:
                await resp.read()
    await wait_for(lambda: exchanges.seen)
    assert [(e.status, e.error.code) for e in exchanges.seen] == [(499, "client_closed")]
    assert breaker.state.name == "HALF_OPEN", "a cancelled call is neither success nor failure"
    assert breaker._in_flight == 0, "the half-open probe slot was released"


async def test_an_operation_a_provider_lacks_is_a_400_naming_both(ferro_client, stub_plugins):
    cfg = stub_config("groq", operations=["chat", "completions"])
    client = await ferro_client(cfg, pm=stub_plugins)
    resp = await client.post("/v1/embeddings", json={"model": "m", "input": "hi"})
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["message"] == "provider groq does not serve embeddings (model m)"
    assert error["code"] == "unsupported_operation"


async def test_only_targets_serving_the_operation_are_tried(ferro_client, stub_plugins,
                                                            exchanges):
    cfg = stub_config("chat-only", "embedder", strategy="fallback")
    cfg["providers"]["chat-only"]["operations"] = ["chat"]
    client = await ferro_client(cfg, pm=stub_plugins)
    resp = await client.post("/v1/embeddings", json={"model": "m", "input": ["a", "b"]})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["provider"] == "embedder"
    assert [d["index"] for d in body["data"]] == [0, 1]
    await wait_for(lambda: exchanges.seen)
    assert exchanges.seen[0].targets == ["embedder"]


async def test_strategies_see_the_caller_the_user_and_selected_headers(ferro_client, stub_plugins):
    seen = []

    class Spy:
        def __init__(self, config, targets):
            self.targets = targets

        async def route(self, ctx, attempt):
            seen.append((ctx.operation, ctx.model, ctx.user, dict(ctx.headers), ctx.identity))
            return await attempt(ctx.eligible(self.targets)[0])

    class SpyPlugin:
        @hookimpl
        def register_strategies(self, register):
            register("spy", Spy)

    stub_plugins.register(SpyPlugin(), name="spy")
    cfg = stub_config("a", strategy="spy")
    cfg["server"] = {"api_keys": ["sk-1"]}
    client = await ferro_client(cfg, pm=stub_plugins)
    resp = await client.post("/v1/embeddings", json={"model": "m", "input": "x", "user": "u-7"},
                             headers={"Authorization": "Bearer sk-1", "X-Tenant": "acme",
                                      "x-api-key": "secret-2", "User-Agent": "tests"})
    assert resp.status == 200
    operation, model, user, headers, identity = seen[0]
    assert (operation, model, user) == (EMBEDDINGS, "m", "u-7")
    assert headers["x-tenant"] == "acme" and headers["user-agent"] == "tests"
    assert "authorization" not in headers and "x-api-key" not in headers
    assert identity.name == "server.api_keys[0]"


async def test_retries_apply_to_every_operation(ferro_client, stub_plugins, exchanges):
    cfg = stub_config("flaky", "good", strategy="fallback", fail_status=None)
    cfg["providers"]["flaky"]["fail_status"] = 503
    cfg["targets"][0]["retry"] = {"attempts": 3, "backoff": "1ms", "max_backoff": "2ms"}
    client = await ferro_client(cfg, pm=stub_plugins)
    for path, body in (("/v1/embeddings", {"model": "m", "input": "x"}),
                       ("/v1/completions", {"model": "m", "prompt": "x", "stream": True})):
        resp = await client.post(path, json=body)
        assert resp.status == 200
        await resp.read()
    await wait_for(lambda: len(exchanges.seen) == 2)
    assert [(e.targets, e.attempts, e.provider) for e in exchanges.seen] == [
        (["flaky", "good"], 4, "good"), (["flaky", "good"], 4, "good")]


async def test_a_new_endpoint_is_a_codec_and_a_provider_method(ferro_client, stub_plugins,
                                                               exchanges):
    """An operation with no model and a wire format of its own (plain text) goes through the
    same pipeline: strategy, attempts, plugins and exactly one exchange."""
    import attrs
    from aiohttp import web
    from ferro import Answer, Operation, OperationRequest
    from ferro.testing import StubProvider

    shout = Operation("shout", call="shout")

    @attrs.define
    class ShoutRequest(OperationRequest):
        operation = shout

    class Shouter(StubProvider):
        async def shout(self, request):
            return Answer({"text": request.body["text"].upper(), "provider": self.name})

    class TextCodec:
        operation = shout

        def parse(self, raw):
            return ShoutRequest({"text": raw.decode()})

        def answer(self, answer, headers):
            return web.Response(text=answer.body["text"])

        def error(self, exc):
            return web.Response(status=exc.status, text=exc.message)

    class Route:
        @hookimpl
        def register_providers(self, register):
            register("shouter", Shouter)

        @hookimpl
        def configure_app(self, app):
            async def handler(request):
                return await request.app[PIPELINE].serve(request, TextCodec())

            app.router.add_post("/shout", handler)

    stub_plugins.register(Route(), name="route")
    cfg = {"providers": {"loud": {"type": "shouter", "operations": ["shout"]}},
           "targets": [{"virtual_key": "loud"}]}
    client = await ferro_client(cfg, pm=stub_plugins)
    resp = await client.post("/shout", data=b"hello")
    assert (resp.status, await resp.text()) == (200, "HELLO")
    await wait_for(lambda: exchanges.seen)
    assert [(e.operation, e.model, e.provider, e.status) for e in exchanges.seen] == [
        ("shout", "", "loud", 200)]
