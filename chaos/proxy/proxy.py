"""A proxy: a named listener that relays every accepted client to ``upstream``.

Listen-address rules are upstream's: starting replaces ``listen`` with the address
actually bound (``127.0.0.1:0`` becomes the real port), so disable → enable and reset
rebind the same port; a proxy never started keeps ``listen`` as given. Stopping
("down", ``enabled: false``) closes the listener and every open connection; toxics stay.
Each client triggers one dial to ``upstream``; if it fails the client is closed at once.
"""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import random
import socket
from typing import Any

from chaos.proxy import address
from chaos.proxy.apierror import internal
from chaos.proxy.connection import Connection, Side
from chaos.proxy.metrics import Metrics
from chaos.proxy.toxic_collection import ToxicCollection

log = logging.getLogger("chaos.proxy")

ACCEPT_BATCH = 64             # connections accepted per wake-up of the listener
ACCEPT_BACKOFF_SECONDS = 0.05  # pause after an accept error (EMFILE), as Go's server does


def format_sockaddr(sockaddr) -> str:
    return address.format_address(sockaddr[0], sockaddr[1])


class ProxyAlreadyStarted(Exception):
    pass


class Proxy:
    """One named proxy: listener, upstream, toxics and open connections."""

    def __init__(self, name: str, listen: str, upstream: str, *, rng: random.Random,
                 metrics: Metrics | None = None) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics = ToxicCollection()
        self.connections: set[Connection] = set()
        self.rng = rng
        self.metrics = metrics
        self._listener: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dials: set[asyncio.Task] = set()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream,
                "enabled": self.enabled, "toxics": self.toxics.to_json()}

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        if self.enabled:
            raise ProxyAlreadyStarted(self.name)
        try:
            sock, bound = address.bind_listener(self.listen)
        except address.AddressError as exc:
            raise internal(str(exc)) from exc
        self._listener = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._on_acceptable)
        self.listen = bound
        self.enabled = True
        log.info("Started proxy name=%s listen=%s upstream=%s", self.name, self.listen, self.upstream)

    async def stop(self) -> None:
        if not self.enabled:
            return
        self.enabled = False
        self._close_listener()
        for task in list(self._dials):
            task.cancel()
        for conn in list(self.connections):
            conn.abort()
        if self._dials:
            await asyncio.wait(set(self._dials))
        log.info("Terminated proxy name=%s listen=%s upstream=%s", self.name, self.listen, self.upstream)

    def _close_listener(self) -> None:
        sock, self._listener = self._listener, None
        if sock is not None:
            self._loop.remove_reader(sock.fileno())
            sock.close()  # closed at once, so the same port can be bound again right away

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        """Apply a PATCH: a new address restarts the proxy; ``enabled`` starts or stops it."""
        if address.canonical(listen) != address.canonical(self.listen) or upstream != self.upstream:
            await self.stop()
            self.listen, self.upstream = listen, upstream
        if enabled != self.enabled:
            if enabled:
                await self.start()
            else:
                await self.stop()

    def same_as(self, listen: str, upstream: str) -> bool:
        return address.canonical(listen) == address.canonical(self.listen) and upstream == self.upstream

    # -- connections -----------------------------------------------------------

    def _on_acceptable(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                client, _ = self._listener.accept()  # type: ignore[union-attr]
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors: back off instead of spinning
                log.warning("Error while accepting client name=%s: %s", self.name, exc)
                listener = self._listener
                if listener is not None:
                    self._loop.remove_reader(listener.fileno())
                    self._loop.call_later(ACCEPT_BACKOFF_SECONDS, self._resume_accepting, listener)
                return
            client.setblocking(False)
            task = self._loop.create_task(self._dial(client))
            self._dials.add(task)
            task.add_done_callback(self._dials.discard)

    def _resume_accepting(self, listener) -> None:
        if self._listener is listener:
            self._loop.add_reader(listener.fileno(), self._on_acceptable)

    async def _connect_upstream(self) -> socket.socket:
        host, port = address.upstream_host_port(self.upstream)
        try:
            ip = ipaddress.ip_address(host)
            targets = [(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, (host, port))]
        except ValueError:
            infos = await self._loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            targets = [(family, sockaddr) for family, _, _, _, sockaddr in infos]
        error: OSError = OSError(f"dial tcp {self.upstream}: no address")
        for family, sockaddr in targets:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await self._connect(sock, sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
            except BaseException:
                sock.close()
                raise
        raise error

    async def _connect(self, sock: socket.socket, sockaddr) -> None:
        """A non-blocking connect; half the CPU of ``loop.sock_connect`` under uvloop."""
        err = sock.connect_ex(sockaddr)
        if err in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
            writable = self._loop.create_future()
            fd = sock.fileno()
            self._loop.add_writer(fd, writable.set_result, None)
            try:
                await writable
            finally:
                self._loop.remove_writer(fd)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, f"dial tcp {format_sockaddr(sockaddr)}: connect: {os.strerror(err).lower()}")

    async def _dial(self, client: socket.socket) -> None:
        try:
            upstream = await self._connect_upstream()
        except (OSError, address.AddressError) as exc:
            log.warning("Unable to open connection to upstream name=%s upstream=%s: %s",
                        self.name, self.upstream, exc)
            client.close()
            return
        except asyncio.CancelledError:
            client.close()
            raise
        if not self.enabled:
            upstream.close()
            client.close()
            return
        conn = Connection(Side(client, self._loop), Side(upstream, self._loop), rng=self.rng,
                          on_done=self._connection_done)
        self.connections.add(conn)
        if self.toxics.has_type("reset_peer"):
            conn.reset()  # upstream sets SO_LINGER 0 when a reset_peer exists at connect time
        for link in conn.links():
            self.toxics.links.add(link)
            if self.metrics is not None:
                self.metrics.track(self, link)
            link.start(self.toxics.snapshot(link.direction))
        conn.start_reading()
        log.debug("Accepted client name=%s upstream=%s", self.name, self.upstream)

    def _connection_done(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for link in conn.links():
            self.toxics.links.discard(link)
            if self.metrics is not None:
                self.metrics.untrack(self, link)
