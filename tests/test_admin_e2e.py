"""The management API's stores on real `ferrogw serve` processes: the request log written
in full on SIGTERM, and a database outage while traffic flows (PostgreSQL reached through
a TCP proxy the test cuts and restores)."""

import asyncio
import contextlib
import signal
import sqlite3

import aiohttp
import asyncpg
import pytest
from ferro.testing import POSTGRES_DSN

from tests.real_gateway import real_gateway

ADMIN = "fgw_e2e-admin-bootstrap-secret-000000000000000"
CHAT = {"model": "echo-model", "messages": [{"role": "user", "content": "hello"}]}


def gateway_config(store: dict) -> dict:
    return {"providers": {"echo": {"type": "echo"}}, "targets": [{"virtual_key": "echo"}],
            "logging": {"requests": False},
            "storage": {name: store for name in ("keys", "config", "request_logs")}}


async def stopped(gateway, timeout: float = 20.0) -> int:
    """SIGTERM, then the exit code."""
    gateway.process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(gateway.process.wait(), timeout)


async def test_every_request_is_in_the_log_after_a_sigterm(tmp_path, unused_tcp_port):
    db = tmp_path / "ferro.db"
    requests = 300
    async with real_gateway(tmp_path, unused_tcp_port,
                            gateway_config({"backend": "sqlite", "dsn": str(db)})) as gateway:
        limit = asyncio.Semaphore(20)
        async with aiohttp.ClientSession() as session:

            async def chat() -> int:
                async with limit, session.post(gateway.url + "/v1/chat/completions",
                                               json=CHAT) as resp:
                    await resp.read()
                    return resp.status

            statuses = await asyncio.gather(*(chat() for _ in range(requests)))
        assert statuses == [200] * requests
        assert await stopped(gateway) == 0, gateway.logs()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM request_logs").fetchone()
    assert rows == requests


class Proxy:
    """A TCP proxy on 127.0.0.1 to ``upstream``; :meth:`cut` drops every connection and
    refuses new ones until :meth:`restore`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1",
                                                                 self.upstream_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        if self._server is not None:
            await self.cut()


@pytest.fixture
def pg_schema(postgres_schema):
    """The test kit's fresh PostgreSQL schema (skips without a server)."""
    return postgres_schema


async def test_a_database_outage_is_answered_cleanly_and_the_log_catches_up(
        tmp_path, unused_tcp_port, pg_schema):
    proxy = Proxy(5432)
    await proxy.start()
    dsn = POSTGRES_DSN.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    assert dsn != POSTGRES_DSN
    store = {"backend": "postgres", "dsn": dsn,
             "options": {"schema": pg_schema, "command_timeout": "3s"}}
    answers: list[tuple[str, int, str | None]] = []
    try:
        async with real_gateway(tmp_path, unused_tcp_port, gateway_config(store),
                                env={"ADMIN_BOOTSTRAP_KEY": ADMIN}) as gateway, \
                aiohttp.ClientSession() as session:
            auth = {"Authorization": f"Bearer {ADMIN}"}
            async with session.post(gateway.url + "/admin/keys", headers=auth,
                                    json={"name": "caller"}) as resp:
                assert resp.status == 201
                key = (await resp.json())["key"]
            headers = {"Authorization": f"Bearer {key}"}
            phase = "before"

            async def traffic() -> None:
                for _ in range(400):  # bounded: about 20 s at most
                    async with session.post(gateway.url + "/v1/chat/completions",
                                            json=CHAT, headers=headers) as resp:
                        body = await resp.json()
                        answers.append((phase, resp.status,
                                        body.get("error", {}).get("code")
                                        if resp.status != 200 else None))
                    if phase == "done":
                        return
                    await asyncio.sleep(0.02)

            flowing = asyncio.create_task(traffic())
            await asyncio.sleep(0.5)
            phase = "outage"
            await proxy.cut()
            await asyncio.sleep(3.0)
            phase = "after"
            await proxy.restore()
            await asyncio.sleep(2.5)
            phase = "done"
            await asyncio.wait_for(flowing, 30)
            assert await stopped(gateway) == 0, gateway.logs()
            logs = gateway.logs()
    finally:
        await proxy.close()

    by_phase: dict[str, set] = {}
    for phase_seen, status, code in answers:
        by_phase.setdefault(phase_seen, set()).add((status, code))
    assert by_phase["before"] == {(200, None)}
    # while the database is away: answered, or refused as the key store being down
    assert by_phase["outage"] <= {(200, None), (503, "key_store_unavailable")}, by_phase
    assert (200, None) in by_phase["done"] | by_phase["after"]
    assert all(status != 500 for _, status, _ in answers)
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        rows = await conn.fetchval(f'SELECT count(*) FROM "{pg_schema}".request_logs')
    finally:
        await conn.close()
    assert rows == len(answers), logs
