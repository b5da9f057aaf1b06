"""Client keys of IPv4 clients that reach the server over IPv6.

A dual-stack listener sees an IPv4 client as ``::ffff:a.b.c.d``; keyed by /64
like any IPv6 address, every IPv4 client on the internet would share one
budget and one sign-in limit (``::/64``). Addresses that carry an IPv4
address (mapped, 6to4, the NAT64 well-known prefix) count as that address.
"""

from __future__ import annotations

import pytest

from domain.clients import client_key
from domain.limits import budget_key


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("::ffff:cb00:7107", "203.0.113.7"),
        ("2002:cb00:7107::1", "203.0.113.7"),
        ("2002:cb00:7107:ffff:1:2:3:4", "203.0.113.7"),
        ("64:ff9b::203.0.113.7", "203.0.113.7"),
    ],
)
def test_an_ipv6_address_carrying_an_ipv4_one_counts_as_it(address: str, key: str) -> None:
    assert client_key(address) == key


def test_two_ipv4_mapped_clients_have_budgets_of_their_own() -> None:
    first = budget_key(None, "::ffff:198.51.100.1")
    second = budget_key(None, "::ffff:198.51.100.2")
    assert first != second
    assert first == budget_key(None, "198.51.100.1")


@pytest.mark.parametrize(
    ("address", "key"),
    [
        # Near the special prefixes but outside them: ordinary IPv6, by /64.
        ("::fffe:cb00:7107", "::/64"),
        ("2003:cb00:7107::1", "2003:cb00:7107::/64"),
        ("64:ff9c::cb00:7107", "64:ff9c::/64"),
        ("::1", "::/64"),
    ],
)
def test_other_ipv6_addresses_still_count_by_slash_64(address: str, key: str) -> None:
    assert client_key(address) == key
