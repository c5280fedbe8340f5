"""Getting events to their endpoints: a bounded queue per endpoint with a few sender tasks
posting from it, each POST signed and given a time limit, retried with backoff and jitter
after a connection error, a timeout, a 429 or a 5xx (never after another 4xx), and a
bounded flush of what is queued when the app stops.

Only the configured URL is ever posted to: redirects are not followed (a 3xx is a failed
delivery), and no proxy is taken from the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp
import attrs
from ferro import RetryConfig, backoff_delay, retry_after_seconds

from ferro_webhooks.events import EVENT_TYPES, Event
from ferro_webhooks.options import Delivery, Endpoint, Options
from ferro_webhooks.signing import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)

__all__ = ["Channel", "Outbox", "Outcome"]

log = logging.getLogger("ferro.webhooks")

Sleep = Callable[[float], Awaitable[None]]


class _Sometimes:
    """A warning logged at once, then at most once per ``interval`` seconds, saying how
    many times it happened since it was last logged."""

    def __init__(self, message: str, interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._message = message + " (%d time(s) since the last such message)"
        self._interval = interval
        self._clock = clock
        self._next = float("-inf")
        self._held = 0

    def warn(self, *args: object) -> None:
        self._held += 1
        now = self._clock()
        if now < self._next:
            return
        self._next = now + self._interval
        log.warning(self._message, *args, self._held)
        self._held = 0


@attrs.frozen
class Outcome:
    """How one POST went: delivered (no ``problem``), or why not, whether that is worth
    another try, and the wait the endpoint asked for."""

    problem: str | None = None
    retry: bool = False
    retry_after: float | None = None


class Channel:
    """One endpoint: its queue, the senders posting from it, and what became of the events
    offered to it (``delivered``, ``failed`` once every try was spent, ``dropped`` because
    the queue was full)."""

    def __init__(self, endpoint: Endpoint, delivery: Delivery, *,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.endpoint = endpoint
        retry = delivery.retry
        self.policy = RetryConfig(attempts=retry.attempts, backoff=retry.backoff,
                                  factor=retry.factor, max_backoff=retry.max_backoff,
                                  jitter=retry.jitter)
        self.queue: asyncio.Queue[Event] = asyncio.Queue(delivery.queue_size)
        self.delivered = self.failed = self.dropped = 0
        self.session: aiohttp.ClientSession | None = None
        self._senders_wanted = delivery.senders
        self._senders: list[asyncio.Task[None]] = []
        self._busy = 0
        self._timeout = aiohttp.ClientTimeout(total=delivery.timeout)
        self._sleep = sleep
        self._dropping = _Sometimes("webhook %s: queue full, a %s event was dropped")
        self._failing = _Sometimes("webhook %s: event %s was not delivered: %s")

    @property
    def pending(self) -> int:
        """Events queued or being sent."""
        return self.queue.qsize() + self._busy

    def offer(self, event: Event) -> None:
        """Queue ``event``, or drop and count it when the queue is full (never waits)."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            self._dropping.warn(self.endpoint.url, event.type)

    def start(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self._senders = [asyncio.create_task(self._send_queued())
                         for _ in range(self._senders_wanted)]

    async def stop(self) -> None:
        for sender in self._senders:
            sender.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        self._senders = []

    async def _send_queued(self) -> None:
        while True:
            event = await self.queue.get()
            self._busy += 1
            try:
                await self.deliver(event)
            except Exception:  # a bug must not stop the sender
                log.exception("webhook %s: delivering event %s failed", self.endpoint.url,
                              event.id)
            finally:
                self._busy -= 1
                self.queue.task_done()

    async def deliver(self, event: Event) -> bool:
        """POST ``event`` until the endpoint takes it (a 2xx) or the retry policy gives up;
        whether it took it."""
        body = event.body()
        attempts = self.policy.attempts
        for attempt in range(1, attempts + 1):
            outcome = await self.post(event, body)
            if outcome.problem is None:
                self.delivered += 1
                return True
            if not outcome.retry or attempt == attempts:
                break
            await self._sleep(self._wait(attempt, outcome.retry_after))
        self.failed += 1
        self._failing.warn(self.endpoint.url, event.id, outcome.problem)
        return False

    async def post(self, event: Event, body: bytes) -> Outcome:
        """One try, signed with a timestamp of now."""
        assert self.session is not None, "start() the channel first"
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: event.id,
            EVENT_TYPE_HEADER: event.type,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self.endpoint.secret, timestamp, body),
        }
        try:
            async with self.session.post(self.endpoint.url, data=body, headers=headers,
                                         timeout=self._timeout,
                                         allow_redirects=False) as response:
                status, retry_after = response.status, response.headers.get("Retry-After")
        except TimeoutError:
            return Outcome(f"no answer within {self._timeout.total:g}s", retry=True)
        except (aiohttp.ClientError, OSError) as exc:
            return Outcome(f"{type(exc).__name__}: {exc}", retry=True)
        if 200 <= status < 300:
            return Outcome()
        return Outcome(f"the endpoint answered {status}", retry=status == 429 or status >= 500,
                       retry_after=retry_after_seconds(retry_after))

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        """The wait before retry ``attempt``: the endpoint's ``Retry-After`` when it sent
        one, else the backoff; either way at most ``max_backoff``."""
        if retry_after is not None:
            return min(retry_after, self.policy.max_backoff)
        return backoff_delay(attempt, self.policy)


class Outbox:
    """Every endpoint's channel, and which of them each event type goes to."""

    def __init__(self, options: Options, *, sleep: Sleep = asyncio.sleep) -> None:
        self.channels = [Channel(e, options.delivery, sleep=sleep) for e in options.endpoints]
        self._routes = {t: [c for c in self.channels if t in c.endpoint.events]
                        for t in EVENT_TYPES}
        self._flush_timeout = options.delivery.flush_timeout

    def wants(self, event_type: str) -> bool:
        """Whether any endpoint is sent events of ``event_type``."""
        return bool(self._routes[event_type])

    def publish(self, event: Event) -> None:
        """Queue ``event`` for every endpoint sent its type (never waits)."""
        for channel in self._routes[event.type]:
            channel.offer(event)

    def start(self, session: aiohttp.ClientSession) -> None:
        for channel in self.channels:
            channel.start(session)

    async def close(self) -> None:
        """Send what is queued, for at most ``flush_timeout`` seconds, then stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._flush_timeout):
                await asyncio.gather(*(c.queue.join() for c in self.channels))
        left = sum(c.pending for c in self.channels)
        if left:
            log.warning("webhooks: %d event(s) not delivered within flush_timeout (%gs)",
                        left, self._flush_timeout)
        await asyncio.gather(*(c.stop() for c in self.channels))
