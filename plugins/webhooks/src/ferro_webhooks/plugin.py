"""The ``webhooks`` entry of a config's ``plugins``, and the webhooks of one app.

The settings are a ``plugins[]`` entry, ``{name: webhooks, config: {...}}``: the kernel
checks the config against :class:`~ferro_webhooks.options.Options` as it builds the plugins
(a wrong key or value names its line), and :func:`install` reads the entry once more when
the app is configured, to give the app a :class:`Webhooks` of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from ferro import (
    PLUGIN_MANAGER,
    BreakerState,
    Config,
    Exchange,
    build_options,
    hookimpl,
    stop_task,
)

from ferro_webhooks.delivery import Outbox
from ferro_webhooks.events import BREAKER_EVENTS, REQUEST_FAILED, breaker_changed, request_failed
from ferro_webhooks.options import Options
from ferro_webhooks.thresholds import Thresholds

__all__ = ["NAME", "WEBHOOKS", "Webhooks", "WebhooksEntry", "install", "settings"]

#: The ``plugins[]`` entry's name.
NAME = "webhooks"
USER_AGENT = "ferro-webhooks"


class WebhooksEntry:
    """What the kernel builds for the ``webhooks`` entry: its options, checked (with the
    config's file lines) every time a config is applied. It runs at no stage of a request:
    the events come from the app's :class:`Webhooks`."""

    Options = Options

    def __init__(self, options: Options) -> None:
        """The options are checked by now; :func:`settings` reads them for the app."""


class Webhooks:
    """One app's webhooks, registered on its plugin manager: they hear its completed
    exchanges and its breakers' changes, and only queue events there (on the request
    path); senders post them, and thresholds are checked every ``check_every`` seconds."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.outbox = Outbox(options)
        self.thresholds = Thresholds(options.thresholds, self.failed)
        self._failure_status = 400 if options.client_errors else 500
        self._report_failures = self.outbox.wants(REQUEST_FAILED)
        self._watching = bool(options.thresholds)

    def failed(self, exchange: Exchange) -> bool:
        """Whether ``exchange`` failed: a 5xx, or any 4xx too with ``client_errors``."""
        return exchange.status >= self._failure_status

    @hookimpl
    def exchange_completed(self, exchange: Exchange) -> None:
        if self._report_failures and exchange.status >= self._failure_status:
            self.outbox.publish(request_failed(exchange))
        if self._watching:
            self.thresholds.observe(exchange)

    @hookimpl
    def breaker_state_changed(self, provider: str, old: BreakerState, new: BreakerState) -> None:
        if self.outbox.wants(BREAKER_EVENTS[new]):
            self.outbox.publish(breaker_changed(provider, old, new))

    async def run(self, app: web.Application) -> AsyncIterator[None]:
        """The app's cleanup context: while it runs, a client session of the webhooks' own,
        the senders and the threshold checks; as it stops, a bounded flush of what is
        queued."""
        async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as session:
            self.outbox.start(session)
            checks = asyncio.create_task(self._check_thresholds()) if self._watching else None
            try:
                yield
            finally:
                await stop_task(checks)
                await self.outbox.close()
                app[PLUGIN_MANAGER].unregister(self)

    async def _check_thresholds(self) -> None:
        while True:
            await asyncio.sleep(self.options.check_every)
            for event in self.thresholds.check():
                self.outbox.publish(event)


WEBHOOKS = web.AppKey("ferro_webhooks", Webhooks)


def settings(config: Config) -> Options | None:
    """The options of the enabled ``webhooks`` entry of ``config.plugins`` (None when there
    is none); a second enabled entry is a config error."""
    entries = [(i, entry) for i, entry in enumerate(config.plugins)
               if entry.name == NAME and entry.enabled]
    if not entries:
        return None
    if len(entries) > 1:
        raise config.error(("plugins", entries[1][0], "name"),
                           "only one webhooks entry may be enabled: list every endpoint "
                           "under the first one's config.endpoints")
    i, entry = entries[0]
    return build_options(WebhooksEntry, entry.config, config.source, ("plugins", i, "config"))


def install(app: web.Application, config: Config) -> None:
    """Give ``app`` its webhooks, when ``config`` has a ``webhooks`` entry."""
    options = settings(config)
    if options is None:
        return
    webhooks = app[WEBHOOKS] = Webhooks(options)
    app[PLUGIN_MANAGER].register(webhooks)
    app.cleanup_ctx.append(webhooks.run)
