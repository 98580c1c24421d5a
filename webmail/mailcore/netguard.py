"""Resolve a mail server's host name to one IP address the product may connect to."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path

from webmail.mailcore.errors import MailError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 6052 2.1: the well-known NAT64 prefix carries an IPv4 address in its last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _norm_host(host: str) -> str:
    return host.strip().rstrip(".").lower().removeprefix("[").removesuffix("]")


def _own_addresses() -> frozenset[IPAddress]:
    """Return the addresses of this machine's interfaces and host name (Linux /proc when present)."""
    found: set[IPAddress] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
    except (OSError, ValueError):
        pass
    try:  # IPv6: one address per line, 32 hex digits first.
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            h = line.split()[0]
            found.add(ipaddress.IPv6Address(int(h, 16)))
    except (OSError, ValueError, IndexError):
        pass
    try:  # IPv4: "/32 host LOCAL" entries of the routing trie are the local addresses.
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
        for prev, line in zip(lines, lines[1:], strict=False):
            if "/32 host LOCAL" in line:
                found.add(ipaddress.IPv4Address(prev.split()[-1]))
    except (OSError, ValueError, IndexError):
        pass
    return frozenset(found)


class NetGuard:
    """Refuse connections to internal addresses unless allowed (server-side request forgery guard).

    `resolve` returns one checked IP; connect to that IP (no second lookup, so no DNS
    rebinding) and keep the original host name for TLS SNI and certificate checks.
    `hosts` pins names to addresses without DNS, like /etc/hosts (e.g. a demo's
    "mail.example.test").
    """

    def __init__(
        self,
        allowed_hosts: Iterable[str] = (),
        allowed_networks: Iterable[str | IPNetwork] = (),
        *,
        hosts: Mapping[str, str] | None = None,
    ) -> None:
        self.allowed_hosts = frozenset(_norm_host(h) for h in allowed_hosts)
        self.allowed_networks = tuple(ipaddress.ip_network(n, strict=False) for n in allowed_networks)
        self.hosts = {_norm_host(k): v for k, v in (hosts or {}).items()}
        self._own: frozenset[IPAddress] | None = None

    def __repr__(self) -> str:
        nets = [str(n) for n in self.allowed_networks]
        return f"NetGuard(allowed_hosts={sorted(self.allowed_hosts)}, allowed_networks={nets})"

    def own_addresses(self) -> frozenset[IPAddress]:
        if self._own is None:
            self._own = _own_addresses()
        return self._own

    def lookup(self, host: str, port: int) -> list[IPAddress]:
        """Return every address host resolves to, in resolver order."""
        name = _norm_host(host)
        if name in self.hosts:
            return [ipaddress.ip_address(self.hosts[name])]
        try:
            return [ipaddress.ip_address(name.split("%")[0])]
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as e:
            raise MailError(
                "unknown_host", f"Cannot find the server {host!r} ({_gai_reason(e)}).", host=host, port=port
            )
        addresses: list[IPAddress] = []
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise MailError(
                "unknown_host", f"Cannot find the server {host!r} (no addresses).", host=host, port=port
            )
        return addresses

    def blocked_reason(self, ip: IPAddress) -> str | None:
        """Say why ip must not be connected to, or None when it may (allow-list first)."""
        if any(ip in net for net in self.allowed_networks if net.version == ip.version):
            return None
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = self.blocked_reason(inner)
            return f"{reason} (inside the IPv6 address {ip})" if reason else None
        if ip.is_unspecified:
            return "an unspecified address"
        if ip.is_loopback:
            return "a loopback address"
        if ip.is_link_local:
            return "a link-local address"
        if ip.is_multicast:
            return "a multicast address"
        if ip.is_reserved:
            return "a reserved address"
        if ip.is_private:
            return "a private address"
        if ip in self.own_addresses():
            return "an address of this server"
        if not ip.is_global:
            return "an address that is not publicly routable"
        return None

    def resolve(self, host: str, port: int) -> str:
        """Return one IP for host that is safe to connect to, or raise MailError("blocked_address").

        IPv4-mapped IPv6 addresses come back as plain IPv4 (RFC 4291 2.5.5.2). IPv4 comes
        first: only one address is tried, and servers' IPv6 is more often the broken one
        ("localhost" -> ::1 while the server listens on 127.0.0.1 only, too).
        """
        addresses = sorted((_unmap(ip) for ip in self.lookup(host, port)), key=lambda ip: ip.version)
        if _norm_host(host) in self.allowed_hosts:
            return str(addresses[0])
        reasons = []
        for ip in addresses:
            reason = self.blocked_reason(ip)
            if reason is None:
                return str(ip)
            reasons.append(f"{ip} is {reason}")
        raise MailError(
            "blocked_address",
            f"Refusing to connect to {host}:{port}: {'; '.join(reasons)}. "
            "Mail servers must be reachable on the public internet.",
            host=host,
            port=port,
        )


def _unmap(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address carried inside an IPv6 one (mapped, 6to4, Teredo, NAT64)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:  # RFC 4291 2.5.5.2
        return ip.ipv4_mapped
    if ip.sixtofour is not None:  # RFC 3056
        return ip.sixtofour
    if ip.teredo is not None:  # RFC 4380: (server, client)
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _gai_reason(e: Exception) -> str:
    if isinstance(e, socket.gaierror) and e.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
        return "no such host name"
    if isinstance(e, UnicodeError):
        return "invalid host name"
    return str(e.args[-1]) if e.args else str(e)
