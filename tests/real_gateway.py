"""`ferrogw serve` as a real process on loopback, for tests that look at what only a real
process shows: its memory and CPU (from /proc), and its log output (written to a file,
so a chatty gateway never blocks on a full pipe)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp

FERROGW = str(Path(sys.executable).with_name("ferrogw"))


class RealGateway:
    def __init__(self, process: asyncio.subprocess.Process, url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def _status(self, field: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/{self.process.pid}/status")

    def peak_rss(self) -> int:
        """The most memory (bytes) the process has held at once so far (VmHWM)."""
        return self._status("VmHWM")

    def cpu_seconds(self) -> float:
        """User and system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def logs(self) -> str:
        return self.log.read_text()


@contextlib.asynccontextmanager
async def ferrogw_process(tmp_path: Path, name: str, config: Mapping[str, Any],
                          args: list[str], env: Mapping[str, str | None] | None = None
                          ) -> AsyncIterator[tuple[asyncio.subprocess.Process, Path]]:
    """``ferrogw serve --config <config> <args>`` and its log file; stopped (SIGTERM, then
    killed) on the way out. ``env``: changes to the environment (None removes a name)."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(config))
    log = tmp_path / f"{name}.log"
    environment = {**os.environ, **(env or {})}
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            FERROGW, "serve", "--config", str(path), *args, stdout=out, stderr=out,
            env={k: v for k, v in environment.items() if v is not None})
    try:
        yield process, log
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


@contextlib.asynccontextmanager
async def real_gateway(tmp_path: Path, port: int, config: Mapping[str, Any],
                       env: Mapping[str, str] | None = None) -> AsyncIterator[RealGateway]:
    """The gateway serving ``config`` on ``port``, answering ``/health``."""
    async with ferrogw_process(tmp_path, f"gateway-{port}", config, ["--port", str(port)],
                               env) as (process, log):
        gateway = RealGateway(process, f"http://127.0.0.1:{port}", log)
        await _answering(gateway)
        yield gateway


async def _answering(gateway: RealGateway) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(150):
            if gateway.process.returncode is not None:
                raise AssertionError(f"ferrogw exited with {gateway.process.returncode}:\n"
                                     f"{gateway.logs()}")
            try:
                async with session.get(gateway.url + "/health") as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"ferrogw did not start:\n{gateway.logs()}")
