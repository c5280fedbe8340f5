import asyncio
import io
import json
import logging
import os
import re
import threading
import time

import pytest
from ferro import Exchange
from ferro.app import PIPELINE
from ferro.config import LoggingConfig
from ferro.errors import ConfigError
from ferro.logs import (
    ACCESS_LOG,
    JSONFormatter,
    TextFormatter,
    _only_handler,
    configure_logging,
    log_request,
    redact,
)
from ferro.testing import stub_config


@pytest.mark.parametrize(("text", "secret"), [
    ("Authorization: Bearer sk-live-123", "sk-live-123"),
    ("headers={'x-api-key': 'ant-456'}", "ant-456"),
    ('{"api_key": "gsk_789"}', "gsk_789"),
    ("GET https://host/v1beta/models?key=AIzaSecret&alt=sse", "AIzaSecret"),
    ("api-key=azure-000", "azure-000"),
])
def test_secrets_never_reach_the_log(text, secret):
    cleaned = redact(text)
    assert secret not in cleaned
    assert "[REDACTED]" in cleaned


def test_json_lines_carry_level_logger_and_redacted_message():
    record = logging.LogRecord("ferro.app", logging.WARNING, __file__, 1,
                               "upstream said %s", ("Authorization: Bearer sk-x",), None)
    line = json.loads(JSONFormatter().format(record))
    assert line["level"] == "warning"
    assert line["logger"] == "ferro.app"
    assert "sk-x" not in line["msg"]
    assert line["time"].endswith("Z")


# --- level and format: config, then LOG_LEVEL / LOG_FORMAT ----------------------------------


@pytest.fixture
def root_logging():
    """The root logger's handlers and level, put back after the test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(("config", "env", "level", "formatter"), [
    ({}, {}, logging.INFO, JSONFormatter),
    ({"level": "warn", "format": "text"}, {}, logging.WARNING, TextFormatter),
    ({"level": "error"}, {"LOG_LEVEL": "DEBUG", "LOG_FORMAT": "text"}, logging.DEBUG,
     TextFormatter),
    ({"format": "text"}, {"LOG_FORMAT": "json", "LOG_LEVEL": "warn"}, logging.WARNING,
     JSONFormatter),
])
def test_the_environment_overrides_the_config(root_logging, config, env, level, formatter):
    configure_logging(LoggingConfig(**config), env)
    assert root_logging.level == level
    assert type(root_logging.handlers[0].formatter) is formatter


@pytest.mark.parametrize(("env", "named"), [({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
                                            ({"LOG_FORMAT": "xml"}, "LOG_FORMAT")])
def test_a_bad_variable_is_named_in_the_error(root_logging, env, named):
    with pytest.raises(ConfigError) as caught:
        configure_logging(LoggingConfig(), env)
    assert caught.value.message.startswith(f"{named}=")


def record_with(fields, msg="request"):
    record = logging.LogRecord("ferro.access", logging.INFO, __file__, 1, msg, (), None)
    record.fields = fields
    return record


def test_json_lines_carry_fields_and_the_pid_when_asked():
    line = json.loads(JSONFormatter(pid=True).format(record_with({"status": 200})))
    assert line["pid"] == os.getpid()
    assert line["status"] == 200
    assert "pid" not in json.loads(JSONFormatter().format(record_with({})))


def test_text_lines_end_with_key_value_fields():
    line = TextFormatter("%(name)s: %(message)s").format(record_with(
        {"status": 200, "provider": None, "model": "gpt 4o", "stream": False}))
    assert line == 'ferro.access: request status=200 model="gpt 4o" stream=False'


# --- the access log ---------------------------------------------------------------------------


@pytest.fixture
def access_lines():
    """What ``ferro.access`` logs, one JSON object per line."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JSONFormatter())
    ACCESS_LOG.addHandler(handler)
    level = ACCESS_LOG.level
    ACCESS_LOG.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    ACCESS_LOG.removeHandler(handler)
    ACCESS_LOG.setLevel(level)


@pytest.fixture
async def logged_client(aiohttp_client, ferro_app, stub_plugins):
    """An app of stub provider ``a`` with the access log listening."""

    async def start(**server):
        app = ferro_app({**stub_config("a"), "server": server}, pm=stub_plugins)
        app[PIPELINE].events.add(log_request)
        return await aiohttp_client(app)

    return start


async def test_each_request_is_one_line(logged_client, access_lines):
    client = await logged_client(api_keys=["sk-the-configured-key"])
    auth = {"Authorization": "Bearer sk-the-configured-key"}
    await (await client.post("/v1/chat/completions", headers={**auth, "X-Request-ID": "ok-1"},
                             json={"model": "m", "messages": [{"role": "user", "content": "hi"}]}
                             )).read()
    await (await client.post("/v1/chat/completions", headers={"X-Request-ID": "no-key"},
                             json={"model": "m", "messages": []})).read()
    lines = access_lines()
    assert [line["request_id"] for line in lines] == ["ok-1", "no-key"]
    ok, refused = lines
    assert ok["msg"] == "request"
    assert ok["logger"] == "ferro.access"
    assert ok["key_id"].startswith("cfg-")
    assert (ok["status"], ok["provider"], ok["model"], ok["operation"]) == (200, "a", "m", "chat")
    assert ok["attempts"] == 1
    assert ok["total_tokens"] == ok["prompt_tokens"] + ok["completion_tokens"] > 0
    assert ok["latency_ms"] >= ok["ttfb_ms"] > 0
    assert "error_type" not in ok
    assert (refused["status"], refused["key_id"]) == (401, None)
    assert (refused["error_type"], refused["error_code"]) == ("authentication_error",
                                                              "invalid_api_key")


def test_an_access_record_is_a_whole_log_record_of_its_own_time():
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    ACCESS_LOG.addHandler(handler)
    level = ACCESS_LOG.level
    ACCESS_LOG.setLevel(logging.INFO)
    try:
        before = time.time()
        log_request(Exchange(request_id="r-1", operation="chat", model="m", provider="a",
                             stream=False, status=200, started=before, duration=0.01))
    finally:
        ACCESS_LOG.removeHandler(handler)
        ACCESS_LOG.setLevel(level)
    [record] = records
    usual = logging.LogRecord("ferro.access", logging.INFO, "x.py", 0, "request", (), None)
    assert set(vars(usual)) | {"fields"} <= set(vars(record))
    assert (record.name, record.levelname, record.getMessage()) == ("ferro.access", "INFO",
                                                                    "request")
    assert before <= record.created <= time.time()
    assert record.msecs == int((record.created % 1) * 1000)
    assert record.relativeCreated == pytest.approx(usual.relativeCreated, abs=1000)
    assert record.process == os.getpid()
    assert record.fields["request_id"] == "r-1"


@pytest.fixture
def gateway_logging():
    """Logging as ``ferrogw serve`` sets it up (JSON, the gateway's batching handler on the
    root logger), into a buffer; yields that root handler and the lines written so far.
    (A test that needs the direct line takes off the handlers pytest adds to the root
    once the test runs.)"""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, ACCESS_LOG.level
    out = io.StringIO()
    configure_logging(LoggingConfig(level="info", format="json"), env={})
    [handler] = root.handlers
    handler.setStream(out)
    ACCESS_LOG.setLevel(logging.NOTSET)

    def lines():
        handler.flush()
        return [json.loads(line) for line in out.getvalue().splitlines()]

    yield handler, lines
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    ACCESS_LOG.setLevel(saved[2])


def test_a_line_made_directly_is_the_line_logging_makes(gateway_logging):
    """With the gateway's own handler alone the line skips ``logging``'s record; with a
    filter on the way it goes through ``logging``: both lines say the same."""
    handler, lines = gateway_logging
    exchange = Exchange(request_id="r-1", operation="chat", model="sk-" + "x" * 20,
                        provider="a", stream=False, status=200, started=time.time(),
                        duration=0.01)
    logging.getLogger().handlers[:] = [handler]  # pytest's own are on the way
    assert _only_handler() is handler
    log_request(exchange)
    seen = []
    handler.addFilter(lambda record: seen.append(record) or True)
    log_request(exchange)
    direct, through_logging = lines()
    assert len(seen) == 1  # only the second line was a record
    for line in (direct, through_logging):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line.pop("time"))
    assert direct == through_logging
    assert direct["model"] == "[REDACTED]"  # scrubbed either way
    assert (direct["logger"], direct["level"], direct["msg"]) == ("ferro.access", "info",
                                                                  "request")


def test_credentials_in_any_field_of_a_direct_line_are_hidden(gateway_logging):
    from ferro.redaction import SECRETS

    handler, lines = gateway_logging
    logging.getLogger().handlers[:] = [handler]  # pytest's own are on the way
    assert _only_handler() is handler
    quoted = 'secret"with-a-quote-0123456789'
    SECRETS.learn([quoted])
    log_request(Exchange(request_id="Bearer abcdefghijklmnop", operation="chat",
                         model=f"x {quoted} y", provider="a", stream=False, status=200,
                         started=time.time(), duration=0.01, client_ip="10.0.0.1"))
    [line] = lines()
    assert line["request_id"] == "Bearer [REDACTED]"
    assert line["model"] == "x [REDACTED] y"  # found in the text, not in its JSON escape
    assert line["client_ip"] == "10.0.0.1" and line["status"] == 200


async def test_nothing_is_logged_below_info(logged_client, access_lines):
    ACCESS_LOG.setLevel(logging.WARNING)
    client = await logged_client()
    resp = await client.post("/v1/chat/completions",
                             json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status == 200
    assert access_lines() == []


class Writes(list):
    """What a stream was given, write by write; ``stall()`` makes its writes wait until
    ``resume()``."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()
        self.open.set()

    def write(self, text: str) -> int:
        self.open.wait(5)
        self.append(text)
        return len(text)

    def stall(self) -> None:
        self.open.clear()

    def resume(self) -> None:
        self.open.set()

    def settled(self, count: int) -> list[str]:
        """The writes, once there are ``count`` of them (the writer thread makes them)."""
        deadline = time.monotonic() + 2
        while len(self) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        return list(self)


@pytest.fixture
def batched(monkeypatch):
    """A logger writing through a BatchedStreamHandler that waits 0.05 s; the writes made."""
    from ferro import logs

    monkeypatch.setattr(logs, "WRITE_EVERY", 0.05)
    writes = Writes()
    stream = io.StringIO()
    stream.write = writes.write  # type: ignore[method-assign]
    logger = logging.getLogger("ferro.test.batched")
    logger.propagate, logger.handlers = False, [logs.BatchedStreamHandler(stream)]
    logger.setLevel(logging.INFO)
    yield logger, writes
    writes.resume()
    logger.handlers[0].close()
    logger.handlers = []


async def test_lines_are_written_together_once_the_first_has_waited_and_errors_at_once(batched):
    logger, writes = batched
    for n in range(3):
        logger.info("line %d", n)
    await asyncio.sleep(0.01)
    logger.info("line 3")
    assert writes.settled(1) == []
    await asyncio.sleep(0.06)
    assert writes.settled(1) == ["line 0\nline 1\nline 2\nline 3\n"]
    logger.info("pending")
    logger.error("boom")
    assert writes.settled(2)[-1] == "pending\nboom\n"


async def test_many_lines_waiting_are_written_at_once(batched, monkeypatch):
    from ferro import logs

    monkeypatch.setattr(logs, "MAX_WAITING", 5)
    logger, writes = batched
    for n in range(5):
        logger.info("%d", n)
    assert writes.settled(1) == ["0\n1\n2\n3\n4\n"]


async def test_a_stalled_stream_does_not_stall_the_event_loop(batched):
    logger, writes = batched
    writes.stall()
    began = time.monotonic()
    for n in range(3):
        logger.error("line %d", n)  # each goes at once, to the writer thread
        await asyncio.sleep(0.06)
    assert time.monotonic() - began < 1 and writes == []
    writes.resume()
    assert writes.settled(3) == ["line 0\n", "line 1\n", "line 2\n"]


async def test_lines_past_the_unwritten_bound_are_dropped_and_counted(batched, monkeypatch):
    from ferro import logs

    monkeypatch.setattr(logs, "MAX_UNWRITTEN", 20)
    logger, writes = batched
    writes.stall()
    logger.error("first, written")  # 15 bytes: taken
    for _ in range(3):
        logger.error("dropped")  # 8 more each: past the bound
    writes.resume()
    assert writes.settled(2)[0] == "first, written\n"
    assert "3 log lines were dropped" in writes[1]
    logger.error("after")
    assert writes.settled(3)[2] == "after\n"


def test_closing_the_handler_writes_what_is_waiting_and_ends_its_thread(batched):
    logger, writes = batched
    handler = logger.handlers[0]

    async def on_a_loop():
        logger.error("handed to the thread")
        logger.info("still waiting")

    asyncio.run(on_a_loop())
    thread = handler._writer.thread
    handler.close()
    assert writes == ["handed to the thread\n", "still waiting\n"]
    thread.join(2)
    assert not thread.is_alive()


def test_lines_off_the_loop_go_after_what_the_writer_thread_holds(batched):
    logger, writes = batched

    async def on_a_loop():
        writes.stall()
        logger.error("from the loop")
        threading.Timer(0.1, writes.resume).start()

    asyncio.run(on_a_loop())
    logger.info("off the loop")  # written here, once the thread has written its lines
    assert writes == ["from the loop\n", "off the loop\n"]


def test_a_stream_shared_with_other_processes_gets_whole_lines_in_atomic_writes():
    from ferro.logs import PIPE_BUF, BatchedStreamHandler

    stream = io.StringIO()
    writes: list[str] = []
    stream.write = lambda text: writes.append(text) or len(text)  # type: ignore[method-assign]
    lines = [f"line {n} " + "é" * (n % 300) for n in range(100)] + ["x" * (PIPE_BUF + 10)]
    for shared in (True, False):
        writes.clear()
        handler = BatchedStreamHandler(stream, shared=shared)
        handler._lines = list(lines)
        handler.flush()  # off a loop: written here
        assert "".join(writes) == "\n".join(lines) + "\n"
        if shared:
            assert len(writes) > 1 and all(w.endswith("\n") for w in writes)
            assert all(len(w.encode()) <= PIPE_BUF for w in writes[:-1])  # the long line alone
            assert writes[-1] == "x" * (PIPE_BUF + 10) + "\n"
        else:
            assert len(writes) == 1


def test_an_output_stalled_at_exit_does_not_hold_the_exit(batched, monkeypatch):
    from ferro import logs

    monkeypatch.setattr(logs, "DRAIN_TIMEOUT", 0.1)
    logger, writes = batched

    async def on_a_loop():
        writes.stall()
        logger.error("handed to the thread")

    asyncio.run(on_a_loop())
    began = time.monotonic()
    logger.info("at exit")  # off the loop: waits for the thread, then gives up
    logger.info("and again")  # at once: the output is known to be stalled
    logger.handlers[0].close()  # as logging's shutdown does
    assert time.monotonic() - began < 0.5
    writes.resume()
    assert writes.settled(1) == ["handed to the thread\n"]


def test_lines_left_waiting_by_a_closed_loop_go_out_with_the_next(batched):
    logger, writes = batched

    async def log_and_leave():
        logger.info("before the loop closed")

    asyncio.run(log_and_leave())  # the loop closes with the write still due
    assert writes == []

    async def log_again():
        logger.info("on the next loop")
        await asyncio.sleep(0.06)

    asyncio.run(log_again())
    assert writes.settled(1) == ["before the loop closed\non the next loop\n"]
