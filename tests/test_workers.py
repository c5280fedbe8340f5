"""`ferrogw serve --workers N` as real processes on port 0: one scrape of /metrics counts
every worker's requests, SIGTERM with fifty streams open loses none of them, a worker
that dies is replaced, SIGHUP reloads every worker, and a worker that cannot start stops
the gateway."""

import asyncio
import contextlib
import json
import os
import re
import signal

import aiohttp
import orjson
import pytest
from aiohttp import web
from ferro.logs import WRITE_EVERY
from prometheus_client.parser import text_string_to_metric_families

from tests.real_gateway import FERROGW, ferrogw_process

PROMPT, COMPLETION = 5, 7
CHUNKS = 10
SHUTDOWN_TIMEOUT = 4.0
#: How long after the shutdown timeout the gateway may take to exit.
MARGIN = 1.5


class Gateway:
    def __init__(self, process, log):
        self.process = process
        self.log = log
        self.url = ""

    def lines(self):
        """The log's finished lines: read while workers write, its last may be half there."""
        finished = self.log.read_text().split("\n")[:-1]
        return [json.loads(line) for line in finished if line.startswith("{")]

    def said(self, pattern):
        """The matches of ``pattern`` in the log's messages."""
        return [m for line in self.lines() if (m := re.search(pattern, line["msg"]))]

    def worker_pids(self):
        return [int(m[1]) for m in self.said(r"worker \d+ started \(pid (\d+)\)")]

    def access(self):
        return [line for line in self.lines() if line["logger"] == "ferro.access"]


async def eventually(check, what, tries=100):
    """Poll ``check`` every 0.1 s until it is true (bounded)."""
    for _ in range(tries):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


@contextlib.asynccontextmanager
async def serving(tmp_path, config, workers, env=None):
    """The gateway with ``workers`` workers on a port the OS picks, every worker started.
    ``env``: what to change in the environment (None: remove)."""
    async with ferrogw_process(tmp_path, "gateway", config,
                               ["--port", "0", "--workers", str(workers)], env) as (process, log):
        gateway = Gateway(process, log)
        await eventually(lambda: process.returncode is not None or
                         len(gateway.said("started on http://")) == workers, "every worker up")
        assert process.returncode is None, log.read_text()
        gateway.url = gateway.said(r"(http://[\d.]+:\d+)")[0][1]
        assert not gateway.url.endswith(":0")
        yield gateway


def upstream_config(upstream, **server):
    return {"providers": {"openai": {"api_key": "k", "base_url": upstream.url + "/v1"}},
            "targets": [{"virtual_key": "openai"}],
            "server": {"shutdown_timeout": f"{SHUTDOWN_TIMEOUT}s", **server}}


def chunk(i, last=False):
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": f"{i} "},
                         "finish_reason": "stop" if last else None}]}


def chat(delay=0.0):
    """An upstream answering with known usage; a stream sends :data:`CHUNKS` chunks,
    ``delay`` apart, then its usage and ``[DONE]``."""

    async def handler(request):
        body = await request.json()
        usage = {"prompt_tokens": PROMPT, "completion_tokens": COMPLETION,
                 "total_tokens": PROMPT + COMPLETION}
        if not body.get("stream"):
            return web.json_response({
                "id": "x", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "hello"}}],
                "usage": usage})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i in range(CHUNKS):
            await resp.write(b"data: " + orjson.dumps(chunk(i, i == CHUNKS - 1)) + b"\n\n")
            await asyncio.sleep(delay)
        tail = {**chunk(0), "choices": [], "usage": usage}
        await resp.write(b"data: " + orjson.dumps(tail) + b"\n\ndata: [DONE]\n\n")
        return resp

    return handler


def ask(stream):
    return {"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


# --- metrics ----------------------------------------------------------------------------------


async def scrape(url):
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def total(samples, name, **labels):
    return sum(s.value for s in samples
               if s.name == name and labels.items() <= s.labels.items())


async def test_one_scrape_counts_every_workers_requests(tmp_path, fake_upstream):
    upstream = await fake_upstream({"POST /v1/chat/completions": chat()})
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    sent = streamed = 0
    async with serving(tmp_path, upstream_config(upstream), 2,
                       env={"TMPDIR": str(scratch), "PROMETHEUS_MULTIPROC_DIR": None}) as gateway:
        # a new connection per request; rounds of ten (four streamed) until both have served
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)
                                         ) as session:
            async def one(stream):
                async with session.post(gateway.url + "/v1/chat/completions",
                                        json=ask(stream)) as resp:
                    assert resp.status == 200
                    await resp.read()

            for _ in range(10):
                await asyncio.gather(*(one(i < 4) for i in range(10)))
                sent, streamed = sent + 10, streamed + 4
                await asyncio.sleep(WRITE_EVERY + 0.1)  # the access lines are on their way
                if len({line["pid"] for line in gateway.access()}) == 2:
                    break
        assert {line["pid"] for line in gateway.access()} == set(gateway.worker_pids())
        assert len(list(scratch.glob("ferro-metrics-*/*.db"))) >= 2  # the workers' files

        labels = {"provider": "openai", "model": "m"}
        samples = []
        for _ in range(50):  # a worker counts an exchange just after its reply is sent
            samples = await scrape(gateway.url)
            if total(samples, "gateway_requests_total", **labels) == sent:
                break
            await asyncio.sleep(0.05)
        assert total(samples, "gateway_requests_total", status="success", **labels) == sent
        assert total(samples, "gateway_requests_total") == sent
        assert total(samples, "gateway_tokens_input_total", **labels) == sent * PROMPT
        assert total(samples, "gateway_tokens_output_total", **labels) == sent * COMPLETION
        assert total(samples, "gateway_time_to_first_token_seconds_count", **labels) == streamed
    assert gateway.process.returncode == 0
    assert list(scratch.iterdir()) == []  # the metrics directory is gone with the gateway


# --- shutdown ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("workers", "everyone"), [(1, False), (2, False), (1, True), (2, True)])
async def test_sigterm_with_fifty_open_streams_loses_none(tmp_path, fake_upstream, workers,
                                                          everyone):
    """``everyone``: every process gets SIGTERM, as systemd's default stop and a signal to
    the process group send it (the workers also get their supervisor's), and again during
    the drain."""
    upstream = await fake_upstream({"POST /v1/chat/completions": chat(delay=0.1)})
    async with serving(tmp_path, upstream_config(upstream), workers) as gateway:
        started = asyncio.Semaphore(0)

        async def stream(session):
            async with session.post(gateway.url + "/v1/chat/completions",
                                    json=ask(True)) as resp:
                assert resp.status == 200
                first = await resp.content.readline()
                started.release()
                return first + await resp.read()

        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            streams = [asyncio.ensure_future(stream(session)) for _ in range(50)]

            async def all_started():
                for _ in streams:
                    await started.acquire()

            await asyncio.wait_for(all_started(), 15)
            pids = [gateway.process.pid, *(gateway.worker_pids() if everyone else [])]
            for pid in pids:
                os.kill(pid, signal.SIGTERM)
            if everyone:
                await asyncio.sleep(0.3)
                for pid in pids:
                    os.kill(pid, signal.SIGTERM)
            bodies = await asyncio.wait_for(asyncio.gather(*streams),
                                            SHUTDOWN_TIMEOUT + MARGIN)
        code = await asyncio.wait_for(gateway.process.wait(), SHUTDOWN_TIMEOUT + MARGIN)
    assert code == 0
    expected = "".join(f"{i} " for i in range(CHUNKS))
    for body in bodies:
        events = [e.removeprefix(b"data: ") for e in body.split(b"\n\n") if e]
        assert events[-1] == b"[DONE]"
        chunks = [orjson.loads(e) for e in events[:-1]]
        assert "".join(c["choices"][0]["delta"].get("content", "")
                       for c in chunks if c["choices"]) == expected
        assert chunks[CHUNKS - 1]["choices"][0]["finish_reason"] == "stop"


# --- looking after the workers ---------------------------------------------------------------


async def test_a_worker_that_dies_is_replaced(tmp_path):
    async with serving(tmp_path, {"providers": {"echo": {"type": "echo"}}}, 2) as gateway:
        first, second = gateway.worker_pids()
        os.kill(first, signal.SIGKILL)
        await eventually(lambda: len(gateway.worker_pids()) == 3, "a new worker")
        replacement = gateway.worker_pids()[2]
        assert replacement not in (first, second)
        await eventually(lambda: any(line["pid"] == replacement
                                     for line in gateway.lines()
                                     if "started on http://" in line["msg"]),
                         "the new worker serving")
        assert gateway.said(rf"\(pid {first}\) exited unexpectedly \(SIGKILL\)")
        async with aiohttp.ClientSession() as session, session.get(
                gateway.url + "/health/live") as resp:
            assert resp.status == 200
        gateway.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(gateway.process.wait(), 10) == 0


async def test_sighup_reloads_every_worker(tmp_path):
    config = {"providers": {"echo": {"type": "echo"}}}
    async with serving(tmp_path, config, 2) as gateway:
        (tmp_path / "gateway.json").write_text(json.dumps({**config, "aliases": {"fast": "x"}}))
        gateway.process.send_signal(signal.SIGHUP)
        await eventually(lambda: len(gateway.said("config reloaded")) == 2, "two reloads")
        assert {line["pid"] for line in gateway.lines() if line["msg"].startswith(
            "config reloaded")} == set(gateway.worker_pids())


async def test_a_worker_that_cannot_start_stops_the_gateway(tmp_path):
    (tmp_path / "gateway.json").write_text(json.dumps({"providers": {"echo": {"type": "echo"}}}))
    process = await asyncio.create_subprocess_exec(
        FERROGW, "serve", "--config", str(tmp_path / "gateway.json"), "--port", "0",
        "--workers", "2", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "missing")})
    _, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 1
    assert b"is not a directory" in err
    assert b"could not start" in err
