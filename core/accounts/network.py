"""The client's address, for rate limits and anonymous quotas.

`X-Forwarded-For` is believed only from TRUSTED_PROXIES: otherwise any client could claim any
address and step around every per-address limit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def parse_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted_proxies: Sequence[str]) -> str:
    """The nearest address not in a trusted network, walking X-Forwarded-For from the right.

    Proxies append the address they received from, so the right-most untrusted entry is the one
    a trusted proxy saw; entries left of it were written by the client and prove nothing.
    """
    peer = peer or "unknown"
    networks = parse_networks(tuple(trusted_proxies))
    if not networks or not forwarded_for or not _trusted(peer, networks):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a garbled header from a trusted proxy: fall back to the proxy itself
    return hops[0] if hops else peer


def address_key(address: str) -> str:
    """The unit anonymous limits count by: the address, or its /64 for IPv6 (one subscriber's
    prefix, whose addresses are free to rotate)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)
