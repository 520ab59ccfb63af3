"""Who a callback may call.

Checked twice: when a request names its URL (its form, and an address written as one), and when it
is sent, after DNS: every address the name resolves to must be allowed, and the connection then goes
to the address that was checked, so that a second lookup cannot swap it (DNS rebinding). Redirects
are never followed (:mod:`.delivery`).

A deployment calls only https URLs of public addresses: no private, loopback, link-local, shared,
reserved or multicast range. ``iraas up`` also calls plain http and loopback, so that a receiver on
the developer's machine can be reached. ``IRAAS_CALLBACK_ALLOW`` names host names and networks that
may be called whatever they are (private, plain http), e.g. ``hooks.internal,10.20.0.0/16``.
"""

from __future__ import annotations

import ipaddress
import socket
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from iraas.callbacks.jobs import MAX_URL_LENGTH

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[..., Sequence[tuple[Any, ...]]]  # socket.getaddrinfo's shape
_URL_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")


class RefusedDestination(ValueError):
    """A callback URL this stack will not call (its form, or where it leads)."""


class UnresolvedHost(OSError):
    """DNS did not answer for the callback's host (this time)."""


@dataclass(frozen=True)
class Destination:
    """Where one delivery goes: the URL's parts and the checked address to connect to."""

    scheme: str
    host: str
    port: int
    target: str  # path and query, as the request line carries them
    address: str


@dataclass(frozen=True)
class CallbackPolicy:
    local: bool = False  # `iraas up`: plain http and loopback addresses too
    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_allow_list(cls, raw: str, local: bool = False) -> CallbackPolicy:
        """The policy with ``raw`` (comma-separated host names and networks) allowed; ValueError
        names an entry that is neither."""
        hosts, networks = set(), []
        for entry in filter(None, (part.strip().lower() for part in raw.split(","))):
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not _is_host_name(entry):
                    raise ValueError(f"{entry!r} is neither a host name nor a network (10.0.0.0/8)") from None
                hosts.add(entry.rstrip("."))
        return cls(local, frozenset(hosts), tuple(networks))

    def check_url(self, url: str) -> SplitResult:
        """The URL's parts if this stack may call it as far as its form tells (scheme, host, an
        address written as such); RefusedDestination says why not."""
        if not url or len(url) > MAX_URL_LENGTH:
            raise RefusedDestination(f"a callback URL has 1 to {MAX_URL_LENGTH} characters")
        if not set(url) <= _URL_CHARACTERS:
            raise RefusedDestination("a callback URL is ASCII without spaces or control characters (percent-encode the rest)")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise RefusedDestination(f"not a URL: {exc}") from None
        host = (parts.hostname or "").rstrip(".")
        if parts.scheme not in ("https", "http") or not host:
            raise RefusedDestination("a callback URL is http(s)://host/...")
        if parts.username is not None or parts.password is not None:
            raise RefusedDestination("a callback URL carries no user name or password")
        if port == 0:
            raise RefusedDestination("a callback URL's port is 1 to 65535")
        if parts.scheme == "http" and not (self.local or self._host_allowed(host)):
            raise RefusedDestination("callbacks go to https URLs only (or to a host the allow-list names)")
        literal = _address(host)
        if literal is not None and not self._address_allowed(host, literal):
            raise RefusedDestination(f"callbacks may not go to {literal} ({_kind(literal)} address)")
        return parts

    def resolve(self, url: str, resolver: Resolver = socket.getaddrinfo) -> Destination:
        """Where to deliver: the URL checked, its host resolved, every address allowed.
        RefusedDestination: not allowed; UnresolvedHost: DNS gave no answer this time."""
        parts = self.check_url(url)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = resolver(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise UnresolvedHost(f"cannot resolve {host}: {exc}") from None
        addresses = list(dict.fromkeys(_unmapped(ipaddress.ip_address(info[4][0])) for info in infos))
        if not addresses:
            raise UnresolvedHost(f"{host} has no address")
        for address in addresses:  # every one: a name may not mix a public address with a private one
            if not self._address_allowed(host, address):
                raise RefusedDestination(f"{host} resolves to {address} ({_kind(address)} address); callbacks may not go there")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return Destination(parts.scheme, host, port, target, str(addresses[0]))

    def _host_allowed(self, host: str) -> bool:
        """Named on the allow-list: by name, or an address written as such in one of its networks."""
        literal = _address(host)
        if literal is not None:
            return any(literal in network for network in self.allowed_networks)
        return host.lower() in self.allowed_hosts

    def _address_allowed(self, host: str, address: IPAddress) -> bool:
        address = _unmapped(address)
        if host.lower() in self.allowed_hosts or any(address in network for network in self.allowed_networks):
            return True
        if address.is_loopback:
            return self.local
        return address.is_global and not address.is_multicast


def _address(host: str) -> IPAddress | None:
    try:
        return _unmapped(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def _unmapped(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (::ffff:10.0.0.1) as the IPv4 address it is."""
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def _kind(address: IPAddress) -> str:
    for kind in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return "non-public"


def _is_host_name(entry: str) -> bool:
    labels = entry.rstrip(".").split(".")
    return all(label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii() for label in labels)
