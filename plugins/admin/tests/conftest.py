"""A gateway with the management API on stub providers, its stores in SQLite (or, for the
tests that ask for it, a fresh PostgreSQL schema), and a client that calls it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from ferro import PIPELINE
from ferro.testing import POSTGRES_DSN, stub_config

#: Bootstrap secrets (the environment creates these keys on a store without keys).
ADMIN = "fgw_admin-bootstrap-secret-for-tests-000000000"
READER = "fgw_reader-bootstrap-secret-for-tests-00000000"
#: A key of the config's server.api_keys (inference only).
CONFIG_KEY = "static-config-inference-key-0001"
#: Model with a known price: the stub's 5 prompt + 2 completion tokens cost $0.70.
PRICED_MODEL = "priced-model"
COST_PER_CALL = 0.7


def base_config(**extra: Any) -> dict[str, Any]:
    config = stub_config("stub")
    config["pricing"] = {PRICED_MODEL: {"input": 100_000.0, "output": 100_000.0}}
    config.update(extra)
    return config


class Gateway:
    """A started gateway app and a client for it."""

    ADMIN = ADMIN

    def __init__(self, client: Any) -> None:
        self.client = client
        self.app = client.server.app

    @property
    def ring(self) -> Any:
        return self.app[PIPELINE].keys

    async def call(self, method: str, path: str, *, key: str | None = ADMIN,
                   json: Any = None, params: Mapping[str, Any] | None = None,
                   data: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with self.client.request(method, path, headers=headers, json=json,
                                       params=params, data=data) as resp:
            body = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, body

    async def chat(self, key: str | None, model: str = "any-model") -> tuple[int, Any]:
        return await self.call("POST", "/v1/chat/completions", key=key, json={
            "model": model, "messages": [{"role": "user", "content": "hi"}]})

    async def create_key(self, **body: Any) -> dict[str, Any]:
        status, made = await self.call("POST", "/admin/keys",
                                       json={"name": "test key", **body})
        assert status == 201, made
        return made


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "ferro.db"


@pytest.fixture(params=["sqlite"])
async def storage(request: pytest.FixtureRequest, db: Path) -> Any:
    """The ``storage`` section of the config: SQLite at ``db``, or (parametrized
    ``postgres``) a fresh schema of the machine's PostgreSQL, dropped afterwards."""
    if request.param == "sqlite":
        yield {name: {"backend": "sqlite", "dsn": str(db)}
               for name in ("keys", "config", "request_logs")}
        return
    schema = request.getfixturevalue("postgres_schema")  # skips without a server
    yield {name: {"backend": "postgres", "dsn": POSTGRES_DSN, "options": {"schema": schema}}
           for name in ("keys", "config", "request_logs")}


class Kit:
    """What the tests start gateways with (test modules cannot import this file)."""

    ADMIN = ADMIN
    READER = READER
    CONFIG_KEY = CONFIG_KEY
    PRICED_MODEL = PRICED_MODEL
    COST_PER_CALL = COST_PER_CALL

    def __init__(self, aiohttp_client: Any, ferro_app: Any, pm: Any, storage: Any) -> None:
        self._client, self._app, self.pm, self.storage = aiohttp_client, ferro_app, pm, storage

    config = staticmethod(base_config)

    def app(self, config: dict[str, Any] | None = None, *,
            env: Mapping[str, str] | None = None) -> Any:
        """The gateway app (not started) on the test's stores, with the bootstrap admin and
        read_only keys in its environment."""
        config = dict(config or base_config())
        config.setdefault("storage", self.storage)
        return self._app(config, {"ADMIN_BOOTSTRAP_KEY": ADMIN,
                                  "ADMIN_BOOTSTRAP_READ_ONLY_KEY": READER, **(env or {})},
                         self.pm)

    async def start(self, config: dict[str, Any] | None = None, *,
                    env: Mapping[str, str] | None = None, app: Any = None) -> Gateway:
        """A started gateway: ``app``, or :meth:`app` of ``config``."""
        return Gateway(await self._client(app or self.app(config, env=env)))


@pytest.fixture
def kit(storage: Any, aiohttp_client: Any, ferro_app: Any, stub_plugins: Any) -> Kit:
    # storage first: its schema is dropped after the gateway has stopped
    return Kit(aiohttp_client, ferro_app, stub_plugins, storage)
