"""The ``ratelimit`` plugin: token buckets per API key, per client address and per provider.

- ``before_request`` checks the caller's buckets, its key's (with API keys off: its
  address's) and its address's, in one backend call; over a limit it answers a 429, and
  either way the reply carries the ``x-ratelimit-*`` headers.
- ``before_attempt`` checks the bucket of the provider about to be called, before each
  call (retries included); a refusal moves the strategy on to its next target.
- ``exchange_completed`` debits the tokens the upstream reported (a stream's, once it has
  ended) from the token buckets of the caller and of the provider that answered.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from ferro import Exchange, GatewayError, Identity, RequestContext, Target

from ferro_ratelimit.buckets import Backend, Check, Policy
from ferro_ratelimit.clientip import TrustedProxies
from ferro_ratelimit.headers import limit_headers, refusal
from ferro_ratelimit.memory import MemoryBackend
from ferro_ratelimit.options import Limit, Options

__all__ = ["FORWARDED_IP", "KEY_ATTRIBUTE", "RATE_LIMITED", "RateLimit"]

#: The key attribute a key store sets to give a key its own limit (see README).
KEY_ATTRIBUTE = "rate_limit"
#: ``ctx.metadata`` key naming whose limit refused the request: ``api_key``, ``ip`` or
#: ``provider`` (for metrics).
RATE_LIMITED = "rate_limited"
#: ``ctx.metadata`` key holding the client's address when a trusted proxy named it.
FORWARDED_IP = "forwarded_ip"
#: How many callers (keys, addresses) keep the checks of their requests; past it they are
#: all worked out afresh.
MAX_REMEMBERED = 10_000


class RateLimit:
    Options = Options

    def __init__(self, options: Options, *, clock: Callable[[], float] = time.monotonic,
                 backend: Backend | None = None) -> None:
        """``clock`` is the memory backend's; ``backend`` replaces the configured one."""
        self.per_key = Policy.of(options.key_limit())
        self.keys = {name: Policy.of(limit) for name, limit in options.keys.items()}
        self.per_ip = _policy(options.per_ip)
        self.per_provider = _policy(options.per_provider)
        self.providers = {name: Policy.of(limit) for name, limit in options.providers.items()}
        self.proxies = TrustedProxies(options.trusted_proxies) \
            if options.trusted_proxies else None
        self.backend = backend or _backend(options, clock)
        #: Whether a configured limit counts tokens (a key's own limit may, whatever this
        #: says).
        self._counts_tokens = any(
            policy is not None and policy.tokens is not None
            for policy in (self.per_key, self.per_ip, self.per_provider,
                           *self.keys.values(), *self.providers.values()))
        #: target name -> what a call to it asks of its buckets (none: it has no limit)
        self._provider_checks: dict[str, list[Check]] = {}
        #: (key id, key name, address) -> what a request of that caller asks of its buckets
        self._request_checks: dict[tuple[str | None, str, str], tuple[Check, ...]] = {}

    async def before_request(self, ctx: RequestContext) -> None:
        identity = ctx.identity
        ip = self._client_ip(ctx) if self._by_address(identity) else ""
        checks = self._checks_of(identity, ip)
        if checks:
            ctx.reply_headers.update(await self._take(ctx, checks))

    def _checks_of(self, identity: Identity | None, ip: str) -> tuple[Check, ...]:
        """What a request of this caller asks of its buckets; remembered, unless its key
        has a limit of its own (an attribute, which may change)."""
        if identity is None:
            caller: tuple[str | None, str, str] | None = (None, "", ip)
        elif identity.attributes.get(KEY_ATTRIBUTE) is None:
            caller = (identity.key_id, identity.name, ip)
        else:
            caller = None
        checks = self._request_checks.get(caller) if caller is not None else None
        if checks is None:
            checks = tuple(check for policy, bucket, kind, who in self._owners(identity, ip)
                           for check in policy.checks(bucket, kind, who))
            if caller is not None:
                if len(self._request_checks) >= MAX_REMEMBERED:
                    self._request_checks.clear()
                self._request_checks[caller] = checks
        return checks

    @property
    def before_attempt(self) -> Callable[[RequestContext, Target], Awaitable[None]] | None:
        """The check of the bucket of the provider about to be called, run before each
        upstream call; None (nothing to run) when no provider has a limit."""
        if self.per_provider is None and not self.providers:
            return None
        return self._check_provider

    async def _check_provider(self, ctx: RequestContext, target: Target) -> None:
        checks = self._provider_checks.get(target.name)
        if checks is None:
            policy = self._provider_policy(target.name)
            checks = self._provider_checks[target.name] = policy.checks(
                _provider_bucket(target.name), "provider", target.name) if policy else []
        if checks:
            await self._take(ctx, checks)
        ctx.metadata.pop(RATE_LIMITED, None)  # the call goes ahead: an earlier refusal is moot

    def exchange_completed(self, exchange: Exchange) -> None:
        used = exchange.usage.total_tokens
        if used <= 0 or not exchange.attempts:  # no upstream was called: no tokens spent
            return
        identity = exchange.identity
        if not self._counts_tokens and (
                identity is None or identity.attributes.get(KEY_ATTRIBUTE) is None):
            return  # no bucket of tokens to debit
        ip = _exchange_ip(exchange) if self._by_address(identity) else ""
        debits = [policy.debit(bucket, used) for policy, bucket, _kind, _who
                  in self._owners(identity, ip)]
        provider = self._provider_policy(exchange.provider)
        if provider is not None:
            debits.append(provider.debit(_provider_bucket(exchange.provider), used))
        checks = [debit for debit in debits if debit is not None]
        if checks:
            self.backend.debit(checks)

    async def aclose(self) -> None:
        await self.backend.aclose()

    # --- whose buckets ----------------------------------------------------------------------

    def _by_address(self, identity: Identity | None) -> bool:
        """Whether the caller's address names one of its buckets."""
        return identity is None or self.per_ip is not None

    def _owners(self, identity: Identity | None, ip: str) -> list[tuple[Policy, str, str, str]]:
        """The caller's limits, as (policy, bucket name, kind, who): its key's (with API keys
        off, its address's) and its address's."""
        owners = []
        policy = self._key_policy(identity)
        if policy is not None:
            if identity is not None:
                owners.append((policy, f"key:{identity.key_id}", "api_key",
                               identity.name or identity.key_id))
            else:
                owners.append((policy, f"key-ip:{ip}", "ip", ip))
        if self.per_ip is not None:
            owners.append((self.per_ip, f"ip:{ip}", "ip", ip))
        return owners

    def _key_policy(self, identity: Identity | None) -> Policy | None:
        """The key's own limit (its ``rate_limit`` attribute), else its name's in ``keys``,
        else ``per_key``."""
        if identity is None:
            return self.per_key
        attribute = identity.attributes.get(KEY_ATTRIBUTE)
        if attribute is None:
            return self.keys.get(identity.name, self.per_key)
        try:
            return Policy.of(Limit.from_attribute(attribute))
        except ValueError as exc:
            raise GatewayError(
                f"API key {identity.name or identity.key_id} has an invalid {KEY_ATTRIBUTE} "
                f"attribute ({exc}); fix it in the key store", code="invalid_rate_limit") \
                from None

    def _provider_policy(self, name: str) -> Policy | None:
        return self.providers.get(name, self.per_provider)

    def _client_ip(self, ctx: RequestContext) -> str:
        peer = ctx.client_ip
        if self.proxies is None:
            return peer
        ip = self.proxies.client(peer, ctx.headers)
        if ip != peer:
            ctx.metadata[FORWARDED_IP] = ip  # for the debit after the reply, and for logs
        return ip

    # --- checking ---------------------------------------------------------------------------

    async def _take(self, ctx: RequestContext, checks: Sequence[Check]) -> dict[str, str]:
        """Take from the buckets, and the ``x-ratelimit-*`` headers; a 429 when refused."""
        verdict = await self.backend.take(checks)
        if verdict is None:  # the backend failed, and the request goes through
            return {}
        admitted, levels = verdict
        headers = limit_headers(checks, levels)
        if not admitted:
            error, worst = refusal(checks, levels, headers)
            ctx.metadata[RATE_LIMITED] = worst.kind
            raise error
        return headers


def _policy(limit: Limit | None) -> Policy | None:
    return Policy.of(limit) if limit is not None else None


def _provider_bucket(name: str) -> str:
    return f"provider:{name}"


def _exchange_ip(exchange: Exchange) -> str:
    return exchange.metadata.get(FORWARDED_IP) or exchange.client_ip


def _backend(options: Options, clock: Callable[[], float]) -> Backend:
    if options.backend == "redis":
        from ferro_ratelimit.redis_backend import RedisBackend  # imports redis only if used

        return RedisBackend(options.redis, deny_on_error=options.on_backend_error == "deny")
    return MemoryBackend(options.max_buckets, clock)
