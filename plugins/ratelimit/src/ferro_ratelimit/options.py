"""The rate-limit options, as written under a ``plugins[]`` entry's ``config``.

A :class:`Limit` is what one bucket owner (an API key, a client address, a provider) may
use; :class:`Options` says who gets which limit, where the buckets live, and which proxies
may name the client. The older gateway's ``requests_per_second`` and ``burst`` are the
per-key limit when ``per_key`` is not given.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import attrs
from ferro import Duration

__all__ = ["DEFAULT_REQUESTS_PER_SECOND", "Limit", "Options", "RedisOptions"]

#: The per-key rate when the config gives none (the older gateway's default).
DEFAULT_REQUESTS_PER_SECOND = 100.0


def _non_negative(_inst: Any, attr: attrs.Attribute, value: float) -> None:
    if value < 0:
        raise ValueError(f"must not be negative (got {value:g})", attr)


def _positive(_inst: Any, attr: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValueError(f"must be positive (got {value:g})", attr)


def _off_or_at_least_one(_inst: Any, attr: attrs.Attribute, value: float | None) -> None:
    if value is not None and value != 0 and value < 1:
        raise ValueError(f"must be 0 (off) or at least 1 (got {value:g})", attr)


def _one_of(*choices: str) -> Any:
    def check(_inst: Any, attr: attrs.Attribute, value: str) -> None:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)} (got {value!r})", attr)

    return check


def _networks(_inst: Any, attr: attrs.Attribute, value: list[str]) -> None:
    for entry in value:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"must list IP addresses or CIDR networks such as 10.0.0.0/8 "
                             f"(got {entry!r})", attr) from None


@attrs.define
class Limit:
    """What one bucket owner may use; a rate of 0 leaves that limit off."""

    #: Requests a second, refilled continuously.
    requests_per_second: float = attrs.field(default=0.0, validator=_non_negative)
    #: Requests that may come at once after a pause (unset or 0: requests_per_second, and
    #: at least 1).
    burst: float | None = attrs.field(default=None, validator=_off_or_at_least_one)
    #: Tokens (prompt plus completion, as the upstream reports them) a minute.
    tokens_per_minute: float = attrs.field(default=0.0, validator=_off_or_at_least_one)

    @classmethod
    def from_attribute(cls, value: Any) -> Limit:
        """The limit a key store attached to a key (its ``rate_limit`` attribute): a
        mapping of this class's fields. Raises ValueError, saying why, for anything else."""
        if not isinstance(value, Mapping):
            raise ValueError(f"expected a mapping of {_FIELD_LIST}, got {type(value).__name__}")
        for name, number in value.items():
            if name not in _FIELDS:
                raise ValueError(f"unknown key {name!r} (expected one of: {_FIELD_LIST})")
            if not (_is_number(number) or (number is None and name == "burst")):
                raise ValueError(f"{name}: expected a number, got {number!r}")
        try:
            return cls(**value)
        except ValueError as exc:  # a validator's, which names its field second
            raise ValueError(f"{exc.args[1].name}: {exc.args[0]}") from None


_FIELDS = tuple(a.name for a in attrs.fields(Limit))
_FIELD_LIST = ", ".join(_FIELDS)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@attrs.define
class RedisOptions:
    url: str = "redis://127.0.0.1:6379/0"
    #: Every key the limiter writes starts with it: gateways with one prefix share limits.
    prefix: str = "ferro:ratelimit:"
    #: The longest one Redis call may take (connecting included) before it counts as failed.
    timeout: Duration = attrs.field(default=Duration(0.25), validator=_positive)


@attrs.define
class Options:
    #: Where the buckets live: ``memory`` (this process) or ``redis`` (shared).
    backend: str = attrs.field(default="memory", validator=_one_of("memory", "redis"))
    #: Each API key's limit (with API keys off: each client address's).
    per_key: Limit | None = None
    #: Limits by key name, in place of ``per_key`` for those keys.
    keys: dict[str, Limit] = attrs.Factory(dict)
    #: Each client address's limit.
    per_ip: Limit | None = None
    #: Each provider's (target's) limit.
    per_provider: Limit | None = None
    #: Limits by target name, in place of ``per_provider`` for those targets.
    providers: dict[str, Limit] = attrs.Factory(dict)
    #: Proxies (addresses or CIDR networks) whose X-Forwarded-For names the client.
    trusted_proxies: list[str] = attrs.field(factory=list, validator=_networks)
    #: The most buckets the memory backend keeps; the least recently used go first.
    max_buckets: int = attrs.field(default=100_000, validator=_positive)
    #: What a request gets when the Redis backend fails: ``allow`` (unlimited) or ``deny``
    #: (a 503).
    on_backend_error: str = attrs.field(default="allow", validator=_one_of("allow", "deny"))
    redis: RedisOptions = attrs.Factory(RedisOptions)
    #: The older gateway's options: the per-key limit when ``per_key`` is not given.
    requests_per_second: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(_non_negative))
    burst: float | None = attrs.field(default=None, validator=_off_or_at_least_one)

    def __attrs_post_init__(self) -> None:
        if self.per_key is not None and (self.requests_per_second is not None
                                         or self.burst is not None):
            raise ValueError("give either per_key or the older requests_per_second and burst, "
                             "not both", attrs.fields(Options).per_key)

    def key_limit(self) -> Limit:
        """The per-key limit: ``per_key``, else the older options (100 requests a second,
        burst the same, when neither is given)."""
        if self.per_key is not None:
            return self.per_key
        rps = self.requests_per_second
        return Limit(DEFAULT_REQUESTS_PER_SECOND if rps is None else rps, self.burst)
