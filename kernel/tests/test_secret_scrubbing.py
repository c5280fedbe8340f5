"""The operator's provider credentials never reach a client or a log: what upstreams say is
scrubbed of every configured secret (by value) and of anything shaped like a credential,
in errors streamed and not and in relayed headers; log lines are scrubbed of the secrets
of every config applied, at start-up and on reload. An upstream that refuses the
gateway's key is a 502 ``upstream_auth_error``, never the caller's 401."""

import io
import logging
import secrets
import sys

import orjson
import pytest
from aiohttp import web
from ferro.app import reload
from ferro.logs import JSONFormatter, TextFormatter
from ferro.redaction import MASK, Secrets, scrub
from ferro.testing import as_config

HELLO = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def new_secret(prefix="opk"):
    """A key no credential pattern matches: only its configured value can hide it."""
    return f"{prefix}{secrets.token_hex(12)}"


def providers(**urls_and_keys):
    return {name: {"type": "openai", "api_key": key, "base_url": url}
            for name, (url, key) in urls_and_keys.items()}


def quoting(text, status=400):
    async def handler(request):
        return web.json_response({"error": {"message": text}}, status=status,
                                 headers={"Retry-After": "1", "x-ratelimit-remaining": text})

    return handler


def test_learned_values_are_hidden_and_short_ones_are_not_learned():
    known = Secrets()
    key, token, password = new_secret(), new_secret("tok"), new_secret("pw")
    known.learn_provider(key, {"X-Upstream-Token": f"Bearer {token}", "OpenAI-Beta": "v2-assist"},
                         f"https://gw:{password}@llm.example/v1")
    text = f"key {key}, token {token}, password {password}, beta v2-assist"
    assert known.scrub(text) == f"key {MASK}, token {MASK}, password {MASK}, beta v2-assist"
    known.learn(["short"])
    assert "short" not in known.values


@pytest.mark.parametrize(("text", "kept"), [
    ("Authorization: Bearer sk-live-1234567890abcdef", "Authorization: Bearer "),
    ("got Bearer abcdefghijklmnopqrstu", "got Bearer "),
    ("Incorrect API key provided: sk-proj-abcdefghijklmnop1234", "Incorrect API key provided: "),
    ("GET /v1beta/models?alt=sse&key=AIzaSyD-secret-value", "GET /v1beta/models?alt=sse&key="),
    ('{"api_key": "gsk_0123456789"}', '{"api_key": "'),
    ("id AKIAIOSFODNN7EXAMPLE in use", "id "),
    ("key AIzaSyA12345678901234567890123456789012", "key "),
])
def test_credential_shapes_are_hidden(text, kept):
    cleaned = scrub(text)
    assert cleaned.startswith(kept) and MASK in cleaned
    assert cleaned != text


def test_the_gateways_own_hints_are_left_alone():
    hint = "missing API key: send it as 'Authorization: Bearer <key>'"
    assert scrub(hint) == hint


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_an_upstream_quoting_any_configured_key_is_scrubbed(ferro_client, fake_upstream,
                                                                  stream):
    mine, other = new_secret(), new_secret()
    up = await fake_upstream({"POST /chat/completions": quoting(
        f"received Authorization=Bearer {mine}; also saw {other}", status=429)})
    idle = await fake_upstream({})
    client = await ferro_client({"providers": providers(a=(up.url, mine), b=(idle.url, other)),
                                 "targets": [{"virtual_key": "a"}]})
    resp = await client.post("/v1/chat/completions", json={**HELLO, "stream": stream})
    body = await resp.read()
    assert resp.status == 429
    for secret in (mine, other):
        assert secret.encode() not in body
        assert all(secret not in v for v in resp.headers.values())
    assert b"received Authorization=Bearer [REDACTED]" in body


async def test_a_key_quoted_inside_a_stream_is_scrubbed(ferro_client, fake_upstream):
    key = new_secret()

    async def handler(request):
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                 "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}
        error = {"error": {"message": f"key {key} was revoked mid-stream"}}
        return web.Response(body=b"data: " + orjson.dumps(chunk) + b"\n\ndata: "
                            + orjson.dumps(error) + b"\n\n", content_type="text/event-stream")

    up = await fake_upstream({"POST /chat/completions": handler})
    client = await ferro_client({"providers": providers(a=(up.url, key))})
    resp = await client.post("/v1/chat/completions", json={**HELLO, "stream": True})
    text = await resp.text()
    assert key not in text
    assert "key [REDACTED] was revoked mid-stream" in text
    assert text.endswith("data: [DONE]\n\n")


async def test_a_refused_key_is_a_502_naming_the_provider_and_falls_back(ferro_client,
                                                                        fake_upstream):
    refused = await fake_upstream({"POST /chat/completions": quoting("Incorrect API key", 401)})
    good = await fake_upstream({"POST /chat/completions": {
        "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                     "finish_reason": "stop"}]}})
    alone = await ferro_client({"providers": providers(a=(refused.url, new_secret()))})
    resp = await alone.post("/v1/chat/completions", json=HELLO)
    assert resp.status == 502
    error = (await resp.json())["error"]
    assert (error["code"], error["type"]) == ("upstream_auth_error", "api_error")
    assert "credentials for provider a were refused (upstream HTTP 401)" in error["message"]
    assert len(refused.requests) == 1
    both = await ferro_client({"strategy": {"mode": "fallback"},
                               "providers": providers(a=(refused.url, new_secret()),
                                                      b=(good.url, new_secret())),
                               "targets": [{"virtual_key": "a", "retry": {"attempts": 3}},
                                           {"virtual_key": "b"}]})
    resp = await both.post("/v1/chat/completions", json=HELLO)
    assert resp.status == 200
    assert resp.headers["X-Ferro-Provider"] == "b"
    assert len(refused.requests) == 2  # one more, not retried


def record(message, *args, exc_info=None):
    return logging.LogRecord("ferro.attempt", logging.WARNING, __file__, 1, message, args,
                             exc_info)


async def test_log_lines_hide_the_keys_of_each_config_applied(ferro_client):
    first, second = new_secret(), new_secret()
    client = await ferro_client({"providers": providers(a=("http://127.0.0.1:9", first))})
    reload(client.app, as_config({"providers": providers(a=("http://127.0.0.1:9", second))}))
    try:
        raise ValueError(f"upstream said {second}")
    except ValueError:
        failure = sys.exc_info()
    for formatter in (JSONFormatter(), TextFormatter("%(message)s")):
        line = formatter.format(record("retrying: %s then %s", first, second,
                                       exc_info=failure))
        assert first not in line and second not in line
        assert line.count(MASK) >= 3


async def test_every_log_line_of_a_failing_request_is_clean(ferro_client, fake_upstream):
    key = new_secret()
    up = await fake_upstream({"POST /chat/completions": quoting(f"bad key {key}", 500)})
    client = await ferro_client({"providers": providers(a=(up.url, key)),
                                 "targets": [{"virtual_key": "a",
                                              "retry": {"attempts": 2, "backoff": "1ms"}}]})
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JSONFormatter())
    root, level = logging.getLogger(), logging.getLogger().level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        resp = await client.post("/v1/chat/completions", json=HELLO)
        await resp.read()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    lines = out.getvalue().splitlines()
    assert any("retrying provider a" in line for line in lines)
    assert all(key not in line for line in lines)
