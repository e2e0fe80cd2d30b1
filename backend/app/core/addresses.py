"""Where a webhook may go: http(s) URLs whose host resolves only to public addresses.

The resolved addresses are checked, not the name (a public name may point at 127.0.0.1 or at a
cloud metadata service), at registration and again before every delivery; the delivery then
connects to the address that was checked, so a name cannot change between the check and the
connection. WEBHOOKS_ALLOW_PRIVATE_NETWORKS lifts the address rule (a receiver on the same network).
"""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

SCHEMES = {"http": 80, "https": 443}


class UnsafeUrl(ValueError):
    """The URL may not be called; the message says why, for the client."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written (the Host header, TLS name)
    port: int
    address: str  # the checked IP address to connect to


def check_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable URL, else UnsafeUrl."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsafeUrl("only http and https URLs are allowed")
    if not parts.hostname:
        raise UnsafeUrl("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("credentials in the URL are not allowed (deliveries are signed)")
    return scheme, parts.hostname, port or SCHEMES[scheme]


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve(url: str, *, allow_private: bool) -> Target:
    """The URL's target with a checked address, else UnsafeUrl (also for a name that does not
    resolve)."""
    scheme, host, port = check_url(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(f"the host {host!r} does not resolve ({exc})") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise UnsafeUrl(f"the host {host!r} does not resolve")
    if not allow_private:
        private = [a for a in addresses if not is_public(a)]
        if private:
            raise UnsafeUrl(
                f"the host {host!r} resolves to a non-public address ({private[0]}); "
                "see WEBHOOKS_ALLOW_PRIVATE_NETWORKS"
            )
    return Target(scheme=scheme, host=host, port=port, address=addresses[0])
