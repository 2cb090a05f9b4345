"""Where the server may send a PostMetric key: the rules for a site's base URL.

A site's base URL is typed by an admin, and the server sends the site's key there. So
that the dashboard cannot be used to reach (or scan) the network it runs in, a base URL
must be plain http(s) with no user-info, query or fragment, and every address its host
resolves to must be public: not loopback, private, link-local, shared, multicast,
reserved or unspecified, including IPv4 written as one number (``2130706433``), in hex
(``0x7f000001``) or inside IPv6 (``::ffff:127.0.0.1``). An operator may allow more:
``POSTMETRIC_ALLOWED_HOSTS`` (host names, addresses or networks) or
``ALLOW_PRIVATE_UPSTREAMS``; the environment's own POSTMETRIC_API_URL is allowed
because an operator chose it.

The rules are checked when a site is saved and again for every connection
(:func:`guarded_adapter`), against the address actually connected to, so that a host
name that resolves elsewhere later (DNS rebinding) is refused too.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[..., list]
DEFAULT_PORTS = {"http": 80, "https": 443}


class AddressRefused(ValueError):
    """The base URL or the address it resolves to may not be used; ``str()`` says why."""


def system_resolver(host: str, port: int) -> list:
    """The operating system's resolver (tests replace this to map names to test addresses)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def check_base_url(url: str) -> str:
    """``url`` without a trailing slash if its form is usable, else raise AddressRefused.

    The form only: http or https, a host, a valid port, no user-info, query or fragment.
    """
    text = (url or "").strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise AddressRefused("it is not a valid URL (check the host and port)") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise AddressRefused("it must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise AddressRefused("it must not hold a user name or password (PostMetric takes the key only in a header)")
    if parts.query or parts.fragment or text.rstrip("/").endswith(("?", "#")):
        raise AddressRefused("it must not have a query (?…) or fragment (#…)")
    if port == 0:
        raise AddressRefused("its port must be between 1 and 65535")
    return text.rstrip("/")


def host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return normalise_host(parts.hostname or ""), parts.port or DEFAULT_PORTS.get(parts.scheme, 80)


def comparable_url(url: str) -> tuple[object, ...]:
    """A base URL as compared for a move: scheme, host, port (written out) and path."""
    parts = urlsplit(url.strip())
    try:
        host, port = host_and_port(url.strip())
    except ValueError:
        return (url.strip(),)
    return parts.scheme.lower(), host, port, parts.path.rstrip("/")


def normalise_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def literal_address(host: str) -> IPAddress | None:
    """The address written in ``host`` itself, including IPv4's old one-number and hex forms."""
    host = normalise_host(host)
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefx." for c in host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def plain(address: IPAddress) -> IPAddress:
    """An IPv4 address wrapped in IPv6 (mapped, 6to4 or NAT64) as the IPv4 address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in ipaddress.IPv6Network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_public(address: IPAddress) -> bool:
    address = plain(address)
    return address.is_global and not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def parse_allowed(entries: Iterable[str]) -> tuple[frozenset[str], tuple[IPNetwork, ...]]:
    """POSTMETRIC_ALLOWED_HOSTS' entries as host names and networks (an address is a /32 or /128)."""
    names, networks = set(), []
    for entry in entries:
        entry = normalise_host(entry)
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry)
    return frozenset(names), tuple(networks)


@dataclass(frozen=True)
class AddressPolicy:
    """Which hosts a PostMetric key may be sent to (see the module's docstring)."""

    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()
    # (host, port) pairs allowed whatever they resolve to: the operator's own POSTMETRIC_API_URL.
    allowed_origins: frozenset[tuple[str, int]] = frozenset()
    allow_private: bool = False
    resolver: Resolver | None = field(default=None, compare=False)

    @classmethod
    def from_settings(cls, settings, resolver: Resolver | None = None) -> "AddressPolicy":
        names, networks = parse_allowed(settings.postmetric_allowed_hosts)
        origins = {host_and_port(settings.postmetric_api_url)} if settings.postmetric_api_url else set()
        return cls(names, networks, frozenset(origins), settings.allow_private_upstreams, resolver)

    def check_url(self, url: str) -> str:
        """The URL (as :func:`check_base_url` returns it) if the key may go there; else raise
        AddressRefused. Resolves the host: call it when a site is saved."""
        url = check_base_url(url)
        host, port = host_and_port(url)
        try:
            self.addresses(host, port)
        except (socket.gaierror, UnicodeError):
            raise AddressRefused(f"its host name {host!r} could not be resolved (DNS)") from None
        return url

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` to connect to, each one allowed; else raise AddressRefused
        (or socket.gaierror when the name cannot be resolved)."""
        host = normalise_host(host)
        trusted = host in self.allowed_hosts or (host, port) in self.allowed_origins
        literal = literal_address(host)
        if literal is not None:
            found = [literal]
        else:
            infos = (self.resolver or system_resolver)(host, port)
            found = []
            for info in infos:
                address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
                if address not in found:
                    found.append(address)
            if not found:
                raise socket.gaierror(socket.EAI_NONAME, "no address")
        if not trusted:
            for address in found:
                self._check(address)
        return [str(address) for address in found]

    def _check(self, address: IPAddress) -> None:
        if is_public(address) or any(plain(address) in net or address in net for net in self.allowed_networks):
            return
        usable = not (plain(address).is_unspecified or plain(address).is_multicast)
        if self.allow_private and usable:
            return
        raise AddressRefused(
            f"it leads to {address}, an internal (loopback, private, link-local or reserved) address. "
            "Use PostMetric's public address, or ask the server's operator to allow this host "
            "with POSTMETRIC_ALLOWED_HOSTS"
        )


# -- connecting: the check again, on the address actually used -----------------------------


class _GuardedConnection:
    """Connects only to an address the policy allows, resolved once and checked (no second
    resolution between the check and the connection for a rebinding name server to use)."""

    address_policy: AddressPolicy

    def _new_conn(self):  # noqa: ANN202 - urllib3's hook
        try:
            address = self.address_policy.addresses(self._dns_host, self.port)[0]
        except (socket.gaierror, UnicodeError) as error:
            raise NameResolutionError(self.host, self, error) from error  # as urllib3 itself would
        name = self._dns_host
        self._dns_host = address  # the TLS name (SNI, certificate) stays self.host
        try:
            return super()._new_conn()
        finally:
            self._dns_host = name


def guarded_adapter(policy: AddressPolicy, *, pool_size: int = 10) -> HTTPAdapter:
    """A requests adapter whose every connection is checked against ``policy``.

    AddressRefused is not an OSError, so urllib3 does not retry it and requests does not
    wrap it: it reaches the caller as it is, before any socket is opened.
    """

    class Connection(_GuardedConnection, HTTPConnection):
        address_policy = policy

    class SecureConnection(_GuardedConnection, HTTPSConnection):
        address_policy = policy

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class SecurePool(HTTPSConnectionPool):
        ConnectionCls = SecureConnection

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": SecurePool}

    return GuardedAdapter(pool_maxsize=pool_size)
