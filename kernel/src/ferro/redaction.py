"""Keeping credentials out of what the gateway says and logs.

:data:`SECRETS` holds the provider credentials of every config applied in this process:
each provider's ``api_key``, the values of its configured headers that carry credentials
(``Authorization``, ``*-key``, ``*token*``, ...) and a password in its ``base_url``. They
are learned as each config's providers are built, at start-up and on every reload, and
kept (a reload that rotates a key still hides the old one). Values shorter than
:data:`MIN_SECRET_LENGTH` are not matched by value: they would match ordinary words.

:func:`scrub` removes those values from a text, and anything shaped like a credential:

- ``Bearer <token>`` (8 characters or more);
- the value of an ``authorization``, ``api-key`` or ``api_key`` field (``x-api-key: ...``,
  ``"api_key": "..."``, ``api-key=...``) and of a ``key=``, ``api_key=`` or
  ``access_token=`` query parameter;
- ``sk-`` keys (OpenAI, Anthropic's ``sk-ant-``, DeepSeek, ...), Google API keys
  (``AIza...``) and AWS access key ids (``AKIA...``, ``ASIA...``).

It runs only where text leaves the gateway on a failure: the message and headers of every
:class:`~ferro.errors.GatewayError`, and every log line (:mod:`ferro.logs`). Answers that
succeed are relayed as the upstream's bytes and never scrubbed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

__all__ = ["MASK", "MIN_SECRET_LENGTH", "SECRETS", "Secrets", "scrub"]

#: What a secret is replaced with.
MASK = "[REDACTED]"
#: The shortest value hidden by value.
MIN_SECRET_LENGTH = 8

_VALUE = r"""[^\s"'&,;}<>]"""
_CREDENTIAL = re.compile(
    rf"(?i:(\bbearer\s+)){_VALUE}{{8,}}"
    rf"|(?i:((?:authorization|api[-_]key)[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?"
    rf"|[?&](?:key|api[-_]?key|access_token)=))(?!(?i:bearer)\s){_VALUE}+"
    r"|\bsk-[A-Za-z0-9_-]{16,}"
    r"|\bAIza[0-9A-Za-z_-]{35}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
)
#: What a text holds, lower-cased, when one of the shapes above may be in it: a text with
#: none of these is not searched (most are not: the search costs ten times the check).
_TRIGGERS = ("bearer", "authorization", "api_key", "api-key", "key=", "access_token=", "sk-",
             "aiza", "akia", "asia")
#: Header names whose values are credentials.
_SECRET_HEADER = re.compile(r"(?i)auth|key|token|secret|password|cookie|signature|credential")


def _mask(match: re.Match[str]) -> str:
    return (match.group(1) or match.group(2) or "") + MASK


class Secrets:
    """The credential values to hide, longest first (so a secret that holds another is
    hidden whole)."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: tuple[str, ...] = ()

    def learn(self, values: Iterable[str | None]) -> None:
        """Hide ``values`` from now on (None, empty and too-short values are ignored)."""
        known = set(self.values)
        new = {v for v in values if v and len(v) >= MIN_SECRET_LENGTH} - known
        if new:
            self.values = tuple(sorted(known | new, key=len, reverse=True))

    def learn_provider(self, api_key: str | None, headers: Mapping[str, str],
                       base_url: str | None) -> None:
        """Hide a provider's key, its credential headers' values (and the token after an
        auth scheme such as ``Bearer``) and the password in its base URL."""
        values = [api_key]
        for name, value in headers.items():
            if _SECRET_HEADER.search(name):
                values += [value, value.rpartition(" ")[2]]
        if base_url and "@" in base_url:
            values.append(urlsplit(base_url).password)
        self.learn(values)

    def scrub(self, text: str) -> str:
        for secret in self.values:
            if secret in text:
                text = text.replace(secret, MASK)
        lowered = text.lower()
        for trigger in _TRIGGERS:
            if trigger in lowered:
                return _CREDENTIAL.sub(_mask, text)
        return text


#: Every provider credential of every config applied in this process. One per process, as
#: logging is: a log line can quote any of them.
SECRETS = Secrets()


def scrub(text: str) -> str:
    """``text`` without the configured secrets and without anything shaped like a
    credential (see the module's docstring)."""
    return SECRETS.scrub(text)
