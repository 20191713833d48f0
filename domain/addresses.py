"""IP addresses as every rule of Sinergi's reads them: an IPv4-mapped IPv6 address
(::ffff:a.b.c.d, as a dual-stack socket reports an IPv4 peer, or a URL may name one) is that
IPv4 address. Python's own reading calls ::ffff:127.0.0.1 no loopback address, and counts it
apart from 127.0.0.1."""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def ip_address(text: str) -> Address | None:
    """`text` as an address, an IPv4-mapped one as its IPv4 address; None for text that is no
    address (a host name, "unknown")."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback(text: str) -> bool:
    """Whether `text` is an address of this machine: 127.0.0.0/8, ::1 or ::ffff:127.x."""
    address = ip_address(text)
    return address is not None and address.is_loopback
