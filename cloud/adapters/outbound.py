"""Where the cloud may send: webhook targets checked against the network they resolve to.

An admin registers webhook URLs; without a check, one could point the notifier at the
database's host, at 127.0.0.1, at a cloud's metadata service (169.254.169.254) or at anything
else on the private network, and read the answers in the deliveries' errors. A target is
refused unless every address its host resolves to is globally routable, or the host or
address is on the operator's allow-list (`COLDCHAIN_WEBHOOK_ALLOW`: host names and CIDR
networks, comma-separated; e.g. an on-premises ticketing system). The check runs when a
channel is added and again before every delivery (a name that resolves differently later is
caught then); redirects are never followed, so a public URL cannot bounce the request inside.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]
HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")


class TargetRefused(ValueError):
    """A webhook target the policy does not let the cloud call."""


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IPv4 and IPv6)."""
    return sorted(
        {str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    )


@dataclass(frozen=True)
class WebhookPolicy:
    """Which webhook targets may be called: public addresses, and what is allow-listed."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()
    resolver: Resolver = field(default=resolve, compare=False)

    @classmethod
    def parse(cls, allow: str | Iterable[str] | None) -> WebhookPolicy:
        """From `host, 10.0.0.0/8, ...` (ValueError naming an entry that is neither)."""
        entries = allow.split(",") if isinstance(allow, str) else list(allow or ())
        hosts, networks = set(), []
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not HOST_NAME.fullmatch(entry.lower()):
                    raise ValueError(
                        f"allow-list entry {entry!r} is not a host name or network"
                    ) from None
                hosts.add(entry.lower())
        return cls(frozenset(hosts), tuple(networks))

    def check(self, url: str) -> None:
        """Refuse (TargetRefused, saying why) a URL the cloud may not call."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise TargetRefused(f"webhook target {url!r} is not an http(s) URL")
        if parts.username or parts.password:
            raise TargetRefused("webhook target carries credentials in the URL; use a secret")
        host = (parts.hostname or "").lower()
        if not host:
            raise TargetRefused(f"webhook target {url!r} names no host")
        if host in self.hosts:
            return
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise TargetRefused(f"webhook target {url!r}: {exc}") from exc
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                addresses = [
                    ipaddress.ip_address(a.split("%")[0]) for a in self.resolver(host, port)
                ]
            except OSError as exc:
                raise TargetRefused(f"webhook host {host} does not resolve: {exc}") from exc
        if not addresses:
            raise TargetRefused(f"webhook host {host} does not resolve")
        for address in addresses:
            # ::ffff:127.0.0.1 is 127.0.0.1 to the network stack
            address = getattr(address, "ipv4_mapped", None) or address
            if not self._allowed(address):
                raise TargetRefused(
                    f"webhook host {host} resolves to {address}, a {_kind(address)} address: "
                    "only public addresses are called unless allow-listed "
                    "(COLDCHAIN_WEBHOOK_ALLOW)"
                )

    def _allowed(self, address: Address) -> bool:
        if any(address in network for network in self.networks):
            return True
        return address.is_global and not address.is_multicast


def _kind(address: Address) -> str:
    for name in ("unspecified", "loopback", "link_local", "private", "multicast", "reserved"):
        if getattr(address, f"is_{name}"):
            return name.replace("_", "-")
    return "non-public"
