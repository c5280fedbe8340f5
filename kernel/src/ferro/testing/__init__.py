"""Test kit for the gateway and its plugins: a pytest plugin (entry point ``pytest11``).

Fixtures
    ``ferro_app``       build a gateway app from a config dict (or Config)
    ``ferro_client``    ...and an in-process aiohttp test client for it
    ``ferro_server``    ...or a real loopback server
    ``openai_client``   ...with the official ``openai`` client pointed at it
    ``fake_upstream``   a local fake provider: routes -> handlers, with every request recorded
    ``http_session``    a client session for providers under test (with ``make_provider``)
    ``stub_plugins``    a plugin manager with provider type ``stub`` (with ``stub_config``),
                        so kernel and plugin tests need no provider package

Contract test classes
    :class:`ProviderContract` and :class:`StrategyContract`: subclass them in a provider or
    strategy package and fill in the few native details; the tests come with them.
    :class:`OpenAICompatibleContract`: ``ProviderContract`` with OpenAI's wire format written,
    for providers that speak OpenAI's dialect; set only the knobs where theirs differs.
    :class:`StorageContract`: the storage contract every storage backend's tests subclass
    (with ``POSTGRES_DSN``, ``needs_postgres`` and the ``postgres_schema`` fixture for
    backends on the real PostgreSQL).
"""

from __future__ import annotations

from ferro.testing._aioresponses import patch_aioresponses, route_mocks_to_session
from ferro.testing.contracts import ProviderContract, StrategyContract
from ferro.testing.helpers import (
    REDIS_URL,
    FakeUpstream,
    RecordedRequest,
    _own_data_dir,  # noqa: F401 (an autouse fixture, registered by being here)
    as_config,
    collect,
    fake_upstream,
    ferro_app,
    ferro_client,
    ferro_server,
    http_session,
    installed_plugins,
    make_provider,
    needs_redis,
    openai_client,
    single_provider,
    sse_body,
    stub_config,
    stub_plugins,
)
from ferro.testing.openai_contract import OpenAICompatibleContract
from ferro.testing.storage_contract import (
    POSTGRES_DSN,
    StorageContract,
    needs_postgres,
    postgres_schema,
)
from ferro.testing.stub import StubOptions, StubProvider

__all__ = [
    "POSTGRES_DSN",
    "REDIS_URL",
    "FakeUpstream",
    "OpenAICompatibleContract",
    "ProviderContract",
    "RecordedRequest",
    "StorageContract",
    "StrategyContract",
    "StubOptions",
    "StubProvider",
    "as_config",
    "collect",
    "fake_upstream",
    "ferro_app",
    "ferro_client",
    "ferro_server",
    "http_session",
    "installed_plugins",
    "make_provider",
    "needs_postgres",
    "needs_redis",
    "openai_client",
    "patch_aioresponses",
    "postgres_schema",
    "route_mocks_to_session",
    "single_provider",
    "sse_body",
    "stub_config",
    "stub_plugins",
]

patch_aioresponses()
route_mocks_to_session()
