"""Where a clinic's configuration may make Revisit connect: outbound URLs and hosts (pagers,
webhooks, SMTP) checked against an allow-list before they are stored and again before each use.

A clinic admin types these URLs, so without a check they could point Revisit at the services'
own network (server-side request forgery): the database, the broker, a cloud metadata endpoint.
Refused unless explicitly allowed: loopback, private (RFC 1918, unique-local), link-local
(169.254/16, fe80::/10, the metadata endpoints), carrier-grade NAT, multicast, reserved and
unspecified addresses, whether written as an address or reached through a name that resolves
to one (every address a name resolves to must pass; a name that does not resolve reaches
nothing and is let through).

A service's ``..._OUTBOUND_ALLOW_NETWORKS`` setting (CIDRs) opens private ranges on purpose,
e.g. an on-premises SMTP relay; its ``..._OUTBOUND_ALLOW_HOSTS``, when set, limits outbound
traffic to those hosts (``.example.org`` allows its subdomains). Tests that use local HTTP
servers allow 127.0.0.1/32.

The check resolves names when it runs; a name that changes its answer between the check and the
connection (DNS rebinding) is not caught here, which is why it runs again before every use.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundRefused(ValueError):
    """The destination is not allowed; the message names the reason, never the URL's secret
    parts (paths and queries of webhook URLs can be credentials)."""


def _public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _public(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class OutboundPolicy:
    allowed_networks: tuple[IpNetwork, ...] = ()
    allowed_hosts: tuple[str, ...] = ()  # empty: any host that passes the address check

    @classmethod
    def parse(cls, networks: str = "", hosts: str = "") -> OutboundPolicy:
        """From comma-separated settings; ValueError names a malformed entry."""
        nets: list[IpNetwork] = []
        for part in (p.strip() for p in networks.split(",")):
            if part:
                try:
                    nets.append(ipaddress.ip_network(part, strict=False))
                except ValueError:
                    raise ValueError(f"not a network (CIDR): {part!r}") from None
        names = tuple(h.strip().lower().rstrip(".") for h in hosts.split(",") if h.strip())
        return cls(tuple(nets), names)

    def _address_ok(self, address: IpAddress) -> bool:
        return _public(address) or any(address in net for net in self.allowed_networks)

    def _host_listed(self, host: str) -> bool:
        if not self.allowed_hosts:
            return True
        return any(
            host == allowed.lstrip(".") or (allowed.startswith(".") and host.endswith(allowed))
            for allowed in self.allowed_hosts
        )

    def check_addresses(self, host: str, addresses: Iterable[str]) -> None:
        found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
        if not found:
            raise OutboundRefused(f"host {host} does not resolve")
        if bad := [a for a in found if not self._address_ok(a)]:
            raise OutboundRefused(
                f"host {host} is a private, loopback or link-local address ({bad[0]}); "
                "allow its network in the outbound allow-list if that is intended"
            )

    async def check_host(self, host: str, port: int | None = None) -> None:
        """Refuse (OutboundRefused) unless ``host`` may be reached."""
        host = host.strip().lower().rstrip(".").strip("[]")
        if not host:
            raise OutboundRefused("no host")
        if not self._host_listed(host):
            raise OutboundRefused(f"host {host} is not in the outbound allow-list of hosts")
        try:
            literal: IpAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            self.check_addresses(host, [str(literal)])
            return
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
        except OSError:
            # Nothing to connect to (the connection will fail on its own): not a way in.
            return
        self.check_addresses(host, [str(info[4][0]) for info in infos])

    async def check_url(self, url: str) -> None:
        """Refuse unless ``url`` is http(s) to an allowed host. The message names the host only."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise OutboundRefused("not a valid URL") from None
        if parts.scheme not in ("https", "http"):
            raise OutboundRefused("only http and https URLs are allowed")
        if parts.username or parts.password:
            raise OutboundRefused("URLs with credentials before the host are not allowed")
        await self.check_host(parts.hostname or "", port)
