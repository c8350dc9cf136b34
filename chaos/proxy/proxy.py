"""A proxy: a named listener that relays every accepted client to ``upstream``.

Listen-address rules are upstream's: starting replaces ``listen`` with the address
actually bound (``127.0.0.1:0`` becomes the real port), so disable → enable and reset
rebind the same port; a proxy never started keeps ``listen`` as given. Stopping
("down", ``enabled: false``) closes the listener and every open connection; toxics stay.
Each client triggers one dial to ``upstream``; if it fails the client is closed at once.
"""
from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from chaos.proxy import address
from chaos.proxy.apierror import internal
from chaos.proxy.connection import Connection, Side
from chaos.proxy.metrics import Metrics
from chaos.proxy.toxic_collection import ToxicCollection

log = logging.getLogger("chaos.proxy")


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
        self._server: asyncio.AbstractServer | None = None
        self._dials: set[asyncio.Task] = set()
        self._pending: set[Side] = set()

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
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, sock=sock,
                                                backlog=address.LISTEN_BACKLOG)
        self.listen = bound
        self.enabled = True
        log.info("Started proxy name=%s listen=%s upstream=%s", self.name, self.listen, self.upstream)

    async def stop(self) -> None:
        if not self.enabled:
            return
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._dials):
            task.cancel()
        for side in list(self._pending):
            side.abort()
        for conn in list(self.connections):
            conn.abort()
        if server is not None:
            await server.wait_closed()
        log.info("Terminated proxy name=%s listen=%s upstream=%s", self.name, self.listen, self.upstream)

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

    def _accept(self) -> Side:
        client = Side()
        client.on_lost = self._pending_lost
        client.on_made = self._client_made
        return client

    def _client_made(self, client: Side) -> None:
        client.on_made = None
        client.transport.pause_reading()  # nothing is read until upstream answers
        self._pending.add(client)
        task = asyncio.get_running_loop().create_task(self._dial(client))
        self._dials.add(task)
        task.add_done_callback(self._dials.discard)

    def _pending_lost(self, side: Side) -> None:
        self._pending.discard(side)

    async def _dial(self, client: Side) -> None:
        server = Side()
        loop = asyncio.get_running_loop()
        try:
            host, port = address.upstream_host_port(self.upstream)
            await loop.create_connection(lambda: server, host, port)
        except (OSError, address.AddressError) as exc:
            log.warning("Unable to open connection to upstream name=%s upstream=%s: %s",
                        self.name, self.upstream, exc)
            self._pending.discard(client)
            client.abort()
            return
        except asyncio.CancelledError:
            self._pending.discard(client)
            client.abort()
            server.abort()
            raise
        self._pending.discard(client)
        if client.lost or not self.enabled:
            server.abort()
            client.abort()
            return
        conn = Connection(client, server, rng=self.rng, on_done=self._connection_done)
        client.on_lost = server.on_lost = None
        self.connections.add(conn)
        if self.toxics.has_type("reset_peer"):
            conn.reset()  # upstream sets SO_LINGER 0 when a reset_peer exists at connect time
        for link in conn.links():
            self.toxics.links.add(link)
            if self.metrics is not None:
                self.metrics.track(self, link)
            link.start(self.toxics.snapshot(link.direction))
        conn.replay_early()
        if not conn.done:
            client.transport.resume_reading()
        log.debug("Accepted client name=%s upstream=%s", self.name, self.upstream)

    def _connection_done(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for link in conn.links():
            self.toxics.links.discard(link)
            if self.metrics is not None:
                self.metrics.untrack(self, link)
