"""Webhooks: signed JSON events posted to configured URLs when a request fails, a circuit
breaker opens or closes, or a threshold over a sliding window is crossed or recovers.

Receivers check each POST with :func:`verify_signature` (see README.md for the scheme)."""

from ferro import hookimpl

from ferro_webhooks.events import EVENT_TYPES, Event
from ferro_webhooks.options import Options
from ferro_webhooks.plugin import NAME, WEBHOOKS, Webhooks, WebhooksEntry, install
from ferro_webhooks.signing import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify_signature,
)

__all__ = [
    "EVENT_ID_HEADER",
    "EVENT_TYPES",
    "EVENT_TYPE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WEBHOOKS",
    "Event",
    "Options",
    "Webhooks",
    "WebhooksEntry",
    "sign",
    "verify_signature",
]


@hookimpl
def register_plugins(register):
    register(NAME, WebhooksEntry)


@hookimpl
def configure_app(app, config):
    install(app, config)
