"""The HTTP surface: validation, the error schema, request ids, body limit, CORS, auth."""

import pytest
from ferro import make_plugin_manager

ECHO = {"providers": {"echo": {"type": "echo"}}, "targets": [{"virtual_key": "echo"}]}
HELLO = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


def assert_error_schema(body, status_type, code):
    assert set(body) == {"error"}
    assert set(body["error"]) >= {"message", "type", "code"}
    assert body["error"]["type"] == status_type
    assert body["error"]["code"] == code
    assert body["error"]["message"]


@pytest.mark.parametrize(("payload", "message"), [
    ({"messages": [{"role": "user", "content": "x"}]}, "model is required"),
    ({"model": "m", "messages": []}, "at least one message is required"),
    ({"model": "m"}, "at least one message is required"),
    ({**HELLO, "temperature": 2.5}, "temperature must be between 0 and 2"),
    ({**HELLO, "temperature": "hot"}, "temperature must be between 0 and 2"),
    ({**HELLO, "top_p": 1.5}, "top_p must be between 0 and 1"),
    ({**HELLO, "max_tokens": 0}, "max_tokens must be positive"),
    ({**HELLO, "max_tokens": 2.5}, "max_tokens must be an integer"),
    ({**HELLO, "max_completion_tokens": -3}, "max_completion_tokens must be positive"),
    ({**HELLO, "presence_penalty": 3}, "presence_penalty must be between -2 and 2"),
    ({**HELLO, "frequency_penalty": -2.5}, "frequency_penalty must be between -2 and 2"),
    ({**HELLO, "stream": "yes"}, "stream must be true or false"),
    ({**HELLO, "stop": [1, 2]}, "stop must be a string or an array of strings"),
    ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content is required"),
    ({"model": "m", "messages": [{"role": "tool", "content": "x"}]},
     "messages[0].tool_call_id is required"),
    ({**HELLO, "tools": [{"type": "function", "function": {}}]},
     "tools[0].function.name is required"),
    ({"model": 5, "messages": [{"role": "user", "content": "x"}]}, "model must be a string"),
])
async def test_invalid_requests_are_400_with_a_precise_message(ferro_client, payload, message):
    client = await ferro_client(ECHO)
    resp = await client.post("/v1/chat/completions", json=payload)
    assert resp.status == 400
    assert resp.headers["x-should-retry"] == "false"
    body = await resp.json()
    assert_error_schema(body, "invalid_request_error", "invalid_request")
    assert message in body["error"]["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1,2]", b"\xff\xfe"])
async def test_malformed_body_is_400_not_500(ferro_client, raw):
    client = await ferro_client(ECHO)
    resp = await client.post("/v1/chat/completions", data=raw,
                             headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert_error_schema(await resp.json(), "invalid_request_error", "invalid_request")


async def test_unknown_route_and_wrong_method_use_the_error_schema(ferro_client):
    client = await ferro_client(ECHO)
    resp = await client.get("/v1/nothing-here")
    assert resp.status == 404
    body = await resp.json()
    assert_error_schema(body, "invalid_request_error", "not_found")
    assert "POST /v1/embeddings" in body["error"]["message"]
    assert "POST /v1/chat/completions" in body["error"]["message"]
    assert resp.headers["x-should-retry"] == "false"
    bare = await ferro_client(ECHO, pm=make_plugin_manager(
        env={"FERRO_DISABLE_PLUGINS": "metrics-prometheus"}))
    resp = await bare.get("/metrics")
    assert resp.status == 404
    assert "install ferro-metrics-prometheus" in (await resp.json())["error"]["message"]
    resp = await client.get("/v1/chat/completions")
    assert resp.status == 405
    body = await resp.json()
    assert_error_schema(body, "invalid_request_error", "method_not_allowed")
    assert body["error"]["message"] == ("GET is not allowed on /v1/chat/completions "
                                        "(allowed: POST)")
    assert resp.headers["x-should-retry"] == "false"


async def test_body_limit_is_413(ferro_client):
    client = await ferro_client({**ECHO, "server": {"max_body_size": 1000}})
    big = {"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]}
    resp = await client.post("/v1/chat/completions", json=big)
    assert resp.status == 413
    assert_error_schema(await resp.json(), "invalid_request_error", "request_too_large")
    resp = await client.post("/v1/chat/completions", json=HELLO)
    assert resp.status == 200


async def test_request_id_is_echoed_or_generated(ferro_client):
    client = await ferro_client(ECHO)
    resp = await client.post("/v1/chat/completions", json=HELLO,
                             headers={"X-Request-ID": "trace-123"})
    assert resp.headers["X-Request-ID"] == "trace-123"
    resp = await client.get("/health")
    generated = resp.headers["X-Request-ID"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    resp = await client.get("/nope")
    assert resp.headers["X-Request-ID"]
    resp = await client.post("/v1/chat/completions", json=HELLO, headers={"Accept": "x"})
    assert resp.headers["X-Request-ID"] != generated


def stamping_plugin(*, middleware: bool = False):
    """A plugin adding routes that return a response, raise an HTTP exception, and answer
    in the error schema; with ``middleware``, a middleware that answers ``/early`` itself."""
    from aiohttp import web
    from ferro import hookimpl, public_route

    @public_route
    async def plain(request):
        return web.json_response({"ok": True})

    @public_route
    async def moved(request):
        raise web.HTTPFound("/elsewhere")

    @web.middleware
    async def early(request, handler):
        if request.path == "/early":
            return web.Response(text="early")
        return await handler(request)

    class Routes:
        @hookimpl
        def configure_app(self, app):
            app.router.add_get("/plain", plain)
            app.router.add_get("/moved", moved)
            if middleware:
                app.middlewares.append(early)

    return Routes()


@pytest.mark.parametrize("middleware", [False, True])
async def test_every_response_is_stamped_with_request_id_server_and_cors(ferro_client,
                                                                         middleware):
    pm = make_plugin_manager(env={"FERRO_LOAD_PLUGINS": "echo,single"})
    pm.register(stamping_plugin(middleware=middleware), name="stamping")
    client = await ferro_client({**ECHO, "server": {"cors_origins": ["https://app.example"]}},
                                pm=pm)
    origin = {"Origin": "https://app.example", "X-Request-ID": "r-9"}
    answers = [await client.post("/v1/chat/completions", json=HELLO, headers=origin),
               await client.post("/v1/chat/completions", json={**HELLO, "stream": True},
                                 headers=origin),
               await client.post("/v1/chat/completions", json={"model": "m"}, headers=origin),
               await client.get("/plain", headers=origin),
               await client.get("/moved", headers=origin, allow_redirects=False),
               await client.get("/health/live", headers=origin),
               await client.get("/nowhere", headers=origin)]
    if middleware:
        answers.append(await client.get("/early", headers=origin))
    assert [resp.status for resp in answers][:5] == [200, 200, 400, 200, 302]
    for resp in answers:
        assert resp.headers["X-Request-ID"] == "r-9", resp.url
        assert resp.headers["Server"] == "ferro"
        assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"


async def test_no_cors_headers_unless_configured(ferro_client):
    client = await ferro_client(ECHO)
    resp = await client.post("/v1/chat/completions", json=HELLO,
                             headers={"Origin": "https://app.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_cors_allow_list(ferro_client):
    client = await ferro_client({**ECHO, "server": {"cors_origins": ["https://app.example"]}})
    resp = await client.options("/v1/chat/completions", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    resp = await client.post("/v1/chat/completions", json=HELLO,
                             headers={"Origin": "https://app.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
    resp = await client.post("/v1/chat/completions", json=HELLO,
                             headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_bearer_keys_guard_every_route_but_the_probes(ferro_client):
    client = await ferro_client({**ECHO, "server": {"api_keys": ["sk-good"]}})
    resp = await client.post("/v1/chat/completions", json=HELLO)
    assert resp.status == 401
    assert_error_schema(await resp.json(), "authentication_error", "invalid_api_key")
    resp = await client.post("/v1/chat/completions", json=HELLO,
                             headers={"Authorization": "Bearer sk-bad"})
    assert resp.status == 401
    resp = await client.post("/v1/chat/completions", json=HELLO,
                             headers={"Authorization": "Bearer sk-good"})
    assert resp.status == 200
    resp = await client.get("/v1/models")
    assert resp.status == 401
    resp = await client.get("/health")
    assert resp.status == 401
    resp = await client.get("/health/live")
    assert resp.status == 200


async def test_models_lists_every_provider_and_aliases(ferro_client):
    client = await ferro_client({
        "providers": {"echo": {"type": "echo", "models": ["echo-a", "echo-b"]}},
        "targets": [{"virtual_key": "echo"}], "aliases": {"fast": "echo-a"}})
    body = await (await client.get("/v1/models")).json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert ids == ["echo-a", "echo-b", "fast"]
    assert body["data"][0] == {"id": "echo-a", "object": "model", "created": 0, "owned_by": "echo"}


async def test_health(ferro_client):
    client = await ferro_client(ECHO)
    body = await (await client.get("/health")).json()
    assert body == {"status": "ok", "providers": [
        {"name": "echo", "status": "available", "models": 1, "breaker": "closed",
         "operations": ["chat", "completions", "embeddings"]}]}
    deep = await (await client.get("/health?deep=1")).json()
    assert deep["status"] == "ok"


async def test_alias_resolves_before_routing(ferro_client):
    client = await ferro_client({**ECHO, "aliases": {"fast": "echo-fast-1"}})
    resp = await client.post("/v1/chat/completions", json={**HELLO, "model": "fast"})
    assert (await resp.json())["model"] == "echo-fast-1"


async def test_model_no_target_serves_is_model_not_found(ferro_client):
    client = await ferro_client({
        "providers": {"echo": {"type": "echo", "models": ["only-this"]}},
        "targets": [{"virtual_key": "echo"}], "strategy": {"mode": "fallback"}})
    resp = await client.post("/v1/chat/completions", json={**HELLO, "model": "other"})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["code"] == "model_not_found"
    assert body["error"]["message"] == "no provider supports model: other"


async def test_no_config_serves_env_providers_or_echo(ferro_client, fake_upstream):
    client = await ferro_client({})
    resp = await client.post("/v1/chat/completions", json=HELLO)
    assert (await resp.json())["provider"] == "echo"
    upstream = await fake_upstream({"POST /v1/chat/completions": {
        "id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "from openai"},
                     "finish_reason": "stop"}]}})
    client = await ferro_client({"strategy": {"mode": "fallback"}}, env={
        "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": upstream.url + "/v1"})
    resp = await client.post("/v1/chat/completions", json={**HELLO, "model": "gpt-4o"})
    body = await resp.json()
    assert body["provider"] == "openai"
    assert body["choices"][0]["message"]["content"] == "from openai"
    assert upstream.requests[0].headers["Authorization"] == "Bearer sk-test"


async def test_models_answers_with_static_lists_when_discovery_hangs(
        ferro_client, fake_upstream, monkeypatch):
    import asyncio

    from aiohttp import web
    from ferro import BaseProvider

    async def hang(request):
        await asyncio.sleep(5)
        return web.json_response({"data": []})

    monkeypatch.setattr(BaseProvider, "discovery_timeout", 0.2)
    upstream = await fake_upstream({"GET /v1/models": hang})
    client = await ferro_client({"providers": {"openai": {"api_key": "k",
                                                          "base_url": upstream.url + "/v1"}}})
    resp = await asyncio.wait_for(client.get("/v1/models"), 3)
    ids = [m["id"] for m in (await resp.json())["data"]]
    assert "gpt-4o-mini" in ids


@pytest.mark.parametrize(("upstream_status", "status", "kind", "code"), [
    (429, 429, "rate_limit_error", "rate_limit_exceeded"),
    (401, 502, "api_error", "upstream_auth_error"),  # the gateway's key, not the caller's
    (503, 503, "api_error", "upstream_unavailable"),
])
async def test_upstream_errors_keep_status_headers_and_schema(ferro_client, fake_upstream,
                                                              upstream_status, status, kind,
                                                              code):
    from aiohttp import web

    async def fail(request):
        return web.json_response({"error": {"message": "upstream says no"}},
                                 status=upstream_status, headers={"Retry-After": "9"})

    upstream = await fake_upstream({"POST /v1/chat/completions": fail})
    client = await ferro_client({"providers": {"openai": {"api_key": "k",
                                                          "base_url": upstream.url + "/v1"}}})
    resp = await client.post("/v1/chat/completions", json={**HELLO, "model": "gpt-4o"})
    assert resp.status == status
    assert resp.headers["Retry-After"] == "9"
    assert resp.headers["x-should-retry"] == ("false" if upstream_status == 401 else "true")
    body = await resp.json()
    assert_error_schema(body, kind, code)
    assert body["error"]["message"].endswith("openai: upstream says no")


def test_nothing_to_serve_is_a_clear_start_up_error(ferro_app):
    from ferro import ConfigError, make_plugin_manager

    pm = make_plugin_manager(env={"FERRO_LOAD_PLUGINS": "single,fallback,openai"})
    with pytest.raises(ConfigError, match=r"no provider is configured: set a provider's API key "
                                          r"\(OPENAI_API_KEY\)"):
        ferro_app({"strategy": {"mode": "fallback"}}, pm=pm)


async def test_exchange_carries_usage_and_provider_of_a_json_answer(ferro_client):
    from ferro import hookimpl, make_plugin_manager

    seen = []

    class Listener:
        @hookimpl
        def exchange_completed(self, exchange):
            seen.append((exchange.provider, exchange.stream, exchange.status,
                         exchange.usage.total_tokens, exchange.request_id))

    pm = make_plugin_manager(env={})
    pm.register(Listener(), name="listener")
    client = await ferro_client(ECHO, pm=pm)
    await client.post("/v1/chat/completions", json=HELLO, headers={"X-Request-ID": "r-1"})
    assert seen == [("echo", False, 200, 3, "r-1")]


async def test_deep_health_reports_an_unreachable_provider(ferro_client, unused_tcp_port):
    client = await ferro_client({
        "providers": {"echo": {"type": "echo"},
                      "openai": {"api_key": "k",
                                 "base_url": f"http://127.0.0.1:{unused_tcp_port}/v1"}},
        "strategy": {"mode": "fallback"}})
    shallow = await (await client.get("/health")).json()
    assert shallow["status"] == "ok"  # no upstream is called without ?deep
    deep = await (await client.get("/health?deep=1")).json()
    assert deep["status"] == "degraded"
    by_name = {p["name"]: p for p in deep["providers"]}
    assert by_name["echo"]["status"] == "available"
    assert by_name["openai"]["status"] == "unavailable"
    assert "cannot reach openai" in by_name["openai"]["message"]


@pytest.mark.parametrize(("payload", "param"), [
    ({"model": "m", "messages": [{"role": ["user"], "content": "x"}]}, "messages[0].role"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
     "messages[0].content[0].text"),
    ({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": 5}}]}]}, "messages[0].content[0].image_url.url"),
    ({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
        {"id": 5, "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]},
     "messages[0].tool_calls[0]"),
    ({**HELLO, "response_format": {"type": "json_schema", "json_schema": 5}},
     "response_format.json_schema"),
    ({**HELLO, "tool_choice": {"type": "function", "function": {}}}, "tool_choice.function.name"),
    ({**HELLO, "reasoning_effort": ["low"]}, "reasoning_effort"),
    ({**HELLO, "tools": [{"type": "function", "function": {"name": "f", "parameters": 5}}]},
     "tools[0].function.parameters"),
])
async def test_malformed_fields_are_400_naming_the_field(ferro_client, payload, param):
    client = await ferro_client(ECHO)
    resp = await client.post("/v1/chat/completions", json=payload)
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == param


async def test_upstream_rate_limit_and_request_id_headers_reach_the_client(ferro_client,
                                                                           fake_upstream):
    from aiohttp import web

    async def answer(request):
        return web.json_response(
            {"id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                          "finish_reason": "stop"}]},
            headers={"x-ratelimit-remaining-requests": "41", "x-request-id": "req_up_1",
                     "x-ratelimit-reset-tokens": "6ms", "set-cookie": "secret=1"})

    up = await fake_upstream({"POST /chat/completions": answer})
    client = await ferro_client({"providers": {"openai": {"api_key": "k", "base_url": up.url}}})
    resp = await client.post("/v1/chat/completions", headers={"X-Request-ID": "mine"},
                             json={"model": "gpt-4o",
                                   "messages": [{"role": "user", "content": "hi"}]})
    await resp.read()
    assert resp.headers["x-ratelimit-remaining-requests"] == "41"
    assert resp.headers["x-ratelimit-reset-tokens"] == "6ms"
    assert resp.headers["x-upstream-request-id"] == "req_up_1"
    assert resp.headers["X-Request-ID"] == "mine"
    assert resp.headers["X-Gateway-Provider"] == "openai"  # the Go version's header
    assert "set-cookie" not in resp.headers


async def test_upstream_headers_reach_a_streaming_client(ferro_client, fake_upstream):
    from aiohttp import web
    from ferro.testing import sse_body

    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
             "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}

    async def stream(request):
        return web.Response(body=sse_body(chunk, b"[DONE]"), content_type="text/event-stream",
                            headers={"x-ratelimit-limit-requests": "500",
                                     "x-request-id": "req_up_2"})

    up = await fake_upstream({"POST /chat/completions": stream})
    client = await ferro_client({"providers": {"openai": {"api_key": "k", "base_url": up.url}}})
    resp = await client.post("/v1/chat/completions", json={
        "model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    assert (await resp.text()).endswith("data: [DONE]\n\n")
    assert resp.headers["x-ratelimit-limit-requests"] == "500"
    assert resp.headers["x-upstream-request-id"] == "req_up_2"
    assert resp.headers["X-Gateway-Provider"] == "openai"
