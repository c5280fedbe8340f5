"""The ``memory`` response cache."""

from ferro import hookimpl

from ferro_cache_memory.cache import MemoryCache

__all__ = ["MemoryCache"]


@hookimpl
def register_caches(register):
    register("memory", MemoryCache)
