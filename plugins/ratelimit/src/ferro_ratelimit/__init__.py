"""The ``ratelimit`` plugin, also registered under the older gateway's name ``rate-limit``
(whose ``requests_per_second`` and ``burst`` load unchanged, as a per-key limit)."""

from ferro import hookimpl

from ferro_ratelimit.options import Limit, Options
from ferro_ratelimit.plugin import RateLimit

__all__ = ["Limit", "Options", "RateLimit"]


@hookimpl
def register_plugins(register):
    register("ratelimit", RateLimit)
    register("rate-limit", RateLimit)
