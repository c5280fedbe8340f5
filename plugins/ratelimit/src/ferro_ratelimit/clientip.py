"""Which address a request comes from, for the per-address limits.

The TCP peer, unless the peer is one of the ``trusted_proxies``: then X-Forwarded-For is
read from the right (each proxy appends the address it got the request from), skipping
trusted proxies, and the first address that is not one is the client. What a client writes
into X-Forwarded-For itself sits to the left of that, and is never read; nor is the header
of a peer that is not trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

__all__ = ["TrustedProxies"]

FORWARDED_FOR = "x-forwarded-for"


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TrustedProxies:
    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def client(self, peer: str, headers: Mapping[str, str]) -> str:
        """The client's address for a request from ``peer`` with ``headers`` (lower-cased
        names). When every hop is a trusted proxy, the left-most one; when the hop a
        trusted proxy names is no address at all, that proxy."""
        if not self._trusted(_address(peer)):
            return peer
        client = peer
        for hop in reversed(headers.get(FORWARDED_FOR, "").split(",")):
            ip = _address(hop)
            if ip is None:
                break
            client = str(ip)
            if not self._trusted(ip):
                break
        return client

    def _trusted(self, ip: IPAddress | None) -> bool:
        return ip is not None and any(ip in network for network in self.networks)


def _address(text: str) -> IPAddress | None:
    """The address ``text`` names (an IPv4-mapped IPv6 address as its IPv4 one), or None."""
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
