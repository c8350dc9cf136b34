"""Listen and upstream addresses as Go's ``net`` package reads them, with its error texts.

``bind_listener("localhost:0")`` returns a listening socket and the address to report
(``127.0.0.1:40123``); failures raise :class:`AddressError` whose text is what the real
server puts in its 500 body (``listen tcp 127.0.0.1:3310: bind: address already in
use``, ``listen tcp: address local373: missing port in address``).
"""
from __future__ import annotations

import ipaddress
import os
import socket

LISTEN_BACKLOG = 4096  # the kernel caps it at somaxconn; 1,000 simultaneous connects must fit


class AddressError(OSError):
    """An address that cannot be parsed, resolved or bound; ``str()`` is Go's text."""


def split_host_port(address: str) -> tuple[str, str]:
    """Go's ``net.SplitHostPort``; raises AddressError(reason) without the prefix."""
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise AddressError("missing ']' in address")
        host, rest = address[1:end], address[end + 1:]
        if not rest.startswith(":"):
            raise AddressError("missing port in address" if not rest else "too many colons in address")
        port = rest[1:]
    else:
        i = address.rfind(":")
        if i < 0:
            raise AddressError("missing port in address")
        host, port = address[:i], address[i + 1:]
        if ":" in host:
            raise AddressError("too many colons in address")
    if "[" in host or "]" in host or "[" in port or "]" in port:
        raise AddressError("unexpected '[' in address")
    return host, port


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parse_port(address: str, port: str) -> int:
    if port == "":
        return 0
    if not port.isdigit():
        raise AddressError(f"listen tcp: address tcp/{port}: unknown port")
    number = int(port)
    if number > 65535:
        raise AddressError(f"listen tcp: address {port}: invalid port")
    return number


def resolve(address: str) -> tuple[socket.AddressFamily, str, int]:
    """(family, ip, port) to listen on; ``""`` as host means every interface, as in Go."""
    try:
        host, port_text = split_host_port(address)
    except AddressError as exc:
        raise AddressError(f"listen tcp: address {address}: {exc}") from None
    port = _parse_port(address, port_text)
    if host == "":
        return (socket.AF_INET6, "::", port) if socket.has_ipv6 else (socket.AF_INET, "0.0.0.0", port)
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
        return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), str(ip), port
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise AddressError(f"listen tcp: lookup {host}: no such host") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)  # Go prefers IPv4 for listening
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr[0], port


def canonical(address: str) -> str:
    """The address as it compares after resolution (``localhost:P`` equals ``127.0.0.1:P``)."""
    try:
        _, ip, port = resolve(address)
    except AddressError:
        return address
    return format_address(ip, port)


def bind_listener(address: str) -> tuple[socket.socket, str]:
    """A non-blocking listening socket for ``address`` and the address actually bound."""
    family, ip, port = resolve(address)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go does on Linux
        if family == socket.AF_INET6 and ip == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((ip, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        reason = reason[:1].lower() + reason[1:]
        raise AddressError(f"listen tcp {format_address(ip, port)}: bind: {reason}") from exc
    bound_ip, bound_port = sock.getsockname()[:2]
    return sock, format_address(bound_ip, bound_port)


def upstream_host_port(upstream: str) -> tuple[str, int]:
    """Where to dial for ``upstream``; raises AddressError for an unparsable one."""
    host, port = split_host_port(upstream)
    if not port.isdigit() or int(port) > 65535:
        raise AddressError(f"dial tcp: address {upstream}: invalid port")
    return host or "127.0.0.1", int(port)
