"""Outbound proxies from the environment, as curl and the providers' own SDKs read them:
``HTTPS_PROXY`` for ``https`` upstreams, ``HTTP_PROXY`` for ``http`` ones (the lowercase
names win over the uppercase), ``NO_PROXY`` for the hosts reached directly.

A proxy is an ``http://[user:password@]host[:port]`` URL (the port defaults to 80; a bare
``host:port`` is read as ``http://``). ``NO_PROXY`` is a list, separated by commas or
spaces, of host names (``example.com`` and ``.example.com`` cover the name and every name
under it), IP addresses and networks (``10.0.0.0/8``), each with an optional ``:port``;
``*`` reaches every host directly. Loopback hosts (``localhost``, ``127.0.0.0/8``, ``::1``)
are always reached directly, as a local model server is.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

import attrs

from ferro.errors import ConfigError

__all__ = ["Proxies", "Proxy"]

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


@attrs.frozen
class Proxy:
    """An HTTP proxy: where it listens, and the ``Proxy-Authorization`` value its URL's
    credentials make (None without credentials)."""

    host: str
    port: int
    authorization: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str, variable: str) -> Proxy:
        """The proxy of ``url``, the value of ``variable``; a ConfigError naming the
        variable for a URL that is not an ``http://`` proxy's."""
        text = url.strip()
        parts = urlsplit(text if "://" in text else f"http://{text}")
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme.lower() != "http" or not parts.hostname or port == -1:
            raise ConfigError(f"{variable} is not an http:// proxy URL (such as "
                              f"http://proxy.example.com:3128): {_without_password(text)!r}")
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(pair.encode()).decode()
        return cls(parts.hostname, port or 80, authorization)


def _without_password(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


@attrs.define
class _Bypass:
    """One ``NO_PROXY`` entry."""

    domain: str = ""
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = None

    @classmethod
    def parse(cls, entry: str) -> _Bypass:
        host, port = entry, None
        if entry.startswith("["):  # [::1]:8080
            host, _, rest = entry[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
        elif entry.count(":") == 1:
            name, _, number = entry.partition(":")
            if number.isdigit():
                host, port = name, int(number)
        try:
            return cls(network=ipaddress.ip_network(host, strict=False), port=port)
        except ValueError:
            return cls(domain=host.lower().lstrip("*").lstrip("."), port=port)

    def covers(self, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
               port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return address is not None and address in self.network
        return bool(self.domain) and (host == self.domain or host.endswith("." + self.domain))


class Proxies:
    """The proxies of an environment, and which upstream goes through which."""

    def __init__(self, http: Proxy | None, https: Proxy | None, no_proxy: str = "") -> None:
        self.by_scheme = {"http": http, "https": https}
        entries = no_proxy.replace(",", " ").split()
        self.everything_direct = "*" in entries
        self.direct = [_Bypass.parse(entry) for entry in entries if entry != "*"]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Proxies | None:
        """The environment's proxies; None when it names none. Raises ConfigError for a
        value that is not a proxy URL."""
        found: dict[str, Proxy | None] = {}
        for scheme in ("http", "https"):
            name = next((n for n in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY")
                         if env.get(n, "").strip()), None)
            found[scheme] = Proxy.parse(env[name], name) if name else None
        if found["http"] is None and found["https"] is None:
            return None
        return cls(found["http"], found["https"],
                   env.get("no_proxy") or env.get("NO_PROXY") or "")

    def for_origin(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy a call to ``scheme://host:port`` goes through (None: direct)."""
        proxy = self.by_scheme.get(scheme)
        if proxy is None or self.everything_direct:
            return None
        host = host.lower().rstrip(".")
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            address = None
        if host in _LOOPBACK_NAMES or (address is not None and address.is_loopback):
            return None
        if any(entry.covers(host, address, port) for entry in self.direct):
            return None
        return proxy
