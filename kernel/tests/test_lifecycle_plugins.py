"""Request-lifecycle plugins: order, rejection, failures, short-circuit, shared instances."""

import attrs
import pytest
from ferro import ChatResponse, ConfigError, RejectedError, hookimpl, make_plugin_manager

HELLO = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


class Recorder:
    """Test plugins, registered through the same hook third-party plugins use."""

    def __init__(self):
        self.seen = []
        recorder = self

        class Tag:
            """before_request: appends its tag to the last user message."""

            @attrs.define
            class Options:
                tag: str

            def __init__(self, config):
                self.tag = config.tag

            async def before_request(self, ctx):
                recorder.seen.append(("before", self.tag))
                ctx.request.messages[-1]["content"] += f" [{self.tag}]"

            async def after_request(self, ctx):
                recorder.seen.append(("after", self.tag, ctx.response.provider if ctx.response
                                      else None, ctx.usage and ctx.usage.total_tokens))

            async def on_error(self, ctx):
                recorder.seen.append(("error", self.tag, ctx.error.code))

        class Blocker:
            def __init__(self, config):
                self.word = config.get("word", "password")

            async def before_request(self, ctx):
                if self.word in ctx.request.messages[-1]["content"]:
                    raise RejectedError(f"blocked word detected: {self.word}",
                                        code="content_blocked")

        class Broken:
            def __init__(self, config):
                pass

            async def before_request(self, ctx):
                raise KeyError("oops")

        class BrokenAfter:
            def __init__(self, config):
                pass

            async def after_request(self, ctx):
                raise RuntimeError("after went wrong")

        class RefuseAnswer:
            def __init__(self, config):
                pass

            async def after_request(self, ctx):
                raise RejectedError("the answer mentions a secret", code="output_blocked")

        class Cache:
            instances = 0

            def __init__(self, config):
                type(self).instances += 1
                self.store = {}

            async def before_request(self, ctx):
                hit = self.store.get(ctx.request.messages[-1]["content"])
                if hit is not None:
                    ctx.response = ChatResponse({**hit, "cached": True})

            async def after_request(self, ctx):
                self.store[ctx.request.messages[-1]["content"]] = ctx.response.body

        class Counter:
            """before_request, and hears the exchanges of its config's requests."""

            def __init__(self, config):
                self.name = config.get("name", "")

            async def before_request(self, ctx):
                pass

            def exchange_completed(self, exchange):
                recorder.seen.append(("exchange", self.name, exchange.status))

        class Settings:
            """No request step: settings its plugin reads when the app is configured."""

            @attrs.define
            class Options:
                level: int

            def __init__(self, options):
                pass

        self.classes = {"tag": Tag, "blocker": Blocker, "broken": Broken, "cache": Cache,
                        "broken-after": BrokenAfter, "refuse-answer": RefuseAnswer,
                        "counter": Counter, "settings": Settings}

    @hookimpl
    def register_plugins(self, register):
        for name, cls in self.classes.items():
            register(name, cls)


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def pm(recorder):
    pm = make_plugin_manager(env={})
    pm.register(recorder, name="test-plugins")
    return pm


def config(*plugins, **extra):
    return {"providers": {"echo": {"type": "echo"}}, "targets": [{"virtual_key": "echo"}],
            "plugins": list(plugins), **extra}


async def test_before_request_plugins_run_in_config_order(ferro_client, pm, recorder):
    client = await ferro_client(config(
        {"name": "tag", "config": {"tag": "a"}}, {"name": "tag", "config": {"tag": "b"}},
        {"name": "tag", "enabled": False, "config": {"tag": "off"}}), pm=pm)
    body = await (await client.post("/v1/chat/completions", json=HELLO)).json()
    assert body["choices"][0]["message"]["content"] == "echo: hello [a] [b]"
    assert recorder.seen == [("before", "a"), ("before", "b")]


async def test_rejection_is_a_4xx_with_the_plugins_reason(ferro_client, pm, recorder):
    client = await ferro_client(config(
        {"name": "blocker", "config": {"word": "password"}},
        {"name": "tag", "stage": "on_error", "config": {"tag": "e"}}), pm=pm)
    resp = await client.post("/v1/chat/completions", json={
        "model": "m", "messages": [{"role": "user", "content": "my password is 123"}]})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["code"] == "content_blocked"
    assert body["error"]["message"] == (
        "request rejected by blocker: blocked word detected: password")
    assert recorder.seen == [("error", "e", "content_blocked")]


async def test_plugin_that_raises_is_a_clean_500_and_serving_goes_on(ferro_client, pm, caplog):
    client = await ferro_client(config({"name": "broken"}), pm=pm)
    resp = await client.post("/v1/chat/completions", json=HELLO)
    assert resp.status == 500
    body = await resp.json()
    assert body["error"]["code"] == "plugin_error"
    assert "broken" in body["error"]["message"]
    assert "KeyError" in caplog.text
    assert (await client.get("/health")).status == 200
    resp = await client.post("/v1/chat/completions", json=HELLO)
    assert resp.status == 500  # still answering, still cleanly


async def test_after_request_sees_response_and_stream_usage(ferro_client, pm, recorder):
    client = await ferro_client(config(
        {"name": "tag", "stage": "after_request", "config": {"tag": "x"}}), pm=pm)
    await client.post("/v1/chat/completions", json=HELLO)
    resp = await client.post("/v1/chat/completions", json={**HELLO, "stream": True})
    await resp.read()
    assert recorder.seen == [("after", "x", "echo", None), ("after", "x", "echo", 3)]


async def test_before_request_response_short_circuits_json_and_stream(ferro_client, pm, recorder):
    client = await ferro_client(config(
        {"name": "cache", "stage": "before_request"}, {"name": "cache", "stage": "after_request"}),
        pm=pm)
    first = await (await client.post("/v1/chat/completions", json=HELLO)).json()
    assert "cached" not in first
    second = await (await client.post("/v1/chat/completions", json=HELLO)).json()
    assert second["cached"] is True
    assert second["choices"] == first["choices"]
    resp = await client.post("/v1/chat/completions", json={**HELLO, "stream": True})
    text = await resp.text()
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert '"content":"echo: hello"' in text
    assert text.endswith("data: [DONE]\n\n")
    assert recorder.classes["cache"].instances == 1  # one instance shared by both stages


async def test_plugin_config_errors_are_located(ferro_app, pm):
    with pytest.raises(ConfigError, match=r"plugins\[0\]\.config\.tag: this key is required"):
        ferro_app(config({"name": "tag", "config": {}}), pm=pm)
    with pytest.raises(ConfigError, match=r"plugins\[0\]\.config\.colour: unknown key"):
        ferro_app(config({"name": "tag", "config": {"tag": "a", "colour": "red"}}), pm=pm)


async def test_unknown_plugin_and_stage_are_config_errors(ferro_app, pm):
    with pytest.raises(ConfigError, match=r"unknown plugin 'nope' \(installed: .*blocker"):
        ferro_app(config({"name": "nope"}), pm=pm)
    with pytest.raises(ConfigError, match=r"plugin 'blocker' does not run at after_request"):
        ferro_app(config({"name": "blocker", "stage": "after_request"}), pm=pm)


async def test_a_failing_after_request_plugin_cannot_break_a_sent_stream(ferro_client, pm,
                                                                         caplog):
    client = await ferro_client(config({"name": "broken-after", "stage": "after_request"}),
                                pm=pm)
    resp = await client.post("/v1/chat/completions", json={**HELLO, "stream": True})
    assert resp.status == 200
    assert (await resp.text()).endswith("data: [DONE]\n\n")
    assert "broken-after" in caplog.text
    resp = await client.post("/v1/chat/completions", json=HELLO)
    assert resp.status == 500
    assert (await resp.json())["error"]["code"] == "plugin_error"


async def test_after_request_can_refuse_an_answer_and_on_error_sees_it(ferro_client, pm,
                                                                       recorder):
    client = await ferro_client(config(
        {"name": "refuse-answer", "stage": "after_request"},
        {"name": "tag", "stage": "on_error", "config": {"tag": "e"}}), pm=pm)
    resp = await client.post("/v1/chat/completions", json=HELLO)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["code"] == "output_blocked"
    assert "request rejected by refuse-answer" in body["error"]["message"]
    assert recorder.seen == [("error", "e", "output_blocked")]


async def test_a_plugin_instance_hears_the_exchanges_of_its_config(ferro_client, pm, recorder):
    import asyncio

    from ferro.app import reload
    from ferro.config import parse_config

    cfg = config({"name": "counter", "config": {"name": "one"}},
                 {"name": "counter", "stage": "before_request", "config": {"name": "one"}})
    cfg["server"] = {"api_keys": ["sk-right"]}
    client = await ferro_client(cfg, pm=pm)
    auth = {"Authorization": "Bearer sk-right"}
    await client.post("/v1/chat/completions", json=HELLO, headers=auth)
    await client.post("/v1/chat/completions", json=HELLO)  # 401, before the body is read
    await asyncio.sleep(0.01)
    assert recorder.seen == [("exchange", "one", 200), ("exchange", "one", 401)], \
        "one instance, heard once per request, refusals too"
    import json

    reload(client.app, parse_config(json.dumps(config(
        {"name": "counter", "config": {"name": "two"}})), "c.json", env={}))
    await client.post("/v1/chat/completions", json=HELLO)
    await asyncio.sleep(0.01)
    assert recorder.seen[2:] == [("exchange", "two", 200)]


async def test_an_entry_of_settings_only_is_checked_and_adds_no_step(ferro_app, pm):
    app = ferro_app(config({"name": "settings", "config": {"level": 2}}), pm=pm)
    from ferro.app import PIPELINE

    gateway = app[PIPELINE].gateway
    assert gateway.before == gateway.after == gateway.on_error == gateway.on_chunk == []
    with pytest.raises(ConfigError, match=r"plugins\[0\]\.config\.level: this key is required"):
        ferro_app(config({"name": "settings", "config": {}}), pm=pm)


async def test_before_attempt_refuses_a_call_and_the_strategy_falls_back(ferro_client,
                                                                         stub_plugins):
    from ferro import RateLimitError
    from ferro.app import PIPELINE
    from ferro.testing import stub_config

    refused = []

    class Gate:
        def __init__(self, config):
            pass

        async def before_request(self, ctx):
            pass

        async def before_attempt(self, ctx, target):
            if target.name == "a":
                refused.append(target.name)
                raise RateLimitError("provider a is over its limit", code="rate_limit_exceeded",
                                     retryable=True)

    class Plugins:
        @hookimpl
        def register_plugins(self, register):
            register("gate", Gate)

    pm = stub_plugins
    pm.register(Plugins(), name="gate-plugin")
    cfg = stub_config("a", "b", strategy="fallback")
    cfg["targets"][0]["circuit_breaker"] = {"failure_threshold": 1}
    cfg["plugins"] = [{"name": "gate"}]
    client = await ferro_client(cfg, pm=pm)
    resp = await client.post("/v1/chat/completions", json=HELLO)
    assert resp.status == 200
    assert resp.headers["X-Ferro-Provider"] == "b"
    assert refused == ["a"]
    gateway = client.app[PIPELINE].gateway
    assert gateway.providers["a"].calls == 0
    assert gateway.targets[0].breaker.state == 0, "a refused call is no verdict"
