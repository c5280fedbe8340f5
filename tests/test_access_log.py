"""The access log of a real `ferrogw serve` process: one JSON line per request, with the
caller's key id, the status and the tokens, and no secret anywhere in the log output."""

import hashlib
import json
import secrets

import aiohttp
import orjson
from aiohttp import web

from tests.real_gateway import real_gateway

PROMPT, COMPLETION = 3, 4
#: Keys no credential pattern matches: only leaving them out (or their value) hides them.
API_KEY = f"gw{secrets.token_hex(16)}"
PROVIDER_KEY = f"pk{secrets.token_hex(16)}"
WRONG_KEY = f"gw{secrets.token_hex(16)}"


async def upstream_chat(request):
    """Known usage; model ``boom`` fails with a 500 that quotes the provider's key."""
    body = await request.json()
    usage = {"prompt_tokens": PROMPT, "completion_tokens": COMPLETION,
             "total_tokens": PROMPT + COMPLETION}
    if body["model"] == "boom":
        return web.json_response({"error": {"message": f"bad key {PROVIDER_KEY}"}}, status=500)
    if not body.get("stream"):
        return web.json_response({
            "id": "x", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "hello"}}],
            "usage": usage})
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": body["model"]}
    for event in ({**base, "choices": [{"index": 0, "delta": {"content": "hi"},
                                        "finish_reason": "stop"}]},
                  {**base, "choices": [], "usage": usage}):
        await resp.write(b"data: " + orjson.dumps(event) + b"\n\n")
    await resp.write(b"data: [DONE]\n\n")
    return resp


def config(upstream, **logging):
    return {"providers": {"openai": {"api_key": PROVIDER_KEY, "base_url": upstream.url + "/v1",
                                     "models": ["m", "boom"]}},
            "targets": [{"virtual_key": "openai", "retry": {"attempts": 1}}],
            "server": {"api_keys": [API_KEY]},
            "logging": logging}


async def send(url, request_id, key, model="m", stream=False):
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}", "X-Request-ID": request_id},
            json={"model": model, "stream": stream,
                  "messages": [{"role": "user", "content": "hi"}]}) as resp:
        await resp.read()
        return resp.status


def json_lines(text):
    return [json.loads(line) for line in text.splitlines()]


async def test_each_request_has_one_line_and_no_secret_is_logged(tmp_path, unused_tcp_port,
                                                                 fake_upstream):
    upstream = await fake_upstream({"POST /v1/chat/completions": upstream_chat})
    async with real_gateway(tmp_path, unused_tcp_port, config(upstream)) as gateway:
        assert await send(gateway.url, "plain", API_KEY) == 200
        assert await send(gateway.url, "streamed", API_KEY, stream=True) == 200
        assert await send(gateway.url, "intruder", WRONG_KEY) == 401
        assert await send(gateway.url, "failed", API_KEY, model="boom") == 500
    output = gateway.logs()
    for secret in (API_KEY, PROVIDER_KEY, WRONG_KEY):
        assert secret not in output
    lines = json_lines(output)  # every line of the output is JSON
    access = {}
    for line in lines:
        if line["logger"] == "ferro.access":
            assert line["request_id"] not in access, f"two lines for {line['request_id']}"
            access[line["request_id"]] = line
    assert set(access) == {"plain", "streamed", "intruder", "failed"}

    key_id = "cfg-" + hashlib.sha256(API_KEY.encode()).digest()[:6].hex()
    tokens = {"prompt_tokens": PROMPT, "completion_tokens": COMPLETION,
              "total_tokens": PROMPT + COMPLETION}
    for request_id, stream in (("plain", False), ("streamed", True)):
        line = access[request_id]
        assert line["msg"] == "request"
        assert line["level"] == "info"
        assert {k: line[k] for k in tokens} == tokens
        assert (line["key_id"], line["status"], line["stream"]) == (key_id, 200, stream)
        assert (line["provider"], line["model"], line["upstream_model"]) == ("openai", "m", "m")
        assert line["attempts"] == 1
        assert line["client_ip"] == "127.0.0.1"
        assert len(line["trace_id"]) == 32
        assert "error_type" not in line
    intruder = access["intruder"]
    assert (intruder["status"], intruder["key_id"]) == (401, None)
    assert intruder["error_type"] == "authentication_error"
    failed = access["failed"]
    assert (failed["status"], failed["key_id"], failed["provider"]) == (500, key_id, "openai")
    assert failed["error_code"] == "upstream_error"
    assert failed["total_tokens"] == 0


async def test_requests_false_turns_the_access_log_off(tmp_path, unused_tcp_port,
                                                       fake_upstream):
    upstream = await fake_upstream({"POST /v1/chat/completions": upstream_chat})
    async with real_gateway(tmp_path, unused_tcp_port,
                            config(upstream, requests=False)) as gateway:
        assert await send(gateway.url, "plain", API_KEY) == 200
    loggers = {line["logger"] for line in json_lines(gateway.logs())}
    assert "ferro.server" in loggers
    assert "ferro.access" not in loggers
