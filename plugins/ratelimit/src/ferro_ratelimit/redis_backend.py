"""The ``redis`` backend: buckets in Redis, so every gateway process and host that points at
the same server and prefix enforces one limit.

A check is one round trip whatever the number of buckets, pipelined with the other
requests' on one connection (:mod:`ferro_ratelimit.resp`): one Lua script (sent once, then
called by its SHA with ``EVALSHA``) refills, checks and takes from all of a request's
buckets atomically. Its clock is the Redis server's ``TIME``, so gateways on hosts whose
clocks disagree still agree on the levels. A bucket is one string, ``"<level> <time>"``,
that expires when it would be full again (an absent bucket is full), so idle buckets cost
no memory.

Token debits are gathered per bucket and sent every :data:`DEBIT_EVERY` seconds, so
requests that end together cost one call, off the request path.

Each call is bounded by ``redis.timeout`` (connecting included). A check that fails or runs
out of time admits the request (``on_backend_error: allow``, logged at most every 30
seconds) or answers it with a 503 (``deny``); a failed debit is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from ferro import GatewayError

from ferro_ratelimit.buckets import Check, Verdict
from ferro_ratelimit.options import RedisOptions
from ferro_ratelimit.resp import RedisReplyError, RespClient, ScriptCall

__all__ = ["RateLimiterUnavailable", "RedisBackend"]

log = logging.getLogger("ferro.ratelimit")

#: KEYS: the buckets. ARGV[1]: 1 to admit only when every bucket holds one unit or more
#: (a check), 0 to take regardless (a debit); then for each bucket its capacity, refill
#: per second and cost. Returns the verdict (1 or 0) and each bucket's level, as strings.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local levels = {}
local admitted = 1
for i, key in ipairs(KEYS) do
  local capacity, rate = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  local level = capacity
  local state = redis.call('GET', key)
  if state then
    local space = string.find(state, ' ', 1, true)
    local elapsed = math.max(0, now - tonumber(string.sub(state, space + 1)))
    level = math.min(capacity, tonumber(string.sub(state, 1, space - 1)) + elapsed * rate)
  end
  if ARGV[1] == '1' and level < 1 then
    admitted = 0
  end
  levels[i] = level
end
local out = {admitted}
for i, key in ipairs(KEYS) do
  if admitted == 1 then
    local capacity, rate = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
    levels[i] = levels[i] - tonumber(ARGV[3 * i + 1])
    local full_in = math.ceil((capacity - levels[i]) / rate * 1000) + 1000
    redis.call('SET', key, string.format('%.17g %.6f', levels[i], now),
               'PX', string.format('%d', full_in))
  end
  out[i + 1] = string.format('%.17g', levels[i])
end
return out
"""

#: How often an unavailable Redis is logged.
WARN_EVERY = 30.0
#: How many distinct checks (sets of buckets: one per key, client address, ...) keep their
#: call encoded; past it they are all encoded afresh.
MAX_PREPARED = 10_000
#: How long token debits are gathered before they are sent, and the most buckets one
#: call carries: one call or a few every tenth of a second, however many requests end.
DEBIT_EVERY = 0.1
DEBIT_BATCH = 500


class RateLimiterUnavailable(GatewayError):
    """The rate limiter cannot tell whether the request is within its limits, and is
    configured to refuse it then (``on_backend_error: deny``)."""

    status = 503
    type = "server_error"
    code = "rate_limiter_unavailable"
    retryable = True


class RedisBackend:
    def __init__(self, options: RedisOptions, deny_on_error: bool = False) -> None:
        self.prefix = options.prefix
        self.timeout = float(options.timeout)
        self.deny_on_error = deny_on_error
        self.redis = RespClient(options.url, self.timeout)
        self.script = self.redis.script(TAKE)
        self._warned_at = -WARN_EVERY
        #: bucket key -> its gathered debit
        self._debits: dict[str, Check] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()
        #: checks -> their check's script call, encoded once (a check's arguments are
        #: its buckets' shapes and costs; the time is the server's)
        self._prepared: dict[tuple[Check, ...], ScriptCall] = {}

    async def take(self, checks: Sequence[Check]) -> Verdict | None:
        key = checks if isinstance(checks, tuple) else tuple(checks)
        call = self._prepared.get(key)
        if call is None:
            if len(self._prepared) >= MAX_PREPARED:
                self._prepared.clear()
            call = self._prepared[key] = self._prepare(checks, check=True)
        reply = await self._run(call)
        if reply is None:
            if self.deny_on_error:
                raise RateLimiterUnavailable(
                    "the rate limiter's Redis is unavailable; try again shortly")
            return None
        return reply[0] == 1, [float(level) for level in reply[1:]]

    def debit(self, checks: Sequence[Check]) -> None:
        """Gather the debits (per bucket); they go out together within
        :data:`DEBIT_EVERY`."""
        pending = self._debits
        for check in checks:
            known = pending.get(check.key)
            pending[check.key] = check if known is None else \
                known._replace(cost=known.cost + check.cost)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(DEBIT_EVERY, self._flush_now)

    async def flush(self) -> None:
        """Send the gathered debits, :data:`DEBIT_BATCH` buckets a call."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        debits, self._debits = list(self._debits.values()), {}
        for start in range(0, len(debits), DEBIT_BATCH):
            await self._run(self._prepare(debits[start:start + DEBIT_BATCH], check=False))

    async def aclose(self) -> None:
        await self.flush()
        if self._flushing:
            await asyncio.wait(self._flushing)
        await self.redis.aclose()

    def _flush_now(self) -> None:
        self._timer = None
        task = asyncio.ensure_future(self.flush())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    def _prepare(self, checks: Sequence[Check], check: bool) -> ScriptCall:
        args: list[float] = [1 if check else 0]
        for _key, rate, cost, *_ in checks:
            args += (rate.capacity, rate.per_second, cost)
        return self.script.prepare([self.prefix + c.key for c in checks], args)

    async def _run(self, call: ScriptCall) -> list[Any] | None:
        try:
            return await self.script.run(call)
        except (RedisReplyError, OSError, TimeoutError) as exc:
            self._unavailable(exc)
            return None

    def _unavailable(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            policy = "refusing requests" if self.deny_on_error else "not limiting requests"
            log.warning("rate limiter's Redis is unavailable, %s: %s: %s", policy,
                        type(exc).__name__, exc)
