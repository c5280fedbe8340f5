"""Multiprocess mode with real processes sharing one ``PROMETHEUS_MULTIPROC_DIR``: two
processes record known traffic and exit, a ``ferrogw serve`` process serves a request of
its own, and one scrape of it is all three's; a process marked dead loses its breaker
series and keeps its counts."""

import asyncio
import sys
from pathlib import Path

import aiohttp
import pytest
from ferro_metrics_prometheus import mark_process_dead
from prometheus_client.parser import text_string_to_metric_families

FERROGW = str(Path(sys.executable).with_name("ferrogw"))
RECORDER = str(Path(__file__).with_name("record_traffic.py"))

CONFIG = """\
providers:
  a: {type: echo}
targets:
  - virtual_key: a
    circuit_breaker: {failure_threshold: 5, timeout: 1h}
"""


@pytest.fixture
def multiproc_dir(tmp_path, monkeypatch):
    path = tmp_path / "metrics"
    path.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(path))
    return path


async def record(requests, tokens, state):
    """Run one recording process to its end; its pid."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, RECORDER, str(requests), str(tokens), str(state),
        stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    return process.pid


@pytest.fixture
async def gateway(tmp_path, unused_tcp_port, multiproc_dir):
    """``process, url = await gateway()``: `ferrogw serve` in multiprocess mode, answering."""
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG)
    process = await asyncio.create_subprocess_exec(
        FERROGW, "serve", "--config", str(config), "--port", str(unused_tcp_port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    url = f"http://127.0.0.1:{unused_tcp_port}"

    async def started():
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                if process.returncode is not None:
                    raise AssertionError(f"ferrogw exited: {await process.stderr.read()}")
                try:
                    async with session.get(url + "/health/live") as resp:
                        if resp.status == 200:
                            return process, url
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        raise AssertionError("ferrogw did not start")

    yield started
    if process.returncode is None:
        process.kill()
    await process.wait()


async def scrape(session, url):
    async with session.get(url + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(samples, name, **labels):
    return sum(s.value for s in samples
               if s.name == name and labels.items() <= s.labels.items())


def breaker_series(samples):
    return {int(s.labels["pid"]): s.value for s in samples
            if s.name == "gateway_circuit_breaker_state" and s.labels["provider"] == "a"}


async def test_one_scrape_is_every_processes_metrics(gateway, multiproc_dir):
    first = await record(requests=2, tokens=10, state=1)
    second = await record(requests=3, tokens=100, state=2)
    process, url = await gateway()
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/v1/chat/completions", json={
                "model": "m", "messages": [{"role": "user", "content": "hello"}]}) as resp:
            own_tokens = (await resp.json())["usage"]["prompt_tokens"]
        for _ in range(50):
            samples = await scrape(session, url)
            if value(samples, "gateway_requests_total", status="success") == 6:
                break
            await asyncio.sleep(0.02)

        labels = {"provider": "a", "model": "m"}
        assert value(samples, "gateway_requests_total", status="success", **labels) == 6
        assert value(samples, "gateway_request_duration_seconds_count", **labels) == 6
        assert value(samples, "gateway_tokens_input_total", **labels) == 320 + own_tokens
        assert value(samples, "gateway_overhead_seconds_count") == 6
        assert breaker_series(samples) == {first: 1, second: 2, process.pid: 0}

        mark_process_dead(first)
        samples = await scrape(session, url)
        assert breaker_series(samples) == {second: 2, process.pid: 0}
        assert value(samples, "gateway_requests_total", status="success", **labels) == 6

