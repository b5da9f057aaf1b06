"""Who is asking, as far as per-client limits are concerned."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

# NAT64's well-known prefix (RFC 6052): the last 32 bits are the IPv4 client's address.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


# Asked on every request for the same few thousand addresses: parsed once each.
@lru_cache(maxsize=4096)
def client_key(address: str | None) -> str:
    """The unit a per-client limit counts: an IPv4 address, or an IPv6 /64 (one subscriber
    usually holds a whole /64, so counting single IPv6 addresses would not limit anyone).

    An IPv6 address that carries an IPv4 one (IPv4-mapped, as a dual-stack socket shows
    IPv4 clients; 6to4; NAT64) counts as that IPv4 address: by /64 every IPv4-mapped
    client would share ``::/64``, one budget for all of them, and a 6to4 site would hold
    65,536 budgets (its /48).
    """
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        carried = ip.ipv4_mapped or ip.sixtofour
        if carried is None and ip in _NAT64:
            carried = ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
        if carried is not None:
            return str(carried)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
