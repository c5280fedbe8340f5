"""The client's address: the TCP peer, or, behind trusted proxies, the right-most
X-Forwarded-For hop that is not one; never a header from an untrusted peer."""

import pytest
from ferro_ratelimit.clientip import TrustedProxies

PROXIES = TrustedProxies(["10.0.0.0/8", "192.168.1.7", "fd00::/8"])


def client(peer, forwarded=None):
    headers = {} if forwarded is None else {"x-forwarded-for": forwarded}
    return PROXIES.client(peer, headers)


def test_an_untrusted_peer_is_the_client_whatever_it_forwards():
    assert client("203.0.113.5", "198.51.100.1") == "203.0.113.5"
    assert TrustedProxies([]).client("10.0.0.1", {"x-forwarded-for": "1.2.3.4"}) == "10.0.0.1"


def test_behind_one_trusted_proxy_the_hop_it_names_is_the_client():
    assert client("10.1.2.3", "198.51.100.1") == "198.51.100.1"


@pytest.mark.parametrize("forwarded", [
    "1.1.1.1, 198.51.100.1",  # what the client wrote itself is to the left, never read
    "spoofed, 198.51.100.1, 10.0.0.9",  # the proxy chain 10.0.0.9 -> 10.1.2.3
    "198.51.100.1,192.168.1.7",
])
def test_the_right_most_hop_that_is_not_a_trusted_proxy_is_the_client(forwarded):
    assert client("10.1.2.3", forwarded) == "198.51.100.1"


def test_a_trusted_peer_without_the_header_is_the_client():
    assert client("10.1.2.3") == "10.1.2.3"
    assert client("10.1.2.3", "") == "10.1.2.3"


def test_when_every_hop_is_trusted_the_left_most_is_the_client():
    assert client("10.1.2.3", "10.0.0.5, 10.0.0.9") == "10.0.0.5"


def test_a_hop_that_is_no_address_stops_the_walk_at_the_proxy_that_wrote_it():
    assert client("10.1.2.3", "198.51.100.1, unknown") == "10.1.2.3"
    assert client("10.1.2.3", "198.51.100.1, nonsense, 10.0.0.9") == "10.0.0.9"


def test_ipv6_and_ipv4_mapped_peers():
    assert client("fd00::1", "2001:db8::1") == "2001:db8::1"
    assert client("::ffff:10.0.0.1", "198.51.100.1") == "198.51.100.1"
    assert client("10.1.2.3", "2001:DB8:0::1") == "2001:db8::1", "written one way"
