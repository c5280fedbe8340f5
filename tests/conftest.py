"""Fixtures of the integration tests."""

import asyncio
import sys
from pathlib import Path

import aiohttp
import pytest

FERROGW = str(Path(sys.executable).with_name("ferrogw"))


@pytest.fixture
async def ferrogw(tmp_path, unused_tcp_port):
    """``process, url = await ferrogw(config_yaml)``: `ferrogw serve` started and answering
    its liveness probe (its log lines on ``process.stderr``); killed after the test if it
    is still running."""
    processes = []

    async def start(config_text):
        config = tmp_path / "gateway.yaml"
        config.write_text(config_text)
        process = await asyncio.create_subprocess_exec(
            FERROGW, "serve", "--config", str(config), "--port", str(unused_tcp_port),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        processes.append(process)
        url = f"http://127.0.0.1:{unused_tcp_port}"
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                if process.returncode is not None:
                    raise AssertionError(f"ferrogw exited with {process.returncode}")
                try:
                    async with session.get(url + "/health/live") as resp:
                        if resp.status == 200:
                            return process, url
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        raise AssertionError("ferrogw did not start")

    yield start
    for process in processes:
        if process.returncode is None:
            process.kill()
            await process.wait()
