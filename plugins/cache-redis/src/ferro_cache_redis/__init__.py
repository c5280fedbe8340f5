"""The ``redis`` response cache."""

from ferro import hookimpl

from ferro_cache_redis.cache import RedisCache

__all__ = ["RedisCache"]


@hookimpl
def register_caches(register):
    register("redis", RedisCache)
