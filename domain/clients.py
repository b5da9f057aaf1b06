"""Who is asking, as far as per-client limits are concerned."""

from __future__ import annotations

import ipaddress
from functools import lru_cache


# Asked on every request for the same few thousand addresses: parsed once each.
@lru_cache(maxsize=4096)
def client_key(address: str | None) -> str:
    """The unit a per-client limit counts: an IPv4 address, or an IPv6 /64 (one subscriber
    usually holds a whole /64, so counting single IPv6 addresses would not limit anyone)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
