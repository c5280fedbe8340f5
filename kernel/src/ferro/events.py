"""The event fan-out: ``exchange_completed`` listeners (the plugins', resolved once, and the
kernel's own, such as the access log, added with :meth:`Events.add`), called after each
reply is written (the awaitables they return run as bounded background tasks), and
``breaker_state_changed``, called when a circuit breaker changes state.

The exchanges completed in one turn of the event loop are handed over together at the
start of the next, listener by listener: each listener sees every exchange, in the order
they completed, and runs over a batch of them while its code is still in the CPU's caches
(under load this costs each listener a third of what one exchange at a time does). Off a
running loop, an exchange is handed over at once."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from ferro.plugins import FerroPluginManager
from ferro.resilience import BreakerState
from ferro.types import Exchange

__all__ = ["Events"]

log = logging.getLogger("ferro.events")

MAX_BACKGROUND_TASKS = 1000


class Events:
    def __init__(self, pm: FerroPluginManager) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.dropped = 0
        self._own: list[Callable[[Exchange], Any]] = []
        #: Exchanges not handed over yet (or what makes them), each with its config's own
        #: listeners.
        self._pending: list[tuple[Exchange | Callable[[], Exchange],
                                  Sequence[Callable[[Exchange], Any]]]] = []
        self.resolve(pm)

    def resolve(self, pm: FerroPluginManager) -> None:
        """Resolve the listeners registered with ``pm``: once more after ``configure_app``,
        so that a plugin may register a listener object of its own for one app there
        (``pm.register(AppMetrics(registry))``)."""
        self._plugged = [_bind(impl.function, impl.argnames)
                         for impl in pm.hook.exchange_completed.get_hookimpls()]
        self.listeners: list[Callable[[Exchange], Any]] = [*self._own, *self._plugged]
        hook = pm.hook.breaker_state_changed
        self._breaker_hook = hook if hook.get_hookimpls() else None

    def add(self, listener: Callable[[Exchange], Any]) -> None:
        """Hand every exchange to ``listener`` too, before the plugins' listeners: one of
        the kernel's own, with no plugin to hold it (kept when the plugins' are resolved
        again)."""
        self._own.append(listener)
        self.listeners = [*self._own, *self._plugged]

    def breaker_changed(self, provider: str, old: BreakerState, new: BreakerState) -> None:
        """Tell the ``breaker_state_changed`` listeners (a failing one is logged)."""
        if self._breaker_hook is None:
            return
        try:
            self._breaker_hook(provider=provider, old=old, new=new)
        except Exception:
            log.exception("breaker_state_changed listener failed")

    def emit(self, exchange: Exchange,
             also: Sequence[Callable[[Exchange], Any]] = ()) -> None:
        """Hand ``exchange`` to every listener, and to ``also`` (the listeners of the
        plugin instances of the config that served it), at the next turn of the loop."""
        self._later(exchange, also)

    def emit_made(self, make: Callable[[], Exchange],
                  also: Sequence[Callable[[Exchange], Any]] = ()) -> None:
        """:meth:`emit` the exchange ``make()`` makes, made when it is handed over (with the
        batch's others, which is cheaper too)."""
        self._later(make, also)

    def _later(self, item: Exchange | Callable[[], Exchange],
               also: Sequence[Callable[[Exchange], Any]]) -> None:
        self._pending.append((item, also))
        if len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop running
                self.flush()

    def flush(self) -> None:
        """Hand the pending exchanges over now."""
        pending, self._pending = self._pending, []
        batch = []
        for item, also in pending:
            exchange = item if isinstance(item, Exchange) else _made(item)
            if exchange is not None:
                batch.append((exchange, also))
        # listener by listener, each over the whole batch; then each config's own
        calls = [(listener, exchange) for listener in self.listeners for exchange, _ in batch]
        calls += [(listener, exchange) for exchange, also in batch for listener in also]
        for listener, exchange in calls:
            try:
                result = listener(exchange)
            except Exception:
                log.exception("exchange_completed listener %r failed", listener)
                continue
            if result is not None:  # most listeners return None
                self._background(result)

    def _background(self, result: Any) -> None:
        """Run what a listener returned, when it is awaitable, as a bounded background task."""
        if not inspect.isawaitable(result):
            return
        if len(self.tasks) >= MAX_BACKGROUND_TASKS:
            self.dropped += 1
            if inspect.iscoroutine(result):
                result.close()
            return
        task = asyncio.ensure_future(result)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("exchange_completed listener failed", exc_info=task.exception())

    async def drain(self) -> None:
        """Hand the pending exchanges over, and wait (briefly) for the listeners' tasks."""
        self.flush()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)


def _made(make: Callable[[], Exchange]) -> Exchange | None:
    try:
        return make()
    except Exception:
        log.exception("an exchange could not be made for the listeners")
        return None


def _bind(function: Callable[..., Any], argnames: tuple[str, ...]) -> Callable[[Exchange], Any]:
    """A listener called as pluggy would (an implementation may take no argument), without
    pluggy's per-call dispatch. ``argnames`` (checked against the hookspec by pluggy) are
    the implementation's positional arguments without a default: ``("exchange",)`` or none,
    so one that takes ``exchange`` is the listener itself."""
    if argnames:
        return function
    return lambda exchange: function()
