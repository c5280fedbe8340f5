"""aioresponses with the gateway: on aiohttp >= 3.14 (:func:`patch_aioresponses`), and
seeing the gateway's upstream calls (:func:`route_mocks_to_session`)."""

from __future__ import annotations

import inspect
from typing import Any

import aiohttp

from ferro.http_client import HTTPClient

__all__ = ["patch_aioresponses", "route_mocks_to_session"]


def patch_aioresponses() -> None:
    """Let aioresponses <= 0.7.9 build responses on aiohttp >= 3.14.

    aiohttp 3.14 made ``ClientResponse(stream_writer=...)`` a required argument, and
    aioresponses 0.7.9 (the newest release) does not pass it, so every mocked request fails
    with ``TypeError: ... missing 1 required keyword-only argument: 'stream_writer'``
    (pnuckowski/aioresponses#289; fixes proposed in #288 and #292). This supplies the
    argument. It does nothing on an aiohttp or aioresponses that does not need it; delete it
    once a fixed aioresponses is released.
    """
    try:
        import aioresponses.core as core
    except ImportError:
        return
    if "stream_writer" not in inspect.signature(aiohttp.ClientResponse.__init__).parameters:
        return
    original = core.RequestMatch._build_response
    if getattr(original, "ferro_patched", False):
        return

    class _SentRequest:
        """Stands in for the writer of a request that was never sent."""

        output_size = 0

    def build_response(self: Any, url: Any, *args: Any, response_class: Any = None, **kw: Any):
        base = response_class or aiohttp.ClientResponse

        class Response(base):  # type: ignore[misc, valid-type]
            def __init__(self, *a: Any, **k: Any) -> None:
                k.setdefault("stream_writer", _SentRequest())
                super().__init__(*a, **k)

        return original(self, url, *args, response_class=Response, **kw)

    build_response.ferro_patched = True  # type: ignore[attr-defined]
    core.RequestMatch._build_response = build_response


def route_mocks_to_session() -> None:
    """While an ``aioresponses`` mock is active, the gateway sends its upstream calls
    through aiohttp's session, which the mock patches, instead of its own client
    (:attr:`ferro.http_client.HTTPClient.enabled`); so a mock sees every upstream call of an
    in-process gateway, as it would with aiohttp alone."""
    try:
        import aioresponses.core as core
    except ImportError:
        return
    mock = core.aioresponses
    if getattr(mock.start, "ferro_patched", False):
        return
    start, stop = mock.start, mock.stop
    active: list[object] = []

    def started(self: Any) -> None:
        start(self)
        active.append(self)
        HTTPClient.enabled = False

    def stopped(self: Any) -> None:
        stop(self)
        if self in active:
            active.remove(self)
        HTTPClient.enabled = not active

    started.ferro_patched = True  # type: ignore[attr-defined]
    mock.start, mock.stop = started, stopped  # type: ignore[method-assign]
