"""No configured secret ever leaves the gateway: real gateway processes (JSON logs and text
logs, at debug level) serve providers whose keys, credential headers and base-URL
password are all secret, against upstreams that quote back every credential they receive
in their errors: 400, 401, 429 with a Retry-After, 500, an error event in the middle of a
stream, and a connection that cannot be made. Every response body, every response header
and every log line is searched for every secret."""

import asyncio
import secrets
import socket

import aiohttp
import orjson
import pytest
from aiohttp import web
from ferro.testing import sse_body

from tests.e2e.native_fakes import Reply, anthropic_chat, cohere_chat, gemini_chat, openai_chat
from tests.real_gateway import real_gateway

FAULTS = ("400", "401", "429", "500", "midstream", "none")
#: The request headers that carry credentials, as each provider sends them.
CREDENTIAL_HEADERS = ("Authorization", "x-api-key", "x-goog-api-key", "X-Upstream-Token")


def secret(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


SECRETS = {name: secret(name[:3]) for name in
           ("openai_key", "upstream_token", "anthropic_key", "gemini_key", "cohere_key",
            "dead_key", "dead_password")}


def quoted(request: web.Request) -> str:
    """What an indiscreet upstream says back: every credential it was sent."""
    seen = [f"{name}={request.headers[name]}" for name in CREDENTIAL_HEADERS
            if name in request.headers]
    return "received " + ", ".join(seen)


def midstream(wire: str, text: str, body: dict) -> bytes:
    """One good event in the provider's stream format, then an error event quoting ``text``."""
    if wire == "anthropic":
        good = anthropic_chat({**body, "stream": True}, Reply("ok")).split(b"\n\n")[0]
        return good + b"\n\nevent: error\ndata: " + orjson.dumps(
            {"type": "error", "error": {"type": "api_error", "message": text}}) + b"\n\n"
    if wire == "gemini":
        return gemini_chat(body, Reply("ok"), True).split(b"\n\n")[0] + b"\n\n" + sse_body(
            {"error": {"code": 500, "message": text, "status": "INTERNAL"}})
    if wire == "cohere":
        return sse_body({"type": "message-start", "id": "c1",
                         "delta": {"message": {"role": "assistant"}}}, {"message": text})
    return openai_chat({**body, "stream": True}, Reply("ok")).split(b"\n\n")[0] + b"\n\n" + \
        sse_body({"error": {"message": text, "type": "server_error"}})


def indiscreet(wire: str):
    """A native upstream that fails as the request's text asks (``fault:401``...), quoting
    the credentials it was sent; ``fault:none`` answers well."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.method == "GET":  # model discovery (a deep health check)
            return web.json_response({"error": {"message": quoted(request)}}, status=401)
        raw = await request.read()
        body = orjson.loads(raw)
        fault = next(f for f in FAULTS if f"fault:{f}".encode() in raw)
        text = quoted(request)
        stream = b'"stream":true' in raw or request.path.endswith(":streamGenerateContent")
        if fault == "none" or (fault == "midstream" and stream):
            if fault == "midstream":
                answer = midstream(wire, text, body)
            elif wire == "anthropic":
                answer = anthropic_chat(body, Reply("ok"))
            elif wire == "gemini":
                answer = gemini_chat(body, Reply("ok"), stream)
            elif wire == "cohere":
                answer = cohere_chat(body, Reply("ok"))
            else:
                answer = openai_chat(body, Reply("ok"))
            if isinstance(answer, bytes):
                return web.Response(body=answer, content_type="text/event-stream",
                                    headers={"x-request-id": "up-1"})
            return web.json_response(answer)
        status = 500 if fault == "midstream" else int(fault)
        headers = {"Retry-After": text} if fault == "429" else {}
        return web.json_response({"error": {"message": text, "type": "error"}, "message": text},
                                 status=status, headers=headers)

    return handler


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def config(urls: dict[str, str]) -> dict:
    providers = {
        "openai": {"type": "openai", "api_key": SECRETS["openai_key"], "base_url": urls["openai"],
                   "headers": {"X-Upstream-Token": SECRETS["upstream_token"],
                               "OpenAI-Organization": "org-public"}},
        "anthropic": {"type": "anthropic", "api_key": SECRETS["anthropic_key"],
                      "base_url": urls["anthropic"]},
        "gemini": {"type": "gemini", "api_key": SECRETS["gemini_key"], "base_url": urls["gemini"]},
        "cohere": {"type": "cohere", "api_key": SECRETS["cohere_key"], "base_url": urls["cohere"]},
        "dead": {"type": "anthropic", "api_key": SECRETS["dead_key"],
                 "base_url": f"http://gw:{SECRETS['dead_password']}@127.0.0.1:{closed_port()}"},
    }
    for name, settings in providers.items():
        settings["models"] = [f"m-{name}"]
    return {"strategy": {"mode": "fallback"}, "providers": providers,
            "targets": [{"virtual_key": name, "retry": {"attempts": 2, "backoff": "1ms"}}
                        for name in providers]}


async def drive(url: str) -> list[bytes]:
    """Every fault, streamed and not, through every provider: what the client saw of each."""
    seen = []
    async with aiohttp.ClientSession() as session:
        for provider in ("openai", "anthropic", "gemini", "cohere", "dead"):
            for fault in FAULTS:
                for stream in (False, True):
                    body = {"model": f"m-{provider}", "stream": stream,
                            "messages": [{"role": "user", "content": f"fault:{fault}"}]}
                    async with asyncio.timeout(20), session.post(
                            url + "/v1/chat/completions", json=body) as resp:
                        seen.append(f"{resp.status} {dict(resp.headers)}".encode()
                                    + await resp.read())
        async with session.get(url + "/health?deep=1") as resp:
            seen.append(await resp.read())
    return seen


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_no_secret_in_any_reply_header_or_log_line(fake_upstream, tmp_path,
                                                         unused_tcp_port, log_format):
    urls = {}
    for name, wire in (("openai", "openai"), ("anthropic", "anthropic"),
                       ("gemini", "gemini"), ("cohere", "cohere")):
        upstream = await fake_upstream({"POST /{tail:.*}": indiscreet(wire),
                                        "GET /{tail:.*}": indiscreet(wire)})
        urls[name] = upstream.url
    env = {"LOG_FORMAT": log_format, "LOG_LEVEL": "debug"}
    async with real_gateway(tmp_path, unused_tcp_port, config(urls), env) as gateway:
        replies = await drive(gateway.url)
    logs = gateway.logs()  # complete: the gateway has stopped
    lines = logs.splitlines()
    # the run really logged what the upstreams said, and the clients really got it
    assert sum("received " in line and "[REDACTED]" in line for line in lines) > 20, logs
    assert sum(b"received " in reply and b"[REDACTED]" in reply for reply in replies) > 30
    assert sum(b"cannot reach dead" in reply for reply in replies) > len(FAULTS) * 2
    for name, value in SECRETS.items():
        for reply in replies:
            assert value.encode() not in reply, f"{name} in a reply: {reply[:500]!r}"
        for line in lines:
            assert value not in line, f"{name} in a log line: {line[:500]}"
