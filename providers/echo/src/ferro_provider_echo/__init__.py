"""The echo provider: answers ``echo: <last user message>``. Deterministic, offline, free."""

from ferro import hookimpl

from ferro_provider_echo.provider import EchoProvider

__all__ = ["EchoProvider"]


@hookimpl
def register_providers(register):
    register("echo", EchoProvider)
