"""Where a request comes from, and whether a project's data may be reached from there.

The client address is the connection's peer, or, only when that peer is one of the
trusted proxies (the gateway, the Kubernetes ingress), the last address in
``X-Forwarded-For`` that is not itself a trusted proxy. A header from anyone else is
ignored: it is the client's to forge.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class InvalidNetwork(ValueError):
    """A CIDR that cannot be read; the message names it."""


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Read CIDRs (IPv4 or IPv6; a bare address is a /32 or /128). Host bits must be zero
    (``10.1.2.3/8`` is a mistake, not ``10.0.0.0/8``): :class:`InvalidNetwork` says which."""
    networks = []
    for value in values:
        text = value.strip()
        try:
            networks.append(ipaddress.ip_network(text, strict=True))
        except ValueError as exc:
            raise InvalidNetwork(f"{text[:60]!r} is not a network in CIDR notation: {exc}") from exc
    return tuple(networks)


def normalise_networks(values: Iterable[str]) -> tuple[str, ...]:
    """Validated, in canonical form, without repeats, in order."""
    return tuple(dict.fromkeys(str(n) for n in parse_networks(values)))


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    return address


def address_in(address: str, networks: Sequence[str]) -> bool:
    """True when ``address`` lies in one of ``networks`` (CIDR strings)."""
    parsed = _address(address)
    if parsed is None:
        return False
    return any(parsed in network for network in parse_networks(networks))


def client_address(
    peer: str | None, headers: Mapping[str, str], trusted_proxies: Sequence[str]
) -> str:
    """The address a request comes from (see the module's docstring)."""
    address = peer or ""
    if not trusted_proxies or not address_in(address, trusted_proxies):
        return address
    forwarded = headers.get("x-forwarded-for", "")
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if _address(hop) is None:
            return address  # garbage in the chain: trust nothing beyond the proxy
        if not address_in(hop, trusted_proxies):
            return str(_address(hop))
        address = hop
    return address
